"""What the Twilio transport remembers between a call's HTTP requests and its stream.

* Stream tokens: the voice webhook (signed by Twilio) announces a stream and
  puts a random token among its ``<Parameter>``s; the WebSocket is served only
  for a token that was issued, is used once, within its lifetime, and for
  the same call. Nobody else can open a stream: the WebSocket itself carries
  no signature.
* Results: a flow's result, kept by CallSid (:class:`ivr.transports.results.CallResults`)
  for the ``<Connect>`` action that continues the call and for
  ``GET /twilio/calls/{CallSid}/result``.

Both are bounded in size and time, and in memory: a result is read from the
worker that ran the call (the action URL and the stream reach the same one).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ivr.transports.results import MAX_ENTRIES, CallResults

__all__ = ["Announcement", "CallResults", "MAX_ENTRIES", "StreamTokens"]

# MAX_ENTRIES (ivr.transports.results) bounds the tokens too: a flood of signed
# webhooks (a leaked auth token) cannot grow memory past it.


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
