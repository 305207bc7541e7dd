"""Per-clip quality report: is this audio good enough to enrol or verify with?"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class QualityProblem(str, enum.Enum):
    """What is wrong, in terms a prompt can turn into advice to the caller."""

    SILENT = "silent"  # no speech at all: "we could not hear you"
    TOO_SHORT = "too_short"  # "please speak a little longer"
    TOO_QUIET = "too_quiet"  # "please speak a little louder"
    TOO_NOISY = "too_noisy"  # "please call from somewhere quieter"
    CLIPPED = "clipped"  # "please hold the phone a little further away"


@dataclass(frozen=True)
class QualityReport:
    duration_s: float
    net_speech_s: float
    snr_db: float | None  # None when there is no non-speech to estimate noise from
    clipping_ratio: float
    speech_level_dbfs: float | None
    problems: tuple[QualityProblem, ...] = ()
    reasons: tuple[str, ...] = ()  # one human sentence per problem, with numbers

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "duration_s": round(self.duration_s, 3),
            "net_speech_s": round(self.net_speech_s, 3),
            "snr_db": None if self.snr_db is None else round(self.snr_db, 1),
            "clipping_ratio": round(self.clipping_ratio, 5),
            "speech_level_dbfs": None if self.speech_level_dbfs is None else round(self.speech_level_dbfs, 1),
            "ok": self.ok,
            "problems": [p.value for p in self.problems],
            "reasons": list(self.reasons),
        }
