"""What the Twilio transport remembers between a call's HTTP requests and its stream.

* Stream tokens: the voice webhook (signed by Twilio) announces a stream and
  puts a random token among its ``<Parameter>``s; the WebSocket is served only
  for a token that was issued, is used once, within its lifetime, and for
  the same call. Nobody else can open a stream: the WebSocket itself carries
  no signature.
* Results: a flow's result, kept by CallSid for the ``<Connect>`` action that
  continues the call and for ``GET /twilio/calls/{CallSid}/result``.

Both are bounded in size and time, and in memory: a result is read from the
worker that ran the call (the action URL and the stream reach the same one).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ivr.call import FlowResult

# Far above any real rate of calls waiting to stream or to be continued on
# one worker; a flood of signed webhooks (a leaked auth token) cannot grow memory past it.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Announcement:
    """A stream a validated voice webhook announced: who called, which line, which flow."""

    call_sid: str
    account_sid: str
    flow: str
    language: str
    caller: str | None
    called: str
    account: str | None = None
    claim: str | None = None


class StreamTokens:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._tokens: OrderedDict[str, tuple[Announcement, float]] = OrderedDict()

    def issue(self, announcement: Announcement) -> str:
        self._expire()
        while len(self._tokens) >= MAX_ENTRIES:
            self._tokens.popitem(last=False)
        token = secrets.token_urlsafe(24)  # 192 bits: not guessable within any lifetime
        self._tokens[token] = (announcement, self._clock() + self._ttl_s)
        return token

    def claim(self, token: str) -> Announcement | None:
        """The announcement behind ``token``, once; None when unknown, used or expired."""
        entry = self._tokens.pop(token, None)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def revoke_call(self, call_sid: str) -> None:
        for token in [t for t, (a, _) in self._tokens.items() if a.call_sid == call_sid]:
            del self._tokens[token]

    def __len__(self) -> int:
        return len(self._tokens)

    def _expire(self) -> None:
        now = self._clock()
        while self._tokens:
            token, (_, expires) = next(iter(self._tokens.items()))
            if expires >= now:
                break
            del self._tokens[token]


class CallResults:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._results: OrderedDict[str, tuple[FlowResult, float]] = OrderedDict()
        # Results of streams that closed whose <Connect> action has not come yet, by when they were kept.
        self.awaiting_action: dict[str, float] = {}

    def put(self, call_sid: str, result: FlowResult, *, awaiting_action: bool) -> None:
        self._expire()
        while len(self._results) >= MAX_ENTRIES:
            old, _ = self._results.popitem(last=False)
            self.awaiting_action.pop(old, None)
        self._results[call_sid] = (result, self._clock() + self._ttl_s)
        self._results.move_to_end(call_sid)
        if awaiting_action:
            self.awaiting_action[call_sid] = self._clock()

    def get(self, call_sid: str) -> FlowResult | None:
        entry = self._results.get(call_sid)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def continued(self, call_sid: str) -> None:
        self.awaiting_action.pop(call_sid, None)

    def _expire(self) -> None:
        now = self._clock()
        while self._results:
            call_sid, (_, expires) = next(iter(self._results.items()))
            if expires >= now:
                break
            del self._results[call_sid]
            self.awaiting_action.pop(call_sid, None)
