"""Input and output primitives that flows build on: digits, speech, prompts.

They are written only against :class:`ivr.call.CallSession`, so every
transport gets the same keypad and listening behaviour. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from ivr.call import AudioFrame, CallerHungUp, CallEvent, CallSession, DtmfDigit, HangUp
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import FrameAnalysis, StreamingSpeechCounter


@dataclass(frozen=True)
class Speech:
    clip: AudioClip
    net_speech_s: float
    timed_out: bool  # the deadline came before the wanted amount of speech
    # The live VAD's frames of ``clip``: the engine reuses them instead of a second pass.
    analysis: FrameAnalysis | None = None


class CallIO:
    """A call as flows see it: a session plus a small push-back buffer for keys pressed early."""

    def __init__(self, call: CallSession, vad_aggressiveness: int = 2) -> None:
        self.call = call
        self._pending: deque[CallEvent] = deque()
        self._vad = vad_aggressiveness
        # Callers end fixed-length entries with '#' out of habit; after an entry
        # completed on its length, that '#' must not end the next one empty.
        self._stray_terminator = False

    @property
    def language(self) -> str:
        return self.call.info.language

    async def play(self, prompt: str) -> None:
        await self.call.play(prompt)

    async def _next(self, timeout: float) -> CallEvent | None:
        if self._pending:
            return self._pending.popleft()
        event = await self.call.next_event(max(0.0, timeout))
        if isinstance(event, HangUp):
            raise CallerHungUp("caller hung up")
        return event

    async def drop_audio(self) -> None:
        """Forget caller audio queued while a prompt played (the caller was listening, or talking over it).

        Keys pressed meanwhile are kept: callers who know the menu type ahead.
        """
        while True:
            event = await self.call.next_event(0.0)
            if event is None:
                return
            if isinstance(event, HangUp):
                raise CallerHungUp("caller hung up")
            if isinstance(event, DtmfDigit):
                self._pending.append(event)

    async def read_digits(self, max_digits: int, first_timeout: float, next_timeout: float,
                          terminator: str = "#") -> str:
        """Digits until ``terminator``, ``max_digits`` or a timeout; ``*`` starts over. Empty on no input."""
        digits = ""
        deadline = time.monotonic() + first_timeout
        while len(digits) < max_digits:
            event = await self._next(deadline - time.monotonic())
            if event is None:
                break
            if not isinstance(event, DtmfDigit):
                if time.monotonic() >= deadline:
                    break
                continue
            if event.digit == terminator:
                if not digits and self._stray_terminator:
                    self._stray_terminator = False
                    continue
                break
            if event.digit == "*":
                digits = ""
            else:
                digits += event.digit
            deadline = time.monotonic() + next_timeout
        self._stray_terminator = len(digits) >= max_digits and bool(terminator)
        return digits

    async def read_key(self, timeout: float) -> str | None:
        key = await self.read_digits(1, timeout, timeout, terminator="")
        return key or None

    async def listen(self, *, want_speech_s: float, deadline_s: float, end_silence_s: float | None = None,
                     min_speech_s: float = 0.0, max_audio_s: float | None = None) -> Speech:
        """Collect caller audio until enough net speech, a pause after speech, or the deadline.

        ``want_speech_s``: stop as soon as this much speech is in (verify).
        ``end_silence_s``: stop after this much silence once ``min_speech_s`` of
        speech is in (enrolment: the caller finished the sentence).
        """
        counter: StreamingSpeechCounter | None = None
        started = time.monotonic()
        deadline = started + deadline_s
        while True:
            event = await self._next(deadline - time.monotonic())
            if isinstance(event, AudioFrame):
                if counter is None:
                    counter = StreamingSpeechCounter(event.sample_rate, aggressiveness=self._vad)
                counter.push(event.pcm16)
                if counter.net_speech_s >= want_speech_s:
                    return _heard(counter, False)
                if (end_silence_s is not None and counter.net_speech_s >= max(min_speech_s, 1e-9)
                        and counter.trailing_silence_s >= end_silence_s):
                    return _heard(counter, False)
                if max_audio_s is not None and counter.total_s >= max_audio_s:
                    return _heard(counter, False)
            elif isinstance(event, DtmfDigit):
                continue  # keys pressed while we listen are not an answer here
            if time.monotonic() >= deadline:
                if counter is None:
                    return Speech(AudioClip.from_pcm16(b"", 8000), 0.0, True)
                return _heard(counter, True)


def _heard(counter: StreamingSpeechCounter, timed_out: bool) -> Speech:
    return Speech(counter.audio(), counter.net_speech_s, timed_out, counter.analysis())
