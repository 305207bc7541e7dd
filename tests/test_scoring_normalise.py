"""The one normaliser: what each method computes from a population, for single and fused vectors."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints.scoring.asnorm import AsNorm
from voiceprints.scoring.cosine import cosine, l2_normalise
from voiceprints.scoring.normalise import METHODS, CentredZNorm, Population, build_normaliser

LAYOUT = (16, 24)  # a "fused" vector: two models of 16 and 24 dimensions


def fused_vectors(rng, centres, per_speaker: int, noise: float = 0.6) -> tuple[np.ndarray, list[str]]:
    """Unit vectors per part, scaled 1/sqrt(2) and concatenated, as FusedEmbedder lays them out."""
    rows, labels = [], []
    for s, centre in enumerate(centres):
        for _ in range(per_speaker):
            parts = []
            start = 0
            for d in LAYOUT:
                part = centre[start:start + d] + noise * rng.standard_normal(d) / np.sqrt(d)
                parts.append(l2_normalise(part) / np.sqrt(len(LAYOUT)))
                start += d
            rows.append(np.concatenate(parts))
            labels.append(f"s{s}")
    return np.array(rows, dtype=np.float32), labels


@pytest.fixture
def enrolled():
    """30 speakers x 3 enrolment utterances, a shared offset (the 'channel'), voiceprints = utterance means."""
    rng = np.random.default_rng(7)
    channel = rng.standard_normal(sum(LAYOUT)) * 0.8
    centres = [channel + rng.standard_normal(sum(LAYOUT)) for _ in range(30)]
    utterances, labels = fused_vectors(rng, centres, 3)
    ids = [f"s{s}" for s in range(30)]
    voiceprints = np.stack([l2_normalise(utterances[3 * s:3 * s + 3].mean(axis=0)) for s in range(30)])
    return Population(voiceprints, tuple(ids), utterances, tuple(labels)), centres, rng


def test_none_is_the_cosine_and_for_fused_vectors_the_mean_of_the_models_cosines(enrolled):
    population, _, _ = enrolled
    a, b = population.utterances[0], population.utterances[5]
    scorer = build_normaliser("none", None, LAYOUT)
    assert scorer.score(a, b) == pytest.approx(cosine(a, b))
    assert scorer.score(a, b) == pytest.approx(np.mean([cosine(a[:16], b[:16]), cosine(a[16:], b[16:])]), abs=1e-6)


def test_centred_znorm_standardises_the_populations_own_impostor_scores(enrolled):
    population, _, _ = enrolled
    norm = build_normaliser("centred-znorm", population, LAYOUT)
    assert isinstance(norm, CentredZNorm)
    labels = np.array(population.utterance_speakers)
    scores = [norm.score(population.voiceprints[i], population.utterances[j])
              for i, sid in enumerate(population.speakers) for j in np.flatnonzero(labels != sid)]
    assert norm.n_pairs == len(scores) == 30 * 29 * 3
    assert np.mean(scores) == pytest.approx(0.0, abs=1e-6)
    # 2,610 pairs: the scale is anchored where 10 of them lie above the Gaussian quantile.
    assert norm.anchor == pytest.approx(10 / 2610)
    assert np.sum(np.array(scores) > norm_ppf(1 - norm.anchor)) == pytest.approx(10, abs=1)


def norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def test_small_populations_use_the_plain_standard_deviation_and_big_ones_the_01_percent_tail():
    from voiceprints.scoring.normalise import tail_anchor

    assert tail_anchor(999) is None and tail_anchor(1000) == pytest.approx(0.01)
    assert tail_anchor(5000) == pytest.approx(0.002) and tail_anchor(82 * 81 * 3) == 0.001
    rng = np.random.default_rng(3)
    vectors = l2_normalise(rng.standard_normal((30, sum(LAYOUT))))  # 435 pairs of single recordings
    norm = build_normaliser("centred-znorm", Population.of_recordings(vectors, [f"c{i}" for i in range(30)]), LAYOUT)
    assert norm.anchor is None
    labels = np.arange(30)
    scores = [norm.score(vectors[i], vectors[j]) for i in labels for j in labels if i < j]
    assert np.std(scores) == pytest.approx(1.0, abs=1e-6)


def test_centred_znorm_centres_each_model_on_its_own_and_puts_genuine_trials_far_above(enrolled):
    population, centres, rng = enrolled
    norm = build_normaliser("centred-znorm", population, LAYOUT)
    for part, centre in zip(norm.parts, norm.centres):
        expected = l2_normalise(population.voiceprints[:, part]).mean(axis=0)
        np.testing.assert_allclose(centre, expected, atol=1e-6)
    probes, labels = fused_vectors(rng, centres[:5], 2)
    genuine = [norm.score(population.voiceprints[int(s[1:])], p) for p, s in zip(probes, labels)]
    assert min(genuine) > 3.0  # several impostor standard deviations


def test_vectorised_and_single_trial_scores_agree(enrolled):
    population, _, _ = enrolled
    norm = build_normaliser("centred-znorm", population, LAYOUT)
    e, t = population.voiceprints[:10], population.utterances[40:50]
    many = norm.standardise(norm.part_scores(e, t))
    np.testing.assert_allclose(many, [norm.score(a, b) for a, b in zip(e, t)], atol=1e-9)


def test_asnorm_methods_are_asnorm_over_the_voiceprints_with_the_claimant_left_out(enrolled):
    population, _, _ = enrolled
    enrol, test = population.voiceprints[3], population.utterances[10]
    plain = build_normaliser("asnorm", population, LAYOUT, top_n=10)
    direct = AsNorm(population.voiceprints, 10, ids=population.speakers)
    assert plain.score(enrol, test, "s3") == pytest.approx(direct.score(enrol, test, exclude_index=3))
    centred = build_normaliser("centred-asnorm", population, LAYOUT, top_n=10)
    mean = l2_normalise(population.voiceprints).mean(axis=0)
    shifted = AsNorm(l2_normalise(population.voiceprints - mean), 10, ids=population.speakers)
    expected = shifted.score(l2_normalise(enrol - mean), l2_normalise(test - mean), exclude_index=3)
    assert centred.score(enrol, test, "s3") == pytest.approx(expected)


def test_a_cohort_of_single_recordings_scores_each_unordered_pair_once():
    rng = np.random.default_rng(1)
    vectors = l2_normalise(rng.standard_normal((12, sum(LAYOUT))))
    norm = build_normaliser("centred-znorm", Population.of_recordings(vectors, [f"c{i}" for i in range(12)]), LAYOUT)
    assert norm.n_pairs == 12 * 11 // 2


def test_populations_combine_and_count_speakers(enrolled):
    population, _, _ = enrolled
    cohort = Population.of_recordings(population.utterances[:4], ["cohort:a", "cohort:b", "cohort:c", "cohort:d"])
    both = population.plus(cohort)
    assert both.voiceprints.shape[0] == 34 and both.utterances.shape[0] == 94
    assert both.n_speakers == 34 and both.others("s0") == 33 and both.others("nobody") == 34


def test_bad_requests_are_refused_with_the_reason(enrolled):
    population, _, _ = enrolled
    with pytest.raises(ValueError, match="unknown normalisation"):
        build_normaliser("tnorm", population, LAYOUT)
    with pytest.raises(ValueError, match="at least 3 speakers"):
        build_normaliser("centred-znorm", None, LAYOUT)
    with pytest.raises(ValueError, match="layout"):
        build_normaliser("centred-znorm", population, (16, 16))
    assert set(METHODS) == {"none", "asnorm", "centred-asnorm", "centred-znorm"}
