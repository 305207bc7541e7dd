"""Evaluation protocols: which trials exist, and that normalisation never sees the trial's own speakers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voiceprints.errors import VoiceprintError
from voiceprints.evaluation.manifest import Item, read_manifest
from voiceprints.evaluation.trials import score_trials


def population(speakers: int, per_speaker: int, cohort: int, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    items, rows = [], []
    for s in range(speakers):
        centre = rng.standard_normal(dim)
        for u in range(per_speaker):
            items.append(Item(Path(f"s{s}u{u}.wav"), f"s{s}", f"s{s}u{u:02d}", "eval"))
            rows.append(centre + 0.5 * rng.standard_normal(dim))
    for c in range(cohort):
        items.append(Item(Path(f"c{c}.wav"), f"c{c}", f"c{c}", "cohort"))
        rows.append(rng.standard_normal(dim))
    emb = np.array(rows, dtype=np.float32)
    return items, emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_pairs_protocol_counts_every_pair_and_cohort_only_as_impostors():
    items, emb = population(3, 3, 2)
    scores = score_trials(items, emb, "pairs", "none")
    assert len(scores.target) == 3 * 3  # C(3,2) per speaker
    assert len(scores.nontarget) == (36 - 9) + 9 * 2  # other regular pairs + each regular vs each cohort


def test_enrol3_protocol_enrols_from_three_and_tests_the_rest():
    items, emb = population(3, 5, 4)
    scores = score_trials(items, emb, "enrol3", "none")
    assert len(scores.target) == 3 * 2
    assert len(scores.nontarget) == 3 * (2 * 2 + 4)


def test_unusable_files_are_left_out_of_every_trial():
    items, emb = population(3, 3, 0)
    emb[0] = np.nan
    scores = score_trials(items, emb, "pairs", "none")
    assert len(scores.target) == 1 + 3 + 3
    assert np.isfinite(scores.target).all() and np.isfinite(scores.nontarget).all()


def test_asnorm_cohort_excludes_both_speakers_of_the_trial():
    items, emb = population(4, 2, 5, seed=3)
    scores = score_trials(items, emb, "pairs", "asnorm", top_n=3)
    # Recompute the first target trial (s0u0 vs s0u1) by hand with a cohort of every other speaker.
    speakers = np.array([it.speaker for it in items])
    cohort = emb[speakers != "s0"]
    raw = float(emb[0] @ emb[1])

    def stats(v):
        top = np.sort(cohort @ v)[-3:]
        return top.mean(), top.std()

    (me, se), (mt, st) = stats(emb[0]), stats(emb[1])
    expected = 0.5 * ((raw - me) / se + (raw - mt) / st)
    assert scores.target[0] == pytest.approx(expected, rel=1e-4)


def test_manifest_problems_are_reported_up_front(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("path,speaker\nx.wav,a\n")
    with pytest.raises(VoiceprintError, match="utterance_id"):
        read_manifest(bad)
    bad.write_text("path,speaker,utterance_id\nmissing.wav,a,a1\n")
    with pytest.raises(VoiceprintError, match="do not exist"):
        read_manifest(bad)
    with pytest.raises(VoiceprintError, match="does not exist"):
        read_manifest(tmp_path / "absent.csv")
