"""Trial lists and their scores for the two evaluation protocols.

*pairs*: every same-speaker pair of regular utterances is a target trial;
every different-speaker pair, and every regular utterance against every
cohort utterance, is a non-target trial.
*enrol3*: each regular speaker is enrolled from their first three utterances
(as the phone enrolment does); every other regular utterance and every
cohort utterance is tested against every enrolled speaker.

Normalisations "asnorm" and "centred-asnorm" use, for each trial, a cohort of every embedding
whose speaker is neither the enrolled nor the tested speaker: the evaluation
counterpart of "the other enrolled speakers" that the engine uses, and never
the trial's own speakers (which would leak the answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from voiceprints.evaluation.manifest import Item
from voiceprints.scoring.cosine import l2_normalise

Protocol = Literal["pairs", "enrol3"]
ENROL_UTTERANCES = 3


@dataclass(frozen=True)
class TrialScores:
    target: np.ndarray
    nontarget: np.ndarray


@dataclass(frozen=True)
class _Trials:
    models: np.ndarray  # (m, dim) enrolment vectors
    model_speakers: list[str]
    tests: np.ndarray  # indices into the embedding matrix
    pairs: np.ndarray  # (t, 2): model index, test index
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
        return _Trials(emb, speakers, np.arange(len(items)), p, is_target)
    # enrol3
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
    tests = np.array([i for i in range(len(items)) if i not in enrol_idx])
    mi, ti = np.meshgrid(np.arange(len(models)), tests, indexing="ij")
    p = np.stack([mi.ravel(), ti.ravel()], axis=1)
    is_target = np.array([model_speakers[m] == speakers[t] for m, t in p], dtype=bool)
    return _Trials(np.stack(models), model_speakers, tests, p, is_target)


def score_trials(items: list[Item], emb: np.ndarray, protocol: Protocol, normalisation: str,
                 top_n: int = 200) -> TrialScores:
    """Scores of all trials of ``protocol``; ``emb`` rows are unit vectors (NaN rows are left out)."""
    ok = ~np.isnan(emb).any(axis=1)
    items = [it for it, keep in zip(items, ok) if keep]
    emb = emb[ok]
    trials = _build(items, emb, protocol)
    models_vs_all = trials.models @ emb.T  # (m, n) cosine of each model with every embedding
    raw = models_vs_all[trials.pairs[:, 0], trials.pairs[:, 1]]
    if normalisation == "none":
        scores = raw
    elif normalisation in ("asnorm", "centred-asnorm"):
        scores = _asnorm(items, emb, trials, models_vs_all, raw, top_n, centred=normalisation == "centred-asnorm")
    else:
        raise ValueError(f"unknown normalisation {normalisation!r}")
    return TrialScores(scores[trials.is_target], scores[~trials.is_target])


def _asnorm(items: list[Item], emb: np.ndarray, trials: _Trials, models_vs_all: np.ndarray, raw: np.ndarray,
            top_n: int, centred: bool) -> np.ndarray:
    speakers = np.array([it.speaker for it in items])
    tests_vs_all = emb @ emb.T
    model_speakers = np.array(trials.model_speakers)
    out = np.empty_like(raw)
    # Group trials by (enrolled speaker, tested speaker): they share one cohort mask.
    names, codes = np.unique(np.concatenate([speakers, model_speakers]), return_inverse=True)
    spk_code, model_code = codes[: len(speakers)], codes[len(speakers):]
    keys = model_code[trials.pairs[:, 0]] * len(names) + spk_code[trials.pairs[:, 1]]
    for key in np.unique(keys):
        sel = np.nonzero(keys == key)[0]
        a, b = names[key // len(names)], names[key % len(names)]
        mask = (speakers != a) & (speakers != b)
        n = min(top_n, int(mask.sum()))
        if centred:  # as the engine does: subtract the cohort mean from every vector, then score
            centre = emb[mask].mean(axis=0)
            models = l2_normalise(trials.models[trials.pairs[sel, 0]] - centre)
            tests = l2_normalise(emb[trials.pairs[sel, 1]] - centre)
            cohort = l2_normalise(emb[mask] - centre)
            s = np.einsum("ij,ij->i", models, tests)
            e_stats, t_stats = _topn(models @ cohort.T, n), _topn(tests @ cohort.T, n)
        else:
            s = raw[sel]
            e_stats = _topn(models_vs_all[trials.pairs[sel, 0]][:, mask], n)
            t_stats = _topn(tests_vs_all[trials.pairs[sel, 1]][:, mask], n)
        out[sel] = 0.5 * ((s - e_stats[0]) / e_stats[1] + (s - t_stats[0]) / t_stats[1])
    return out


def _topn(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    top = -np.partition(-scores, n - 1, axis=1)[:, :n]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)
