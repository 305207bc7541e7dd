"""Liveness challenge: the caller repeats a random digit string, checked against their own digit templates.

Flows call, on the engine's executor (all synchronous):

* enrolment: ``DigitTemplates.from_sequences(recordings)`` (the caller says
  "zero ... nine" ``LivenessConfig.enrolment_repetitions`` times), then
  ``SqlDigitTemplateStore(store).save(account, templates)``;
* challenge: ``new_challenge(account, SqlChallengeHistory(store), ...)``
  gives the string to read out; ``DigitStringVerifier(max_margin).verify(
  templates, answer_clip, asked)`` (``max_stretch`` too, from
  ``LivenessConfig``) gives a :class:`LivenessResult` with
  ``passed`` and a ``reason``.
"""

from voiceprints.liveness.challenge import ChallengeHistory, new_challenge, random_digits
from voiceprints.liveness.templates import DIGITS, DigitTemplates, segment_digits
from voiceprints.liveness.verify import DigitStringVerifier, LivenessResult

__all__ = [
    "ChallengeHistory",
    "DIGITS",
    "DigitStringVerifier",
    "DigitTemplates",
    "LivenessResult",
    "new_challenge",
    "random_digits",
    "segment_digits",
]
