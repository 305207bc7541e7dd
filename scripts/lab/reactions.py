"""How a scripted caller reacts to a prompt it has heard: keys, speech, or hanging up.

Shared by every scripted caller: the in-memory one of the flow tests
(tests/scripted_call.py) and the Twilio Media Streams caller
(scripts/lab/twilio_caller.py) of the tests and the load bench.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from voiceprints.audio.clip import AudioClip


@dataclass(frozen=True)
class Keys:
    digits: str


@dataclass(frozen=True)
class Say:
    clip: AudioClip
    trailing_silence_s: float = 1.2  # the caller stops talking and waits


@dataclass(frozen=True)
class KeysFrom:
    """Keys decided when the caller reacts (e.g. the code they just received by e-mail)."""

    source: Callable[[], str]


@dataclass(frozen=True)
class SayFrom:
    """Speech decided when the caller reacts (e.g. the digits the IVR just asked for)."""

    source: Callable[[], AudioClip]


@dataclass(frozen=True)
class Hangs:
    pass


Reaction = Keys | KeysFrom | Say | SayFrom | Hangs
