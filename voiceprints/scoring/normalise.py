"""Score normalisation against a population of other speakers: the one implementation.

The engine and the evaluation both score trials through :func:`build_normaliser`,
so the accuracy we publish comes from the code that decides calls.

Methods (``VerificationConfig.normalisation``):

* ``none`` — cosine of the two vectors. For a fused embedding (several models'
  unit vectors concatenated, each scaled by 1/sqrt(k)) that is the mean of the
  per-model cosines.
* ``asnorm`` / ``centred-asnorm`` — adaptive symmetric normalisation
  (:class:`~voiceprints.scoring.asnorm.AsNorm`) against the population's
  voiceprints, optionally after subtracting their mean. Per-speaker statistics:
  best EER on LibriSpeech, but heavier tails at low FAR (shared/notes/models.md:
  FRR at FAR 0.1 % 9.3 % against 1.9 % for cosine on real IVR calls).
* ``centred-znorm`` — per model: subtract the population's mean voiceprint,
  cosine, then express the score in impostor standard deviations measured on
  the population itself (each voiceprint against the single utterances of the
  *other* speakers: the same kind of comparison as a verification); average
  over models and standardise the average the same way, its scale anchored so
  that the population's own 0.1 % impostor tail sits where a Gaussian's would
  (3.09). Global statistics, no per-speaker ones: the recipe that did best at
  FAR 0.1 % on real phone calls (shared/notes/models.md, "Best offline
  recipe"). Its scores read as "impostor standard deviations above the impostor
  mean, tail-calibrated" on this deployment's own channel and callers, which is
  what lets one shipped threshold travel.

A *population* is what the engine has at hand: the enrolled voiceprints, the
per-utterance enrolment embeddings stored with them, and optionally a cohort
file (``ivr cohort build``) of single recordings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voiceprints.scoring.asnorm import AsNorm
from voiceprints.scoring.cosine import l2_normalise

METHODS = ("none", "asnorm", "centred-asnorm", "centred-znorm")
# Statistics of centred-znorm use at most this many voiceprints x utterances
# (a random, seeded subset beyond): 500 x 1500 pairs estimate a mean and a
# standard deviation to well under 1 %, and building them stays ~0.1 s on one
# core for any store size (they are rebuilt after every enrolment).
_STATS_MAX_VOICEPRINTS = 500
_STATS_MAX_UTTERANCES = 1500
# centred-znorm anchors its scale at the impostor tail it decides on: the
# population's own 0.1 % quantile maps to the Gaussian one (3.09). LibriSpeech
# through the telephone simulation has lighter impostor tails than the original
# audio (0.1 % quantile 2.5-2.7 against 3.2-3.35 impostor standard deviations,
# scripts/bench_accuracy.py); one threshold in plain standard deviations cannot
# serve both, one anchored at the measured tail can. A quantile is trusted when
# at least ANCHOR_MIN_EXCEEDANCES pairs lie beyond it (82 callers x 3
# utterances give ~20,000 pairs: 0.1 %); smaller populations anchor at a
# shallower tail (down to 1 %), and below 1,000 pairs the plain standard
# deviation is used.
ANCHOR_FAR = 0.001
ANCHOR_MAX_FAR = 0.01
ANCHOR_MIN_EXCEEDANCES = 10
# A spread this small means the population is degenerate (one voice copied);
# dividing by it would turn rounding noise into huge scores.
_MIN_STD = 1e-4


@dataclass(frozen=True)
class Population:
    """Speakers that are not (necessarily) the claimant, as the normalisers see them.

    ``voiceprints``: one row per speaker (enrolment means, or single recordings
    of a cohort file), labelled by ``speakers``. ``utterances``: single-
    utterance embeddings labelled by ``utterance_speakers`` (the enrolment
    utterances kept with each voiceprint; cohort recordings). Rows need not be
    unit length; they are normalised here.
    """

    voiceprints: np.ndarray
    speakers: tuple[str, ...]
    utterances: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    utterance_speakers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.voiceprints.ndim != 2 or len(self.speakers) != self.voiceprints.shape[0]:
            raise ValueError(f"{len(self.speakers)} speaker labels for voiceprints of shape {self.voiceprints.shape}")
        if len(self.utterance_speakers) != self.utterances.shape[0]:
            raise ValueError(f"{len(self.utterance_speakers)} labels for {self.utterances.shape[0]} utterances")

    @property
    def n_speakers(self) -> int:
        return len(set(self.speakers) | set(self.utterance_speakers))

    def others(self, speaker_id: str | None) -> int:
        """Speakers in the population other than ``speaker_id``."""
        labels = set(self.speakers) | set(self.utterance_speakers)
        return len(labels) - (speaker_id in labels)

    @classmethod
    def of_recordings(cls, vectors: np.ndarray, speakers: Sequence[str]) -> Population:
        """A population of single recordings only (evaluation cohorts, cohort files)."""
        labels = tuple(speakers)
        return cls(vectors, labels, vectors, labels)

    def plus(self, other: Population) -> Population:
        """Both populations together (enrolled speakers topped up with a cohort file)."""
        def stack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            if a.size == 0:
                return b
            return a if b.size == 0 else np.concatenate([a, b])

        return Population(stack(self.voiceprints, other.voiceprints), self.speakers + other.speakers,
                          stack(self.utterances, other.utterances), self.utterance_speakers + other.utterance_speakers)


class ScoreNormaliser(Protocol):
    """Maps (voiceprint, test vector, claimed speaker) to the score the thresholds apply to."""

    @property
    def method(self) -> str: ...

    def score(self, enrol: np.ndarray, test: np.ndarray, claimed: str | None = None) -> float: ...


def _slices(layout: Sequence[int]) -> list[slice]:
    bounds = np.cumsum([0, *layout])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class CosineScorer:
    """``none``: the plain cosine (the mean of per-model cosines for a fused vector)."""

    method: str = "none"

    def score(self, enrol: np.ndarray, test: np.ndarray, claimed: str | None = None) -> float:
        e = l2_normalise(np.asarray(enrol)).astype(np.float64)
        t = l2_normalise(np.asarray(test)).astype(np.float64)
        return float(np.clip(e @ t, -1.0, 1.0))


@dataclass(frozen=True)
class AsNormScorer:
    """``asnorm`` / ``centred-asnorm`` over the population's voiceprints, claimant left out by id."""

    method: str
    asnorm: AsNorm
    centre: np.ndarray | None

    def score(self, enrol: np.ndarray, test: np.ndarray, claimed: str | None = None) -> float:
        if self.centre is not None:
            enrol, test = l2_normalise(enrol - self.centre), l2_normalise(test - self.centre)
        exclude = None if claimed is None else self.asnorm.index_of(claimed)
        return self.asnorm.score(enrol, test, exclude_index=exclude)


