"""Was the challenge answered in the enrolled voice, by the person who spoke before it in the call?

The digit check (:mod:`.verify`) says *which* digits were said. Alone it let
the cheapest attack in: a recording of the customer at the voice prompt, then
the attacker reads the asked digits himself (issue 18). So the answer's own
speaker embedding must also match

* the voiceprint on file (``print``): the digits are said by the customer; and
* the call's earlier voice sample (``sample``, continuity): the same person who
  passed the voice check said them, not a second voice after a recording.

A 2-3 s digit answer is short, so the thresholds are those measured for short
answers (``scripts/bench_attacks.py --only liveness-voice``, README), on the
first model of a fused engine (GE2E): its part of the vectors is what they
were measured on, and embedding the answer with it alone keeps the cost low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceprints.config import LivenessConfig
from voiceprints.scoring.cosine import cosine

__all__ = ["SHIPPED_THRESHOLDS", "AnswerVoice", "VoiceBinding"]

# Model family -> (voiceprint, continuity) cosine thresholds for a 4-6 digit answer, telephone channel.
# GE2E on FSDD and 2-3 s LibriSpeech pieces: genuine answers pass 98.3-98.8 %, another speaker's
# answer after the victim's recording passes 1.5 % (this check alone, before the digit check).
SHIPPED_THRESHOLDS: dict[str, tuple[float, float]] = {"ge2e": (0.80, 0.70)}


@dataclass(frozen=True)
class VoiceBinding:
    passed: bool
    print_score: float
    sample_score: float | None  # None: the call had no earlier voice sample to compare with
    reason: str


class AnswerVoice:
    """Thresholds for one model family; ``check`` takes vectors of that model (the first part of a fused one)."""

    def __init__(self, min_print: float, min_sample: float) -> None:
        self.min_print = float(min_print)
        self.min_sample = float(min_sample)

    @classmethod
    def for_model(cls, family: str, config: LivenessConfig) -> AnswerVoice | None:
        """The configured thresholds, else the shipped ones for ``family``; None when there are none."""
        shipped = SHIPPED_THRESHOLDS.get(family)
        min_print = config.voice_min_score if config.voice_min_score is not None else shipped and shipped[0]
        min_sample = (config.continuity_min_score if config.continuity_min_score is not None
                      else shipped and shipped[1])
        if min_print is None or min_sample is None:
            return None
        return cls(min_print, min_sample)

    def check(self, answer: np.ndarray, voiceprint: np.ndarray, sample: np.ndarray | None) -> VoiceBinding:
        print_score = cosine(answer, voiceprint)
        sample_score = None if sample is None else cosine(answer, sample)
        if print_score < self.min_print:
            return VoiceBinding(False, print_score, sample_score,
                                f"the digits were not said in the enrolled voice (score {print_score:.2f} < "
                                f"{self.min_print:.2f})")
        if sample_score is not None and sample_score < self.min_sample:
            return VoiceBinding(False, print_score, sample_score,
                                f"the digits were said by another voice than the one heard before in this call "
                                f"(continuity {sample_score:.2f} < {self.min_sample:.2f})")
        return VoiceBinding(True, print_score, sample_score,
                            f"said in the enrolled voice (score {print_score:.2f}"
                            + ("" if sample_score is None else f", continuity {sample_score:.2f}") + ")")
