"""Is this attempt a replay of one of the account's earlier authentication recordings?

The query's fingerprint is slid along each stored one (every time offset, by
FFT cross-correlation). At each offset the score is the agreement of their
bits over the frames both have active, ``1 - 2 * bit error rate``: 0 for
unrelated audio, 1 for an exact copy. The best offset with at least
``MIN_OVERLAP_S`` of shared active audio gives the match score, so a replay
of only part of an old call, or an old call with other audio around it, is
still found.

Costs: a few milliseconds per stored recording (FFTs of a few thousand
frames), so comparing with an account's last 10 recordings is ~10 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

from voiceprints.replay.fingerprint import FRAME_S, Fingerprint

__all__ = ["MIN_OVERLAP_S", "ReplayCheck", "ReplayReference", "check_replay", "match_score"]

# A replay must overlap a stored recording by at least 0.8 s of speech: less
# than that, chance agreements of a few frames would dominate the score.
MIN_OVERLAP_S = 0.8
# ... and the two must overlap in time by at least 70 % of the shorter one.
# Without this, the best of hundreds of barely-overlapping offsets of two
# unrelated short clips can agree by chance (FSDD digit strings: up to 0.49
# against 0.29 with it), while a replay overlaps the recording it copies by
# (nearly) all of the replayed part.
MIN_OVERLAP_SHARE = 0.7


@dataclass(frozen=True)
class ReplayReference:
    """A stored fingerprint and where it came from (for the result's reason)."""

    fingerprint: Fingerprint
    label: str  # e.g. "enrolment 2026-11-02" or "verification 2026-11-28T10:02Z"


@dataclass(frozen=True)
class ReplayCheck:
    replay: bool
    score: float  # best match score over all references, -1..1 (0 unrelated, 1 identical)
    threshold: float
    matched: str | None  # label of the best-matching reference
    compared: int  # how many references were compared
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"replay": self.replay, "score": round(self.score, 4), "threshold": self.threshold,
                "matched": self.matched, "compared": self.compared, "reason": self.reason}


def match_score(query: Fingerprint, reference: Fingerprint) -> float:
    """Best bit agreement (1 - 2 BER) over all time offsets with enough shared active audio; 0 if none."""
    if query.bits.shape[1] != reference.bits.shape[1]:
        raise ValueError(f"fingerprints of {query.bits.shape[1]} and {reference.bits.shape[1]} bits cannot be compared")
    if len(query) == 0 or len(reference) == 0:
        return 0.0
    q = np.where(query.bits, 1.0, -1.0) * query.active[:, None]
    r = np.where(reference.bits, 1.0, -1.0) * reference.active[:, None]
    size = 1 << (len(q) + len(r) - 1).bit_length()
    # Cross-correlation per bit, summed: agreement minus disagreement at every lag.
    agree = np.fft.irfft(np.conj(np.fft.rfft(q, size, axis=0)) * np.fft.rfft(r, size, axis=0), size, axis=0).sum(1)
    overlap = np.fft.irfft(
        np.conj(np.fft.rfft(query.active.astype(float), size)) * np.fft.rfft(reference.active.astype(float), size),
        size,
    )
    span = np.fft.irfft(np.conj(np.fft.rfft(np.ones(len(q)), size)) * np.fft.rfft(np.ones(len(r)), size), size)
    valid = (overlap >= MIN_OVERLAP_S / FRAME_S - 0.5) & (span >= MIN_OVERLAP_SHARE * min(len(q), len(r)) - 0.5)
    if not valid.any():
        return 0.0
    return float(np.max(agree[valid] / (overlap[valid] * q.shape[1])))


def check_replay(query: Fingerprint, references: Sequence[ReplayReference], threshold: float) -> ReplayCheck:
    """Compare ``query`` with every reference; a replay if the best score reaches ``threshold``."""
    if not references:
        return ReplayCheck(False, 0.0, threshold, None, 0, "no earlier recordings of this account to compare with")
    scores = [match_score(query, r.fingerprint) for r in references]
    i = int(np.argmax(scores))
    best = float(scores[i])
    label = references[i].label
    if best >= threshold:
        return ReplayCheck(True, best, threshold, label, len(references),
                           f"the audio matches {label} (replay score {best:.2f} >= {threshold:.2f})")
    return ReplayCheck(False, best, threshold, label, len(references),
                       f"no earlier recording matches (best {best:.2f} against {len(references)}, "
                       f"replay threshold {threshold:.2f})")
