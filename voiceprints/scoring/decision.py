"""A verification decision is a value: outcome, numbers and the reasons behind it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from voiceprints.audio.quality import QualityReport


class Outcome(str, enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    # Too little or poor speech, or a score in the grey band: step up to
    # another factor instead of guessing.
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    speaker_id: str
    model_id: str
    score: float | None  # the score compared with the thresholds (normalised if normalisation is on)
    raw_score: float | None  # plain cosine
    accept_threshold: float
    reject_threshold: float
    normalisation: str
    quality: QualityReport | None
    reasons: tuple[str, ...] = field(default_factory=tuple)
    latency_ms: float | None = None
    # INCONCLUSIVE because good speech scored between the thresholds (not
    # because the speech was short or poor): another factor may confirm it.
    grey_band: bool = False
    # The caller's embedding, when one was computed: the watchlist screen
    # (voiceprints.watchlist) reuses it instead of embedding the call again.
    # Never serialised, never stored.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "speaker_id": self.speaker_id,
            "model_id": self.model_id,
            "score": None if self.score is None else round(self.score, 4),
            "raw_score": None if self.raw_score is None else round(self.raw_score, 4),
            "accept_threshold": round(self.accept_threshold, 4),
            "reject_threshold": round(self.reject_threshold, 4),
            "normalisation": self.normalisation,
            "quality": None if self.quality is None else self.quality.to_dict(),
            "reasons": list(self.reasons),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "grey_band": self.grey_band,
        }
