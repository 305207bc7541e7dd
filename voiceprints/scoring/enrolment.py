"""From enrolment utterance embeddings to one voiceprint, and whether they agree.

A voiceprint built from a mix of speakers (a relative answering one prompt, a
TV in the background) would accept both of them later, so enrolment checks
that every utterance sounds like the rest before the mean is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voiceprints.errors import InconsistentEnrolmentError
from voiceprints.scoring.cosine import l2_normalise


def _unit_embeddings(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings)
    if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] == 0:
        raise ValueError(f"expected a matrix of utterance embeddings (k x dim, k >= 1), got shape {e.shape}")
    # float64: the leave-one-out subtraction below should not lose precision.
    return l2_normalise(e).astype(np.float64)


def utterance_consistency(embeddings: np.ndarray) -> np.ndarray:
    """Per utterance: cosine between it and the mean of the other utterances (leave-one-out).

    A single utterance has nothing to disagree with and gets 1.0.
    """
    e = _unit_embeddings(embeddings)
    k = e.shape[0]
    if k == 1:
        return np.ones(1)
    others = (e.sum(axis=0)[None, :] - e) / (k - 1)
    norms = np.linalg.norm(others, axis=1)
    # Two exactly opposite utterances leave a zero "mean of the others": they agree on nothing.
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ij,ij->i", e, others) / norms
    return np.clip(np.where(norms > 1e-12, cos, -1.0), -1.0, 1.0)


def combine(embeddings: np.ndarray) -> tuple[np.ndarray, float]:
    """(voiceprint, consistency): the normalised mean of the utterance embeddings, and the
    lowest leave-one-out cosine, i.e. how well the odd one out agrees with the rest."""
    e = _unit_embeddings(embeddings)
    mean = e.mean(axis=0)
    if np.linalg.norm(mean) < 1e-9:
        raise InconsistentEnrolmentError("the enrolment utterances cancel out: they have no common voice")
    voiceprint = l2_normalise(mean)
    return voiceprint, float(utterance_consistency(e).min())


def check_consistency(consistency: float | Sequence[float] | np.ndarray, min_consistency: float) -> None:
    """Raise InconsistentEnrolmentError if an utterance agrees with the rest less than ``min_consistency``.

    Pass the per-utterance values from :func:`utterance_consistency` so the
    message can name the utterance to record again; a single float (from
    :func:`combine`) can only say that one of them is off.
    """
    values = np.atleast_1d(np.asarray(consistency, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"consistency must be a finite number or a list of them, got {consistency!r}")
    worst = int(np.argmin(values))
    if values[worst] >= min_consistency:
        return
    if values.size == 1 and np.ndim(consistency) == 0:
        raise InconsistentEnrolmentError(
            f"the enrolment utterances do not sound like one speaker: the least consistent one scores "
            f"{values[worst]:.3f} against the others; need {min_consistency:.3f}"
        )
    k = values.size
    if k == 2:
        raise InconsistentEnrolmentError(
            f"the two enrolment utterances do not sound like one speaker: cosine {values[0]:.3f}; "
            f"need {min_consistency:.3f}; record both again"
        )
    low = [i for i in np.argsort(values) if values[i] < min_consistency]
    others = "" if len(low) == 1 else f" (also below: {', '.join(f'utterance {i + 1}' for i in low[1:])})"
    raise InconsistentEnrolmentError(
        f"enrolment utterance {worst + 1} of {k} (index {worst}) does not sound like the others: "
        f"cosine {values[worst]:.3f} against the mean of the rest; need {min_consistency:.3f}{others}; "
        "record it again"
    )
