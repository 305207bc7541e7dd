"""The result of a SIP call as a signed HTTP webhook: HMAC-SHA256, retried with backoff, idempotent.

``POST <VOICEAUTH_SIP__WEBHOOK_URL>`` with a JSON body
``{"call_id", "delivery_id", "VOICEAUTH_RESULT", ...}`` and the headers

* ``X-VoiceAuth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
  (the receiver recomputes it over the raw body and refuses stale ``t``);
* ``X-VoiceAuth-Delivery`` / ``Idempotency-Key``: the same id on every retry of
  one result, so a receiver that saw it already answers 2xx and does nothing.

Each result is delivered once per call id (a second ``deliver`` of the same
call is ignored). Network errors, 408, 429 and 5xx are retried
``attempts`` times in all, waiting 0.5 s, 1 s, 2 s ... (at most 30 s); other
answers end the delivery. Deliveries run on their own tasks, bounded in
number; :meth:`close` gives them a few seconds to finish.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections import OrderedDict

from ivr.call import FlowResult
from ivr.transports.results import result_parameters
from voiceprints.clock import system_clock

log = logging.getLogger("ivr.transports.sip")

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# Deliveries in flight at once; beyond it a result is kept for the result API only (logged).
MAX_IN_FLIGHT = 256
# Call ids remembered as delivered (idempotency on our side).
MAX_REMEMBERED = 10_000
CLOSE_WAIT_S = 5.0
RETRY_STATUSES = frozenset({408, 429})


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-VoiceAuth-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, *, max_age_s: float = 300.0,
           now: float | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``max_age_s`` old (receivers)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs((system_clock().timestamp() if now is None else now) - timestamp) > max_age_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


class Webhook:
    def __init__(self, url: str, secret: str, *, attempts: int, timeout_s: float) -> None:
        self._url = url
        self._secret = secret.encode()
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.delivered = 0
        self.failed = 0

    def deliver(self, call_id: str, result: FlowResult) -> None:
        """Start delivering ``result`` (once per call id), in the background."""
        if call_id in self._seen:
            return
        self._seen[call_id] = None
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self.failed += 1
            log.warning("SIP webhook: %d deliveries in flight; result of call %s not sent (read it from "
                        "GET /calls/{call_id}/result)", len(self._tasks), call_id)
            return
        body = json.dumps({"call_id": call_id, "delivery_id": call_id, **result_parameters(result)},
                          sort_keys=True).encode()
        task = asyncio.create_task(self._send(call_id, body), name=f"sip-webhook-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, call_id: str, body: bytes) -> None:
        backoff = FIRST_BACKOFF_S
        problem = ""
        for attempt in range(1, self._attempts + 1):
            status, problem = await asyncio.to_thread(self._post, call_id, body)
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                log.debug("SIP webhook: call %s delivered (attempt %d)", call_id, attempt)
                return
            if status is not None and status < 500 and status not in RETRY_STATUSES:
                break  # the receiver refuses it: retrying would not change its mind
            if attempt < self._attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self.failed += 1
        log.warning("SIP webhook: result of call %s not delivered to %s: %s", call_id, self._url, problem)

    def _post(self, call_id: str, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "voiceauth-sip",
            "X-VoiceAuth-Signature": signature(self._secret, int(system_clock().timestamp()), body),
            "X-VoiceAuth-Delivery": call_id,
            "Idempotency-Key": call_id,
        })
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 - admin's URL
                return response.status, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return None, str(exc) or type(exc).__name__

    async def close(self) -> None:
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT_S)
            for task in pending:
                task.cancel()
