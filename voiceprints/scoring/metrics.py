"""Error rates of a verifier from target and non-target trial scores.

Convention throughout: a trial is accepted when ``score >= threshold``.
FAR(t) = share of non-target scores >= t; FRR(t) = share of target scores < t.

Every function sweeps the exact thresholds at which an error rate changes
(the observed scores) instead of a grid: a grid hides exactly the tail that a
1 % FAR operating point lives in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _scores(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} scores must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"no {what} scores")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} scores contain NaN or infinite values")
    return arr


def det_curve(tar: np.ndarray, non: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, frr, thresholds) at every distinct observed score, plus +inf (accept nothing).

    Thresholds ascend, so FAR falls from 1 to 0 and FRR rises from 0 to 1.
    O(n log n): sorting, then a binary search per threshold.
    """
    t = np.sort(_scores(tar, "target"))
    n = np.sort(_scores(non, "non-target"))
    thresholds = np.append(np.unique(np.concatenate([t, n])), np.inf)
    frr = np.searchsorted(t, thresholds, side="left") / t.size
    far = (n.size - np.searchsorted(n, thresholds, side="left")) / n.size
    return far, frr, thresholds


def eer(tar: np.ndarray, non: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold where FAR and FRR cross).

    Between the two sweep points that bracket the crossing, the DET is taken
    as the straight segment joining them (linear interpolation), the usual
    convention; the threshold is interpolated the same way.
    """
    far, frr, thr = det_curve(tar, non)
    d = far - frr  # falls monotonically from 1 to -1 along ascending thresholds
    j = int(np.argmax(d <= 0))  # first point at or past the crossing
    if d[j] == 0 or j == 0:
        return float(frr[j]), float(thr[j])
    d0, d1 = d[j - 1], d[j]
    a = d0 / (d0 - d1)
    rate = far[j - 1] + a * (far[j] - far[j - 1])
    t_hi = thr[j] if np.isfinite(thr[j]) else thr[j - 1]
    return float(rate), float(thr[j - 1] + a * (t_hi - thr[j - 1]))


def min_dcf(
    tar: np.ndarray, non: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """(normalised minimum detection cost, threshold that reaches it), NIST SRE definition.

    Normalised by the cost of the best trivial system (accept all or reject
    all), so 1.0 means "no better than not looking at the score".
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError("costs must be positive")
    far, frr, thr = det_curve(tar, non)
    cost = c_miss * p_target * frr + c_fa * (1.0 - p_target) * far
    best = int(np.argmin(cost))
    norm = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(cost[best] / norm), float(thr[best])


def frr_at_far(tar: np.ndarray, non: np.ndarray, far: float) -> tuple[float, float, bool]:
    """(FRR, threshold, measurable) at the lowest threshold whose FAR <= ``far``.

    ``measurable`` is False when there are fewer than 10/far non-target trials:
    then the FAR estimate rests on fewer than ~10 false accepts and the number
    is anecdote, not a measurement. It is still returned, but say so.
    """
    if not 0.0 < far < 1.0:
        raise ValueError(f"far must be in (0, 1), got {far}")
    fars, frrs, thr = det_curve(tar, non)
    j = int(np.argmax(fars <= far))  # FAR falls along thresholds; last point has FAR 0
    measurable = np.asarray(non).size >= math.ceil(10.0 / far - 1e-9)
    return float(frrs[j]), float(thr[j]), bool(measurable)


# Axis ticks of the DET plot, in percent: the usual NIST set for the range a
# telephone verifier operates in.
_DET_TICKS_PCT = (0.1, 0.5, 1, 2, 5, 10, 20, 40)
# Rates of exactly 0 or 1 map to infinite deviates; draw them at the frame edge.
_DET_LIMITS = (0.0005, 0.6)


def plot_det(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "DET"
) -> Path:
    """Write a DET plot (FRR against FAR on normal-deviate axes) of one or more systems to a PNG.

    Uses the Agg canvas directly rather than pyplot, so plotting changes no
    process-wide matplotlib state and needs no display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.stats import norm

    if not curves:
        raise ValueError("no curves to plot")
    lo, hi = _DET_LIMITS
    fig = Figure(figsize=(6, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (far, frr) in curves.items():
        x = norm.ppf(np.clip(np.asarray(far, dtype=np.float64), lo, hi))
        y = norm.ppf(np.clip(np.asarray(frr, dtype=np.float64), lo, hi))
        if x.shape != y.shape:
            raise ValueError(f"curve {label!r}: far and frr differ in length")
        ax.plot(x, y, label=str(label))
    ticks = norm.ppf(np.array(_DET_TICKS_PCT) / 100.0)
    labels = [f"{t:g}" for t in _DET_TICKS_PCT]
    edge = norm.ppf([lo, hi])
    ax.plot(edge, edge, color="grey", linestyle=":", linewidth=0.8, label="EER line")
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(*edge)
    ax.set_ylim(*edge)
    ax.set_xlabel("False accept rate (%)")
    ax.set_ylabel("False reject rate (%)")
    ax.set_title(title)
    ax.grid(True, linestyle="--", linewidth=0.5)
    ax.legend(loc="upper right")
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out
