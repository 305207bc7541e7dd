"""1:N screening of a caller's voice against the fraudster watchlist.

The same in-memory index as identification (``voiceprints.scoring.identify``):
one matrix-vector product, so screening every call costs well under a
millisecond for thousands of entries. A match is the best entry at or above
the threshold, which was measured for a list of 1,000 entries of real
speakers (scripts/bench_attacks.py).

Scores are cosines after subtracting a *centre*, the mean embedding of the
population (the enrolled speakers): every telephone embedding shares a
channel offset that makes plain cosines of different speakers high (GE2E on
telephone audio: 0.1 % of different-speaker pairs above 0.90), and removing
it is what makes a 1,000-entry list usable (hit rate at 1 % false matches per
call: 62 % plain, 76 % centred; README). Without a centre of at least
``MIN_CENTRE_SPEAKERS`` speakers, plain cosine is used with its own, higher
threshold, and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import SpeechDetector
from voiceprints.embedding.base import Embedder
from voiceprints.errors import TooLittleSpeechError
from voiceprints.scoring.cosine import l2_normalise
from voiceprints.scoring.identify import IdentificationIndex

__all__ = ["MIN_CENTRE_SPEAKERS", "WatchlistResult", "WatchlistScreen", "entry_vector"]


@dataclass(frozen=True)
class WatchlistResult:
    hit: bool
    name: str | None  # best-matching entry (also when below the threshold)
    score: float | None  # its cosine; None when the list is empty
    threshold: float
    entries: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"hit": self.hit, "name": self.name, "score": None if self.score is None else round(self.score, 4),
                "threshold": self.threshold, "entries": self.entries, "reason": self.reason}


# Fewer speakers than this give a mean that is more one speaker than the population.
MIN_CENTRE_SPEAKERS = 20


class WatchlistScreen:
    """Screens embeddings of one model against a snapshot of the watchlist (rebuild it after changes).

    ``population``: embeddings of other speakers (the enrolled voiceprints)
    whose mean is the centre; ``threshold`` applies to centred cosines,
    ``uncentred_threshold`` when the population is too small to centre.
    """

    def __init__(self, model_id: str, names: Sequence[str], matrix: np.ndarray, *, threshold: float,
                 uncentred_threshold: float, population: np.ndarray | None = None) -> None:
        self.model_id = model_id
        pop = None if population is None else np.asarray(population, dtype=np.float32)
        self.centre = (_mean_direction(pop)
                       if pop is not None and pop.ndim == 2 and len(pop) >= MIN_CENTRE_SPEAKERS else None)
        self.threshold = float(threshold if self.centre is not None else uncentred_threshold)
        self._index = (IdentificationIndex.from_matrix(model_id, list(names), self._centred(np.asarray(matrix)))
                       if len(names) else None)

    def _centred(self, x: np.ndarray) -> np.ndarray:
        """Unit vectors, minus the centre, renormalised (embeddings are compared on the unit sphere)."""
        unit = l2_normalise(x)
        return unit if self.centre is None else l2_normalise(unit - self.centre)

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    def screen(self, vector: np.ndarray) -> WatchlistResult:
        if self._index is None:
            return WatchlistResult(False, None, None, self.threshold, 0, "the watchlist is empty")
        (name, score), = self._index.top_k(self._centred(np.asarray(vector)), 1)
        n = len(self._index)
        how = "" if self.centre is not None else (
            f"; plain cosine: fewer than {MIN_CENTRE_SPEAKERS} enrolled speakers to centre scores with")
        if score >= self.threshold:
            return WatchlistResult(True, name, score, self.threshold, n,
                                   f"voice matches watchlist entry {name!r} (score {score:.3f} >= "
                                   f"{self.threshold:.3f}{how})")
        return WatchlistResult(False, name, score, self.threshold, n,
                               f"no watchlist match among {n} entries (best {score:.3f} < {self.threshold:.3f}{how})")


def entry_vector(embedder: Embedder, clips: Sequence[AudioClip], *, detector: SpeechDetector | None = None,
                 min_speech_s: float = 3.0) -> tuple[np.ndarray, float]:
    """A watchlist vector from recordings of one voice: mean of their embeddings, and the net speech used."""
    detector = detector or SpeechDetector()
    speech = [detector.speech_only(c) for c in clips]
    total = sum(s.duration_s for s in speech)
    if total < min_speech_s:
        raise TooLittleSpeechError(
            f"only {total:.1f} s of speech in {len(clips)} recording(s); a watchlist entry needs {min_speech_s:.1f} s",
            net_speech_s=total, required_s=min_speech_s)
    usable = [s for s in speech if s.duration_s > 0]
    return l2_normalise(embedder.embed_batch(usable).mean(axis=0)).astype(np.float32), float(total)


def _mean_direction(population: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """Mean of the unit rows, a chunk at a time: no full normalised copy of a large population."""
    total = np.zeros(population.shape[1], dtype=np.float64)
    for start in range(0, len(population), chunk):
        total += l2_normalise(population[start:start + chunk]).sum(axis=0)
    return (total / len(population)).astype(np.float32)
