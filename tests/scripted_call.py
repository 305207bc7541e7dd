"""A caller that follows a script, speaking the call interface directly.

Flow logic (re-prompts, hang-ups, every branch) is tested fast against this;
the same flows run through the real Asterisk in tests/lab.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Mapping

from scripts.lab.reactions import Hangs, Keys, KeysFrom, Reaction, Say, SayFrom
from ivr.call import AudioFrame, CallerHungUp, CallEvent, CallInfo, DtmfDigit, FlowResult, HangUp
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample

__all__ = ["Hangs", "Keys", "KeysFrom", "Reaction", "Say", "SayFrom", "ScriptedCall", "frames"]

FRAME = 160  # 20 ms at 8 kHz


def frames(clip: AudioClip, trailing_silence_s: float) -> list[CallEvent]:
    pcm = resample(clip, 8000).to_pcm16() + b"\x00\x00" * int(trailing_silence_s * 8000)
    return [AudioFrame(pcm[i:i + 2 * FRAME], 8000) for i in range(0, len(pcm), 2 * FRAME)]


@dataclass
class ScriptedCall:
    """Reacts to each prompt with the next reaction scripted for that prompt name (None: stays silent)."""

    script: Mapping[str, list[Reaction]]
    info: CallInfo = field(default_factory=lambda: CallInfo("call-1", "3001234567", "en", {}))
    played: list[str] = field(default_factory=list)
    result: dict[str, str] | None = None
    hung_up: bool = False
    _events: asyncio.Queue = field(default_factory=asyncio.Queue)
    _ended: bool = False

    async def play(self, prompt: str) -> None:
        if self._ended:
            raise CallerHungUp("caller hung up")
        self.played.append(prompt)
        reactions = self.script.get(prompt) or []
        if reactions:
            # The caller reacts once the prompt has been heard, not while it plays.
            asyncio.get_running_loop().call_later(0.01, self._react, reactions.pop(0))

    def _react(self, reaction: Reaction) -> None:
        if isinstance(reaction, KeysFrom):
            reaction = Keys(reaction.source())
        if isinstance(reaction, SayFrom):
            reaction = Say(reaction.source())
        if isinstance(reaction, Keys):
            for d in reaction.digits:
                self._events.put_nowait(DtmfDigit(d))
        elif isinstance(reaction, Say):
            for f in frames(reaction.clip, reaction.trailing_silence_s):
                self._events.put_nowait(f)
        else:
            self._events.put_nowait(HangUp())

    async def next_event(self, timeout: float) -> CallEvent | None:
        if self._ended:
            return HangUp()
        try:
            event = await asyncio.wait_for(self._events.get(), timeout) if timeout > 0 else self._events.get_nowait()
        except (asyncio.TimeoutError, asyncio.QueueEmpty):
            return None
        if isinstance(event, HangUp):
            self._ended = True
        return event

    async def finish(self, result: FlowResult | None) -> None:
        """Keeps the ``VOICEAUTH_*`` values the caller's next step would get, then ends the call."""
        self.hung_up = True
        if result is not None:
            if self._ended:
                raise CallerHungUp("caller hung up")
            self.result = result.variables()
