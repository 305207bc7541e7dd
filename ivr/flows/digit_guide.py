"""Other voices saying the digits: the guide for finding a caller's digits said without pauses.

On the enrolment line the caller says "zero ... nine" the way people do,
running the words together; the words are found by aligning the known
sequence to other voices saying the same digits
(:func:`voiceprints.liveness.templates.align_to_guide`), in the call's
language: the ``digit-0`` ... ``digit-9`` prompts the challenge reads out (an
admin's recordings when they replaced them) and a few espeak-ng voices of the
language, men's and women's. One voice alone guides some callers badly; the
alignment takes, digit by digit, whichever guide voice fits the caller best
(``scripts/bench_attacks.py --only natural-enrolment``, FSDD digits run
together: with the prompts and one espeak voice 90 % of the right answers
passed, with the prompts and three voices 96.3 %).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.prompts.catalog import PROMPTS, VOICES
from ivr.prompts.sources import SAMPLE_RATE, PromptSource
from ivr.synth import SynthesisError, Voice, espeak
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.errors import EnrolmentError
from voiceprints.liveness import DigitTemplates
from voiceprints.liveness.templates import DIGITS

log = logging.getLogger(__name__)

# espeak-ng variants of the language's voice that guide alongside the prompts (measured together).
GUIDE_VARIANTS = ("", "+m3", "+f2")


class DigitGuides:
    """Guide templates per language, made once (at the first enrolment in that language) and kept."""

    def __init__(self, prompts: PromptSource) -> None:
        self._prompts = prompts
        self._made: dict[str, DigitTemplates | None] = {}
        self._lock = asyncio.Lock()

    async def for_language(self, language: str) -> DigitTemplates | None:
        """None when nothing says the digits in ``language``: then only digits said with pauses are found."""
        async with self._lock:
            if language not in self._made:
                self._made[language] = await self._make(language)
            return self._made[language]

    async def _make(self, language: str) -> DigitTemplates | None:
        clips: dict[str, list[AudioClip]] = {d: [] for d in DIGITS}
        prompts = [await self._prompts.audio(f"digit-{d}", language) for d in DIGITS]
        if all(pcm is not None for pcm in prompts):
            for digit, pcm in zip(DIGITS, prompts):
                clips[digit].append(AudioClip.from_pcm16(pcm, SAMPLE_RATE))  # type: ignore[arg-type]
        try:
            voices = await asyncio.to_thread(_spoken_digits, language)
        except SynthesisError as exc:
            log.warning("digit guide voices for %s: %s", language, exc)
            voices = {}
        for digit, spoken in voices.items():
            clips[digit].extend(spoken)
        if not all(clips.values()):
            log.warning("nothing says the digits in %s: callers there must pause between the enrolment digits",
                        language)
            return None
        try:
            return await asyncio.to_thread(DigitTemplates.from_digit_clips, clips)
        except EnrolmentError as exc:
            log.warning("the digits in %s cannot guide the enrolment digits: %s", language, exc)
            return None


def _spoken_digits(language: str) -> dict[str, list[AudioClip]]:
    """Each digit's word (the prompt's text) in the espeak-ng variants of the language's voice, telephone band."""
    base = VOICES.get(language, "").split("+")[0]
    words = [PROMPTS.get(f"digit-{d}", {}).get(language) for d in DIGITS]
    if not base or not all(words):
        return {}
    return {digit: [telephone_channel(espeak(Voice("guide", base + variant, 50, 150), word))
                    for variant in GUIDE_VARIANTS]
            for digit, word in zip(DIGITS, words)}
