"""The guide for digits said without pauses: the IVR's digit prompts and espeak-ng voices of the language."""

from __future__ import annotations

from tests.security.test_recorded_voices import SpokenDigitPrompts
from ivr.flows.digit_guide import GUIDE_VARIANTS, DigitGuides


class NoPrompts:
    async def audio(self, name: str, language: str) -> bytes | None:
        return None


async def test_the_guide_has_the_prompts_and_the_voices_of_the_language(tmp_path):
    guide = await DigitGuides(SpokenDigitPrompts(tmp_path)).for_language("en")
    assert guide is not None and guide.per_digit() == {d: 1 + len(GUIDE_VARIANTS) for d in "0123456789"}


async def test_without_prompts_the_voices_guide_and_a_language_nobody_speaks_has_no_guide():
    guides = DigitGuides(NoPrompts())
    spanish = await guides.for_language("es")
    assert spanish is not None and spanish.per_digit() == {d: len(GUIDE_VARIANTS) for d in "0123456789"}
    assert await guides.for_language("xx") is None
    assert await guides.for_language("es") is spanish  # made once
