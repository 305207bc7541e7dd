"""Accuracy figures from trial scores, reported the way speaker-verification papers do."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from voiceprints.evaluation.trials import TrialScores
from voiceprints.scoring.metrics import eer, frr_at_far, min_dcf

P_TARGET = 0.01


@dataclass(frozen=True)
class OperatingPoint:
    far: float
    frr: float | None  # None when there are too few non-target trials to measure it
    threshold: float | None
    # What the trials show either way: with fewer than 10/far non-target trials
    # it rests on fewer than ~10 false accepts and is an anecdote, not a measurement.
    observed_frr: float = float("nan")
    observed_threshold: float = float("nan")


@dataclass(frozen=True)
class AccuracyReport:
    condition: str
    n_target: int
    n_nontarget: int
    eer: float
    eer_threshold: float
    min_dcf: float
    frr_at: tuple[OperatingPoint, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def row(self) -> str:
        points = "  ".join(
            f"FRR@FAR{p.far * 100:g}%="
            + (f"{p.frr * 100:.2f}%" if p.frr is not None else f"({p.observed_frr * 100:.2f}%: too few trials)")
            for p in self.frr_at
        )
        return (f"{self.condition:<40} EER={self.eer * 100:6.2f}%  minDCF(0.01)={self.min_dcf:.3f}  {points}  "
                f"[{self.n_target} target / {self.n_nontarget} non-target trials]")


def accuracy(condition: str, scores: TrialScores, fars: tuple[float, ...] = (0.01, 0.001)) -> AccuracyReport:
    tar, non = np.asarray(scores.target, float), np.asarray(scores.nontarget, float)
    e, t = eer(tar, non)
    dcf, _ = min_dcf(tar, non, p_target=P_TARGET)
    points = []
    for far in fars:
        frr, thr, measurable = frr_at_far(tar, non, far)
        points.append(OperatingPoint(far, float(frr) if measurable else None, float(thr) if measurable else None,
                                     float(frr), float(thr)))
    return AccuracyReport(condition, len(tar), len(non), float(e), float(t), float(dcf), tuple(points))
