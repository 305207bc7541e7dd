"""Results of finished calls, kept for a while so the PBX can read them back, and the API that reads them.

Transports whose peer cannot take the result in-band (Twilio's Studio and
Flex, any PBX that dialled the SIP endpoint) keep each call's
:class:`~ivr.call.FlowResult` here by call id, bounded in count and time,
and serve it as ``VOICEAUTH_*`` values: ``GET .../calls/{call_id}/result``.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from typing import Callable

from ivr.call import FlowResult

# Far above any real number of calls finishing within a result's lifetime on
# one worker; a flood of calls cannot grow memory past it.
MAX_ENTRIES = 10_000
# One short line per value: agents read the reason on a screen, and URLs and
# dialplan variables have length limits.
MAX_VALUE = 200


def result_parameters(result: FlowResult) -> dict[str, str]:
    """The ``VOICEAUTH_*`` values, each one bounded line."""
    return {name: " ".join(value.split())[:MAX_VALUE] for name, value in result.variables().items()}


class ResultNotReadable(Exception):
    """Why a result request is refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class CallResults:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._results: OrderedDict[str, tuple[FlowResult, float]] = OrderedDict()
        # Results whose peer has not come back for them yet (Twilio: the <Connect> action), by when kept.
        self.awaiting_action: dict[str, float] = {}

    def put(self, call_id: str, result: FlowResult, *, awaiting_action: bool = False) -> None:
        self._expire()
        while len(self._results) >= MAX_ENTRIES:
            old, _ = self._results.popitem(last=False)
            self.awaiting_action.pop(old, None)
        self._results[call_id] = (result, self._clock() + self._ttl_s)
        self._results.move_to_end(call_id)
        if awaiting_action:
            self.awaiting_action[call_id] = self._clock()

    def get(self, call_id: str) -> FlowResult | None:
        entry = self._results.get(call_id)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def awaiting_since(self, since: float) -> int:
        """How many results kept at or after ``since`` (this store's clock) still wait for their peer."""
        return sum(1 for kept in self.awaiting_action.values() if kept >= since)

    def continued(self, call_id: str) -> None:
        self.awaiting_action.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._results)

    def readable(self, call_id: str, *, token: str, authorization: str) -> FlowResult:
        """The result for the result API: 401 without the bearer token (when one is set), 404 when unknown."""
        if token and not hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
            raise ResultNotReadable(401, "bearer token required")
        result = self.get(call_id)
        if result is None:
            raise ResultNotReadable(404, "no result for this call (unknown, still running, or expired)")
        return result

    def _expire(self) -> None:
        now = self._clock()
        while self._results:
            call_id, (_, expires) = next(iter(self._results.items()))
            if expires >= now:
                break
            del self._results[call_id]
            self.awaiting_action.pop(call_id, None)