@dataclass(frozen=True)
class CentredZNorm:
    """``centred-znorm``: per-model centring and global impostor statistics, averaged, standardised."""

    method: str
    parts: tuple[slice, ...]
    centres: tuple[np.ndarray, ...]
    mean: np.ndarray  # impostor mean per model
    std: np.ndarray  # impostor standard deviation per model
    fused_mean: float
    fused_std: float  # scale of the average; anchored at the impostor tail when `anchor` is set
    n_pairs: int  # impostor pairs the statistics were measured on
    anchor: float | None = None  # impostor tail share the scale was anchored at

    def part_scores(self, enrol: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Centred cosines per model, for a (dim,) pair or row-wise for (n, dim) matrices."""
        e, t = np.atleast_2d(np.asarray(enrol)), np.atleast_2d(np.asarray(test))
        out = []
        for part, centre in zip(self.parts, self.centres):
            ue = l2_normalise(l2_normalise(e[:, part]) - centre).astype(np.float64)
            ut = l2_normalise(l2_normalise(t[:, part]) - centre).astype(np.float64)
            out.append(np.einsum("ij,ij->i", ue, ut))
        return np.stack(out, axis=1)

    def standardise(self, part_scores: np.ndarray) -> np.ndarray:
        z = (part_scores - self.mean) / self.std
        return (z.mean(axis=1) - self.fused_mean) / self.fused_std

    def score(self, enrol: np.ndarray, test: np.ndarray, claimed: str | None = None) -> float:
        return float(self.standardise(self.part_scores(enrol, test))[0])


def _centred_znorm(population: Population, layout: Sequence[int], method: str) -> CentredZNorm:
    parts = tuple(_slices(layout))
    vp = np.asarray(population.voiceprints, dtype=np.float32)
    vp_labels = np.array(population.speakers, dtype=object)
    centres = tuple(l2_normalise(vp[:, p]).mean(axis=0) for p in parts)
    # Pairs among one set of recordings (a cohort of single recordings; voiceprints stored
    # before per-utterance embeddings were kept) count each unordered pair once.
    same = population.utterances is population.voiceprints or population.utterances.size == 0
    rng = np.random.default_rng(0)  # seeded: the same population always gives the same statistics
    if len(vp) > _STATS_MAX_VOICEPRINTS:
        pick = np.sort(rng.choice(len(vp), _STATS_MAX_VOICEPRINTS, replace=False))
        vp, vp_labels = vp[pick], vp_labels[pick]
    if same:
        ut, ut_labels = vp, vp_labels
    else:
        ut = np.asarray(population.utterances, dtype=np.float32)
        ut_labels = np.array(population.utterance_speakers, dtype=object)
        if len(ut) > _STATS_MAX_UTTERANCES:
            pick = np.sort(rng.choice(len(ut), _STATS_MAX_UTTERANCES, replace=False))
            ut, ut_labels = ut[pick], ut_labels[pick]
    impostor = vp_labels[:, None] != ut_labels[None, :]
    if same:
        impostor &= np.triu(np.ones(impostor.shape, dtype=bool), k=1)
    rows, cols = np.nonzero(impostor)
    if rows.size < 2:
        raise ValueError("the population has no pair of different speakers to measure impostor scores on")
    per_part = []
    for part, centre in zip(parts, centres):
        a = l2_normalise(l2_normalise(vp[:, part]) - centre)
        b = l2_normalise(l2_normalise(ut[:, part]) - centre)
        per_part.append((a @ b.T)[rows, cols].astype(np.float64))
    scores = np.stack(per_part, axis=1)  # (pairs, models)
    mean, std = scores.mean(axis=0), np.maximum(scores.std(axis=0), _MIN_STD)
    fused = ((scores - mean) / std).mean(axis=1)
    f_mean, f_std = float(fused.mean()), float(max(fused.std(), _MIN_STD))
    anchor = tail_anchor(int(rows.size))
    if anchor is not None:
        # Scale so that the share `anchor` of the population's impostor pairs lies above the
        # Gaussian quantile for it: the tail that decides a FAR of 0.1 % is measured, not assumed.
        from scipy.stats import norm

        quantile = float(np.quantile((fused - f_mean) / f_std, 1.0 - anchor))
        if quantile > 0:
            f_std *= quantile / float(norm.ppf(1.0 - anchor))
    return CentredZNorm(method, parts, centres, mean, std, f_mean, f_std, int(rows.size), anchor)


def tail_anchor(n_pairs: int) -> float | None:
    """Impostor tail share the scale is anchored at: ANCHOR_FAR, or the smallest share that
    ``n_pairs`` puts ANCHOR_MIN_EXCEEDANCES pairs above; None (plain standard deviation) below that."""
    if n_pairs < ANCHOR_MIN_EXCEEDANCES / ANCHOR_MAX_FAR:
        return None
    return max(ANCHOR_FAR, ANCHOR_MIN_EXCEEDANCES / n_pairs)


def build_normaliser(method: str, population: Population | None, layout: Sequence[int], *,
                     top_n: int = 200) -> ScoreNormaliser:
    """The normaliser ``method`` over ``population`` for vectors laid out as ``layout`` (dims of each model).

    Raises ValueError for an unknown method or a population it cannot work
    with; callers check the population size against their own minimum first.
    """
    if method not in METHODS:
        raise ValueError(f"unknown normalisation {method!r}; use one of {', '.join(METHODS)}")
    if method == "none":
        return CosineScorer()
    if population is None or population.voiceprints.shape[0] < 3:
        raise ValueError(f"{method} needs a population of at least 3 speakers")
    if population.voiceprints.shape[1] != sum(layout):
        raise ValueError(f"population vectors have dimension {population.voiceprints.shape[1]}, "
                         f"the model's layout {tuple(layout)} sums to {sum(layout)}")
    if method == "centred-znorm":
        return _centred_znorm(population, layout, method)
    vectors = l2_normalise(population.voiceprints)
    centre = vectors.mean(axis=0) if method == "centred-asnorm" else None
    if centre is not None:
        vectors = l2_normalise(vectors - centre)
    # Labels of a cohort file are file names, not enrolled ids; uniqueness is all AS-norm needs.
    unique = len(set(population.speakers)) == len(population.speakers)
    return AsNormScorer(method, AsNorm(vectors, top_n, ids=population.speakers if unique else None), centre)
