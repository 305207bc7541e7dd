"""The small call interface every flow is written against, and what a flow returns.

A transport (Asterisk AudioSocket/FastAGI, Twilio Media Streams, later SIP)
only translates its protocol to this interface; flows never know which one
they run on. Events come in one ordered stream (caller audio and keypad
digits interleave in a real call), prompts go out by name, and the flow's
:class:`FlowResult` goes back through :meth:`CallSession.finish`: each
transport maps it to its own protocol (Asterisk: ``VOICEAUTH_*`` channel
variables; Twilio: TwiML that continues the call with them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Union


@dataclass(frozen=True)
class AudioFrame:
    """A chunk of caller audio: signed 16-bit little-endian mono PCM."""

    pcm16: bytes
    sample_rate: int


@dataclass(frozen=True)
class DtmfDigit:
    digit: str  # one of 0-9 * # A-D


@dataclass(frozen=True)
class HangUp:
    """The caller (or the network) ended the call."""


CallEvent = Union[AudioFrame, DtmfDigit, HangUp]


class CallerHungUp(Exception):
    """Raised by transports when a flow tries to use a call that has ended."""


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    caller_id: str | None = None
    language: str = "en"
    # Parameters the call came with (e.g. the claimed account, the flow's mode).
    params: Mapping[str, str] = field(default_factory=dict)
    # Where the call came in, stable per carrier line (Asterisk: the channel's
    # technology/endpoint, e.g. "PJSIP/carrier-a"; Twilio: "twilio:<number>"):
    # callers with a withheld number share one attempt limit per trunk, and
    # each trunk has an overall rate.
    trunk: str | None = None


class Result(str, enum.Enum):
    # verify flow
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_ENROLLED = "NOT_ENROLLED"
    LOCKED = "LOCKED"
    # enrolment line
    ENROLLED = "ENROLLED"
    DECLINED = "DECLINED"  # the caller did not give consent
    FAILED = "FAILED"  # second factor failed, or the audio never became good enough
    # opt-out line
    OPTED_OUT = "OPTED_OUT"
    # both
    ERROR = "ERROR"
    # the caller hung up before a result: what a result API or webhook reports (a dialplan never sees it)
    HUNGUP = "HUNGUP"


@dataclass(frozen=True)
class FlowResult:
    result: Result
    account: str | None = None
    score: float | None = None
    reason: str = ""
    method: str | None = None  # which factor decided: "voice", "otp", "kba", "pin"
    # Seconds from "enough speech is in" to the decision, and the engine's own
    # time for it; for metrics, never shown to the caller's next step.
    decision_s: float | None = None
    engine_s: float | None = None
    # Verify line: the digit challenge (PASS, FAIL, or SKIPPED when not asked)
    # and what the checks of the voice found (replay, synthetic, watchlist).
    liveness: str = ""
    risks: tuple[str, ...] = ()

    def variables(self) -> dict[str, str]:
        """The ``VOICEAUTH_*`` values every transport hands on, unescaped (each transport escapes for its wire)."""
        return {
            "VOICEAUTH_RESULT": self.result.value,
            "VOICEAUTH_SCORE": "" if self.score is None else f"{self.score:.3f}",
            "VOICEAUTH_REASON": self.reason,
            "VOICEAUTH_SPEAKER": self.account or "",
            "VOICEAUTH_ACCOUNT": self.account or "",
            "VOICEAUTH_METHOD": self.method or "",
            "VOICEAUTH_LIVENESS": self.liveness,
            "VOICEAUTH_RISK": ",".join(r.upper() for r in self.risks) or "NONE",
        }


class CallSession(Protocol):
    @property
    def info(self) -> CallInfo: ...

    async def play(self, prompt: str) -> None:
        """Play the named prompt in the call's language; returns when it has been played."""
        ...

    async def next_event(self, timeout: float) -> CallEvent | None:
        """Next caller event, or None if nothing arrived within ``timeout`` seconds."""
        ...

    async def finish(self, result: FlowResult | None) -> None:
        """Hand ``result`` on in the transport's own terms and end the session; None: the caller is gone.

        Called once per call, by the call runner. Raises
        :class:`CallerHungUp` when the result could not be handed on because
        the caller left; the session is ended all the same.
        """
        ...
