"""Trial lists and their scores for the two research protocols, scored by the engine's normaliser.

*pairs*: every same-speaker pair of regular utterances is a target trial;
every different-speaker pair, and every regular utterance against every
cohort utterance, is a non-target trial.
*enrol3*: each regular speaker is enrolled from their first three usable
utterances (the mean, as the phone enrolment does); every other regular
utterance and every cohort utterance is tested against every enrolled speaker.

Normalisations use, for each trial, a population of every recording whose
speaker is neither the enrolled nor the tested speaker (never the trial's own
speakers, which would leak the answer), and score through
:func:`voiceprints.scoring.normalise.build_normaliser`, the code the engine
decides calls with. ``--protocol engine`` (``engine_protocol.py``) is the
deployment's view: the engine's own population and thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voiceprints.evaluation.manifest import Item
from voiceprints.scoring.cosine import l2_normalise
from voiceprints.scoring.normalise import Population, build_normaliser

Protocol = Literal["pairs", "enrol3", "engine"]
ENROL_UTTERANCES = 3


@dataclass(frozen=True)
class TrialScores:
    target: np.ndarray
    nontarget: np.ndarray


@dataclass(frozen=True)
class _Trials:
    models: np.ndarray  # (m, dim) enrolment vectors
    model_speakers: list[str]
    pairs: np.ndarray  # (t, 2): model index, test index (into the embedding matrix)
    is_target: np.ndarray  # (t,) bool


def _build(items: list[Item], emb: np.ndarray, protocol: Protocol) -> _Trials:
    regular = [i for i, it in enumerate(items) if not it.is_cohort]
    cohort = [i for i, it in enumerate(items) if it.is_cohort]
    speakers = [it.speaker for it in items]
    if protocol == "pairs":
        reg = np.array(regular)
        a, b = np.triu_indices(len(reg), k=1)
        pairs = [np.stack([reg[a], reg[b]], axis=1)]
        if cohort:
            ra, cb = np.meshgrid(reg, np.array(cohort), indexing="ij")
            pairs.append(np.stack([ra.ravel(), cb.ravel()], axis=1))
        p = np.concatenate(pairs)
        is_target = np.array([speakers[x] == speakers[y] for x, y in p], dtype=bool)
        return _Trials(emb, speakers, p, is_target)
    if protocol != "enrol3":
        raise ValueError(f"unknown trial protocol {protocol!r}")
    by_speaker: dict[str, list[int]] = {}
    for i in regular:
        by_speaker.setdefault(speakers[i], []).append(i)
    models, model_speakers, enrol_idx = [], [], set()
    for spk, idx in sorted(by_speaker.items()):
        idx = sorted(idx, key=lambda i: items[i].utterance_id)
        if len(idx) <= ENROL_UTTERANCES:
            continue  # nothing left to test this speaker with
        models.append(l2_normalise(emb[idx[:ENROL_UTTERANCES]].mean(axis=0)))
        model_speakers.append(spk)
        enrol_idx.update(idx[:ENROL_UTTERANCES])
    if not models:
        raise ValueError(f"no speaker has more than {ENROL_UTTERANCES} usable utterances: nothing to test")
    tests = np.array([i for i in range(len(items)) if i not in enrol_idx])
    mi, ti = np.meshgrid(np.arange(len(models)), tests, indexing="ij")
    p = np.stack([mi.ravel(), ti.ravel()], axis=1)
    is_target = np.array([model_speakers[m] == speakers[t] for m, t in p], dtype=bool)
    return _Trials(np.stack(models), model_speakers, p, is_target)


def score_trials(items: list[Item], emb: np.ndarray, protocol: Protocol, normalisation: str,
                 top_n: int = 200, layout: Sequence[int] | None = None) -> TrialScores:
    """Scores of all trials of ``protocol``; NaN rows of ``emb`` (unusable clips) take part in no trial.

    ``layout``: dimensions of each model's part of a fused vector (default: one model).
    """
    ok = ~np.isnan(emb).any(axis=1)
    items = [it for it, keep in zip(items, ok) if keep]
    emb = emb[ok]
    layout = tuple(layout or (emb.shape[1],))
    trials = _build(items, emb, protocol)
    if normalisation == "none":
        scores = np.einsum("ij,ij->i", l2_normalise(trials.models[trials.pairs[:, 0]]).astype(np.float64),
                           l2_normalise(emb[trials.pairs[:, 1]]).astype(np.float64))
    else:
        scores = _normalised(items, emb, trials, normalisation, top_n, layout)
    return TrialScores(scores[trials.is_target], scores[~trials.is_target])


def _normalised(items: list[Item], emb: np.ndarray, trials: _Trials, method: str, top_n: int,
                layout: tuple[int, ...]) -> np.ndarray:
    speakers = np.array([it.speaker for it in items])
    model_speakers = np.array(trials.model_speakers)
    out = np.empty(len(trials.pairs), dtype=np.float64)
    # Group trials by (enrolled speaker, tested speaker): they share one population.
    names, codes = np.unique(np.concatenate([speakers, model_speakers]), return_inverse=True)
    spk_code, model_code = codes[: len(speakers)], codes[len(speakers):]
    keys = model_code[trials.pairs[:, 0]] * len(names) + spk_code[trials.pairs[:, 1]]
    for key in np.unique(keys):
        sel = np.nonzero(keys == key)[0]
        a, b = names[key // len(names)], names[key % len(names)]
        mask = (speakers != a) & (speakers != b)
        population = Population.of_recordings(emb[mask], speakers[mask].tolist())
        normaliser = build_normaliser(method, population, layout, top_n=top_n)
        for i in sel:
            m, t = trials.pairs[i]
            out[i] = normaliser.score(trials.models[m], emb[t])
    return out
