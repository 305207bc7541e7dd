"""Trials from the enrolled population itself: thresholds measured on the deployment's own channel.

Shipped thresholds come from LibriSpeech and FSDD through a simulated
telephone line; a bank's trunks, codecs and callers are not that. Every
enrolment already holds what a calibration needs, once the per-utterance
embeddings are kept (``enrolment_utterances`` table):

* genuine trials, leave-one-out: each enrolment utterance against the mean of
  the speaker's *other* enrolment utterances (a voiceprint of k-1
  utterances is a little weaker than the real one of k: the genuine scores,
  and so the reject threshold, err on the cautious side);
* impostor trials: each voiceprint against every enrolment utterance of every
  other speaker (n x (n-1) x k of them: 82 callers give ~20,000).

Both are scored with the engine's own normaliser over the same population,
so the thresholds are in exactly the units the engine decides in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceprints.scoring.cosine import l2_normalise
from voiceprints.scoring.normalise import CentredZNorm, Population, ScoreNormaliser

# Impostor trials scored at most (a seeded random subset beyond): 200,000
# resolve a FAR of 0.01 % with 20 false accepts, and keep a 4,000-speaker
# store's calibration under a minute.
MAX_IMPOSTOR_TRIALS = 200_000


class InsufficientTrialsError(ValueError):
    """Too few speakers or trials to set a threshold for the target; the message says how many more."""


@dataclass(frozen=True)
class EnrolmentTrials:
    target: np.ndarray
    nontarget: np.ndarray
    speakers: int  # speakers with enough enrolment utterances to take part
    utterances: int


def _score_rows(normaliser: ScoreNormaliser, enrol: np.ndarray, test: np.ndarray,
                claimed: Sequence[str]) -> np.ndarray:
    """Row-wise scores of trials (enrol[i], test[i], claimed[i]); vectorised where the normaliser allows."""
    if isinstance(normaliser, CentredZNorm):
        return normaliser.standardise(normaliser.part_scores(enrol, test))
    return np.array([normaliser.score(e, t, c) for e, t, c in zip(enrol, test, claimed)], dtype=np.float64)


def enrolment_trials(population: Population, normaliser: ScoreNormaliser, *, min_utterances: int = 3,
                     seed: int = 0) -> EnrolmentTrials:
    """Leave-one-out genuine and cross-speaker impostor trials of ``population``, scored by ``normaliser``.

    Speakers with fewer than ``min_utterances`` stored enrolment utterances
    (e.g. enrolled before utterances were kept) take part in neither.
    """
    if min_utterances < 2:
        raise ValueError("leave-one-out needs at least 2 utterances per speaker")
    labels = np.array(population.utterance_speakers, dtype=object)
    utterances = np.asarray(population.utterances, dtype=np.float32)
    vp_row = {s: i for i, s in enumerate(population.speakers)}
    speakers = [s for s in dict.fromkeys(population.utterance_speakers)
                if s in vp_row and int(np.sum(labels == s)) >= min_utterances]
    keep = np.isin(labels, speakers)
    labels, utterances = labels[keep], utterances[keep]
    if not speakers:
        return EnrolmentTrials(np.zeros(0), np.zeros(0), 0, 0)

    # Genuine: each utterance against the mean of the speaker's others.
    enrol_rows, test_rows, claimed = [], [], []
    for s in speakers:
        own = utterances[labels == s]
        unit = l2_normalise(own).astype(np.float64)
        total = unit.sum(axis=0)
        for j in range(len(own)):
            enrol_rows.append(l2_normalise(total - unit[j]))
            test_rows.append(own[j])
            claimed.append(s)
    target = _score_rows(normaliser, np.array(enrol_rows), np.array(test_rows), claimed)

    # Impostor: every voiceprint against every utterance of another speaker (sampled beyond the cap).
    vps = np.asarray(population.voiceprints, dtype=np.float32)[[vp_row[s] for s in speakers]]
    vp_labels = np.array(speakers, dtype=object)
    pairs_v, pairs_u = np.nonzero(vp_labels[:, None] != labels[None, :])
    if pairs_v.size > MAX_IMPOSTOR_TRIALS:
        pick = np.sort(np.random.default_rng(seed).choice(pairs_v.size, MAX_IMPOSTOR_TRIALS, replace=False))
        pairs_v, pairs_u = pairs_v[pick], pairs_u[pick]
    nontarget = _score_rows(normaliser, vps[pairs_v], utterances[pairs_u], vp_labels[pairs_v].tolist())
    return EnrolmentTrials(target, nontarget, len(speakers), len(utterances))


def check_counts(trials: EnrolmentTrials, *, target_far: float, min_speakers: int, min_nontarget: int,
                 min_target: int) -> None:
    """Refuse (InsufficientTrialsError) a calibration the trials cannot support, naming what is missing."""
    if trials.speakers < min_speakers:
        raise InsufficientTrialsError(
            f"only {trials.speakers} enrolled speaker(s) have their enrolment utterances stored; self-calibration "
            f"needs at least {min_speakers} (speakers enrolled before this version count once re-enrolled)")
    if trials.nontarget.size < min_nontarget:
        per_speaker = max(1, trials.utterances // max(1, trials.speakers))
        need = int(np.ceil(np.sqrt(min_nontarget / per_speaker))) + 1
        raise InsufficientTrialsError(
            f"only {trials.nontarget.size:,} impostor trials from {trials.speakers} speakers; a threshold for "
            f"FAR {target_far:.2%} needs at least {min_nontarget:,} (about {need} speakers with "
            f"{per_speaker} utterances each); enrol more callers first")
    if trials.target.size < min_target:
        raise InsufficientTrialsError(
            f"only {trials.target.size} genuine (leave-one-out) trials; need at least {min_target}")
