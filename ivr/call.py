"""The small call interface every flow is written against.

A transport (AudioSocket, FastAGI, SIP, Twilio Media Streams) only translates
its protocol to this interface; flows never know which one they run on.
Events come in one ordered stream (caller audio and keypad digits interleave
in a real call), prompts go out by name, the result goes back as variables.
"""

from __future__ import annotations

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
    # Dialplan-provided parameters (e.g. the claimed account, the flow's mode).
    params: Mapping[str, str] = field(default_factory=dict)
    # Where the call came in (Asterisk: the channel's technology/endpoint,
    # e.g. "PJSIP/carrier-a"): callers with a withheld number share one
    # attempt limit per trunk, and each trunk has an overall rate.
    trunk: str | None = None


class CallSession(Protocol):
    @property
    def info(self) -> CallInfo: ...

    async def play(self, prompt: str) -> None:
        """Play the named prompt in the call's language; returns when it has been played."""
        ...

    async def next_event(self, timeout: float) -> CallEvent | None:
        """Next caller event, or None if nothing arrived within ``timeout`` seconds."""
        ...

    async def set_result(self, variables: Mapping[str, str]) -> None:
        """Hand the flow's result to the dialplan (channel variables such as VOICEAUTH_RESULT)."""
        ...

    async def hang_up(self) -> None: ...
