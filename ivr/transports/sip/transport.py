"""The SIP endpoint transport: a pyVoIP user agent registered to the PBX, one flow per answered call.

A call's path (docs/sip.md):

1. The PBX dials the endpoint (Asterisk: ``Dial(PJSIP/verify4711@voiceauth)``),
   optionally adding ``X-VoiceAuth-*`` headers (account, language, call id).
2. The dialled number picks the flow and the claimed account
   (:mod:`ivr.transports.sip.routing`); unknown numbers, calls beyond
   ``max_calls`` and calls during shutdown get 486 Busy Here.
3. The call is answered and the flow runs on it like on any other line
   (limits, lease, audit, policy from the guard).
4. The flow ends: the result is kept for ``GET /calls/{call_id}/result``, sent
   to the webhook (signed), and the endpoint hangs up; the PBX's dialplan
   continues after its ``Dial`` and reads the result (Asterisk: ``CURL()``).

pyVoIP runs its own threads; each call's pyVoIP thread waits (bounded) on
the call's coroutine here, and media crosses over in
:class:`~ivr.transports.sip.session.Bridge`. If pyVoIP gives up registering
(three failures, e.g. the PBX restarting), a supervisor starts a new user
agent, with backoff.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from ivr.call import CallInfo, FlowResult
from ivr.transports.base import Calls, TransportEnv
from ivr.transports.results import CallResults, ResultNotReadable, result_parameters
from ivr.transports.sip import routing
from ivr.transports.sip.pyvoip import EndpointCall, EndpointPhone, InvalidStateError
from ivr.transports.sip.session import PromptFrames, SipCallSession
from ivr.transports.sip.webhook import Webhook

log = logging.getLogger("ivr.transports.sip")

# pyVoIP's call thread waits this long past the longest call for the flow.
CALL_SLACK_S = 60.0
SUPERVISE_EVERY_S = 2.0
MAX_RESTART_BACKOFF_S = 30.0
# Calls remembered with the codec they used (tests, the load bench).
MAX_CALL_RECORDS = 1000


def form_encoded(values: dict[str, str]) -> str:
    """``a=1&b=2`` for Asterisk's ``Set(HASH(va)=${CURL(...)})`` with ``CURLOPT(hashcompat)=yes``.

    Spaces as %20 (Asterisk does not read ``+``), and the free-text reason
    last: a dialplan splits the values on commas and parentheses, so whatever
    the reason says can only spoil the reason itself.
    """
    ordered = sorted(values.items(), key=lambda item: item[0] == "VOICEAUTH_REASON")
    return urlencode(ordered, quote_via=quote)


class SipTransport:
    name = "sip"

    def __init__(self, env: TransportEnv) -> None:
        self._env = env
        self._cfg = env.settings.sip
        self.results = CallResults(self._cfg.result_ttl_s)
        self._prompts = PromptFrames(env.prompts)
        self._webhook = (Webhook(self._cfg.webhook_url, self._cfg.webhook_secret.get_secret_value(),
                                 attempts=self._cfg.webhook_attempts, timeout_s=self._cfg.webhook_timeout_s)
                         if self._cfg.webhook_url else None)
        self._sessions: dict[str, SipCallSession] = {}
        self._calls: Calls | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phone: EndpointPhone | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.refused_calls = 0
        self.registrations = 0
        # call id -> (codec negotiated, codecs heard, RTP datagrams that were not media)
        self.call_records: OrderedDict[str, tuple[str, frozenset[str], int]] = OrderedDict()

    # -- Transport ---------------------------------------------------------------

    async def start(self, calls: Calls) -> None:
        self._calls = calls
        self._loop = asyncio.get_running_loop()
        self._env.metrics.count_from("rejected_sip", lambda: self.refused_calls)
        if self._webhook is not None:
            webhook = self._webhook
            self._env.metrics.count_from("webhook_failed_sip", lambda: webhook.failed)
        await self._register()  # raises with the registrar's address when it cannot
        self._supervisor = asyncio.create_task(self._supervise(), name="sip-supervisor")

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for session in list(self._sessions.values()):
            await session.hang_up()
        if self._webhook is not None:
            await self._webhook.close()
        phone, self._phone = self._phone, None
        if phone is not None:
            await self._stop_phone(phone)

    def health(self) -> dict[str, str | None]:
        phone = self._phone
        if phone is not None and phone.registered:
            return {"sip": None}
        status = phone.status_name if phone is not None else "not started"
        return {"sip": f"not registered to {self._cfg.registrar}:{self._cfg.registrar_port} ({status})"}

    def describe(self) -> str:
        return (f"SIP {self._cfg.bind}:{self._cfg.port} as {self._cfg.username} "
                f"at {self._cfg.registrar}:{self._cfg.registrar_port}")

    def http_routes(self) -> APIRouter:
        router = APIRouter()

        @router.get("/calls/{call_id}/result")
        async def result(call_id: str, request: Request) -> Response:
            try:
                found = self.results.readable(call_id, token=self._cfg.result_token.get_secret_value(),
                                              authorization=request.headers.get("authorization", ""))
            except ResultNotReadable as exc:
                raise HTTPException(exc.status, str(exc)) from None
            values = {"call_id": call_id, **result_parameters(found)}
            if request.query_params.get("format") == "form":
                return PlainTextResponse(form_encoded(values))
            return JSONResponse(values)

        return router

    # -- registration ------------------------------------------------------------------

    async def _register(self) -> None:
        cfg = self._cfg
        phone = EndpointPhone(cfg.registrar, cfg.registrar_port, cfg.username, cfg.password.get_secret_value(),
                              myIP=cfg.bind, sipPort=cfg.port, rtpPortLow=cfg.rtp_port_low,
                              rtpPortHigh=cfg.rtp_port_high, register_expires_s=cfg.register_expires_s,
                              register_timeout_s=cfg.register_timeout_s, on_call=self._on_call_thread)
        try:
            await asyncio.wait_for(asyncio.to_thread(phone.start), cfg.register_timeout_s * 3 + 5)
        except Exception as exc:
            await self._stop_phone(phone)
            raise RuntimeError(f"SIP: could not register {cfg.username} at {cfg.registrar}:{cfg.registrar_port} "
                               f"from {cfg.bind}:{cfg.port}: {str(exc) or type(exc).__name__}") from exc
        self._phone = phone
        self.registrations += 1
        log.info("SIP: registered as %s at %s:%d", cfg.username, cfg.registrar, cfg.registrar_port)

    async def _stop_phone(self, phone: EndpointPhone) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(phone.stop), self._cfg.register_timeout_s * 2 + 5)
        except Exception as exc:  # noqa: BLE001 - the port is released with the socket regardless
            log.debug("SIP: stopping the user agent: %r", exc)

    async def _supervise(self) -> None:
        """pyVoIP stops for good after three failed registrations: start a new agent then, with backoff."""
        backoff = SUPERVISE_EVERY_S
        while not self._closing:
            await asyncio.sleep(SUPERVISE_EVERY_S)
            phone = self._phone
            if phone is not None and phone.get_status().name in ("REGISTERED", "REGISTERING"):
                backoff = SUPERVISE_EVERY_S
                continue
            log.warning("SIP: the user agent is %s; registering again",
                        phone.status_name if phone is not None else "gone")
            if phone is not None:
                self._phone = None
                await self._stop_phone(phone)
            try:
                await self._register()
                backoff = SUPERVISE_EVERY_S
            except RuntimeError as exc:
                log.warning("%s; next try in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    # -- calls ---------------------------------------------------------------------------

    def _on_call_thread(self, call: EndpointCall) -> None:
        """pyVoIP's thread for one call: run the call on the loop, wait for it (bounded), clean up."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._serve(call), loop)
        try:
            future.result(timeout=self._env.settings.service.max_call_s + CALL_SLACK_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
        except Exception:  # noqa: BLE001 - logged by _serve; pyVoIP's thread must end quietly
            pass

    async def _serve(self, call: EndpointCall) -> None:
        assert self._calls is not None
        request_line = call.heading
        chosen = routing.route(request_line, self._cfg.routes, call.header(self._cfg.account_header))
        refusal = (
            "shutting down" if self._closing or not self._calls.accepting
            else f"already {len(self._sessions)} calls (VOICEAUTH_SIP__MAX_CALLS)"
            if len(self._sessions) >= self._cfg.max_calls
            else chosen.problem
        )
        if refusal:
            self.refused_calls += 1
            log.warning("SIP call %s: refused (486): %s", call.call_id[:64], refusal)
            try:
                await asyncio.to_thread(call.deny)
            except (InvalidStateError, KeyError, OSError):
                pass
            return
        wanted_id = (call.header(self._cfg.call_id_header) or "").strip()
        call_id = wanted_id if routing.CALL_ID.match(wanted_id) else call.call_id
        if call_id in self._sessions:
            call_id = call.call_id
        trunk = f"sip:{self._cfg.username}"
        params = {"mode": chosen.flow or "", "channel": f"sip/{chosen.dialled or '-'}"}
        if chosen.account:
            params["account"] = chosen.account
        caller = call.caller
        info = CallInfo(call_id=call_id, caller_id=caller if caller and caller.lower() != "anonymous" else None,
                        language=self._env.language(call.header(self._cfg.language_header)),
                        params=params, trunk=trunk)
        session = SipCallSession(call, info, prompts=self._prompts, keep_result=self._keep,
                                 max_call_s=self._env.settings.service.max_call_s)
        self._sessions[call_id] = session
        try:
            await asyncio.to_thread(call.answer)
            await self._calls.run(chosen.flow or "", session, via="sip")
        except Exception:
            log.exception("SIP call %s: failed", call_id)
        finally:
            self._sessions.pop(call_id, None)
            await session.hang_up()
            self.call_records[call_id] = (session.codec, frozenset(session.codecs_heard), call.link.garbage)
            while len(self.call_records) > MAX_CALL_RECORDS:
                self.call_records.popitem(last=False)

    def _keep(self, call_id: str, result: FlowResult) -> None:
        self.results.put(call_id, result)
        if self._webhook is not None:
            self._webhook.deliver(call_id, result)

    @property
    def active_calls(self) -> int:
        return len(self._sessions)

    def media_ports(self) -> list[int]:
        """The local RTP ports of the calls in progress."""
        return [session.media_port for session in self._sessions.values() if session.media_port]

    def phone(self) -> Any:
        """The running pyVoIP user agent (tests)."""
        return self._phone
