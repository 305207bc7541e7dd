"""AS-norm: the published formula, the claimed speaker left out, fewer errors on a population with hubs."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints.scoring.asnorm import AsNorm
from voiceprints.scoring.cosine import l2_normalise
from voiceprints.scoring.metrics import eer


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return l2_normalise(rng.standard_normal((n, d)))


def reference_score(cohort: np.ndarray, e: np.ndarray, t: np.ndarray, top_n: int | None, exclude: int | None):
    """AS-norm written out the slow, obvious way (WeSpeaker score_norm.py semantics)."""
    keep = [i for i in range(len(cohort)) if i != exclude]

    def stats(v: np.ndarray) -> tuple[float, float]:
        scores = sorted((float(cohort[i].astype(np.float64) @ v) for i in keep), reverse=True)
        top = np.array(scores if top_n is None else scores[:top_n])
        return top.mean(), top.std()

    s = float(e.astype(np.float64) @ t)
    (me, se), (mt, st) = stats(e), stats(t)
    return 0.5 * ((s - me) / se + (s - mt) / st)


@pytest.mark.parametrize("top_n", [5, 29, 30, 200, None])
@pytest.mark.parametrize("exclude", [None, 0, 17])
def test_score_follows_the_published_formula(top_n, exclude):
    rng = np.random.default_rng(0)
    cohort, (e, t) = unit(rng, 30, 24), unit(rng, 2, 24)
    got = AsNorm(cohort, top_n=top_n).score(e, t, exclude_index=exclude)
    assert got == pytest.approx(reference_score(cohort, e, t, top_n, exclude), rel=1e-5)


def test_excluding_the_claimed_speaker_equals_a_cohort_without_them():
    rng = np.random.default_rng(1)
    cohort = unit(rng, 50, 32)
    claimed = 7
    test = l2_normalise(cohort[claimed] + 0.3 * rng.standard_normal(32))
    without = np.delete(cohort, claimed, axis=0)
    shared = AsNorm(cohort, top_n=10).score(cohort[claimed], test, exclude_index=claimed)
    separate = AsNorm(without, top_n=10).score(cohort[claimed], test)
    assert shared == pytest.approx(separate, rel=1e-6)


def test_a_genuine_caller_scores_lower_if_their_own_voiceprint_stays_in_the_cohort():
    # Why exclusion matters: the voiceprint scores 1.0 against itself, which
    # inflates the enrolment-side statistics of exactly the claimed speaker.
    rng = np.random.default_rng(2)
    cohort = unit(rng, 50, 32)
    claimed = 3
    test = l2_normalise(cohort[claimed] + 0.3 * rng.standard_normal(32))
    norm = AsNorm(cohort, top_n=10)
    excluded = norm.score(cohort[claimed], test, exclude_index=claimed)
    included = norm.score(cohort[claimed], test)
    assert excluded > included + 1.0


def test_a_cohort_smaller_than_top_n_is_used_whole():
    rng = np.random.default_rng(3)
    cohort, (e, t) = unit(rng, 8, 16), unit(rng, 2, 16)
    small = AsNorm(cohort, top_n=200)
    assert small.score(e, t) == pytest.approx(AsNorm(cohort, top_n=None).score(e, t))
    scores = cohort.astype(np.float64) @ e
    assert small.enrol_stats(e) == pytest.approx((scores.mean(), scores.std()))
    assert small.enrol_stats(e, exclude_index=2) == pytest.approx(
        (np.delete(scores, 2).mean(), np.delete(scores, 2).std())
    )


def test_cached_enrolment_statistics_give_the_same_score():
    rng = np.random.default_rng(4)
    cohort, (e, t) = unit(rng, 40, 16), unit(rng, 2, 16)
    norm = AsNorm(cohort, top_n=10)
    cached = norm.enrol_stats(e, exclude_index=5)
    assert norm.score(e, t, exclude_index=5, enrol_stats=cached) == pytest.approx(
        norm.score(e, t, exclude_index=5)
    )
    # And the raw score the caller passes is the one that gets normalised.
    raw = float(e @ t)
    assert norm.score(e, t, raw=raw + 0.1) > norm.score(e, t, raw=raw)


@pytest.mark.parametrize("top_n", [3, 10, 39, 40, 41, None])
def test_score_many_equals_scoring_each_candidate_alone(top_n):
    rng = np.random.default_rng(5)
    cohort = unit(rng, 40, 16)
    test = unit(rng, 1, 16)[0]
    # Candidates drawn from the cohort (excluded by row) and from outside it (-1).
    rows = [0, 9, 39, 22]
    enrol = np.vstack([cohort[rows], unit(rng, 2, 16)])
    excl = rows + [-1, -1]
    # Make one candidate's row the test vector's best cohort match, the case
    # where the test-side statistics change with the exclusion.
    test = l2_normalise(cohort[9] + 0.2 * test)
    norm = AsNorm(cohort, top_n=top_n)
    many = norm.score_many(enrol, test, excl)
    alone = [norm.score(e, test, exclude_index=None if x < 0 else x) for e, x in zip(enrol, excl)]
    np.testing.assert_allclose(many, alone, rtol=1e-5, atol=1e-6)


def test_the_cohort_matrix_is_shared_not_copied():
    rng = np.random.default_rng(6)
    cohort = unit(rng, 100, 16)
    norm = AsNorm(cohort, top_n=20)
    assert np.shares_memory(norm._cohort, cohort)


def test_ids_find_the_row_to_exclude():
    rng = np.random.default_rng(7)
    norm = AsNorm(unit(rng, 3, 4), top_n=None, ids=["a", "b", "c"])
    assert norm.index_of("b") == 1
    assert norm.index_of("zed") is None


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: AsNorm(unit(rng, 2, 8)),  # too small for statistics after exclusion
        lambda rng: AsNorm(unit(rng, 10, 8), top_n=1),  # no std from one score
        lambda rng: AsNorm(unit(rng, 10, 8), ids=["a"] * 10),
        lambda rng: AsNorm(unit(rng, 10, 8), ids=["a", "b"]),
        lambda rng: AsNorm(unit(rng, 10, 8)).score(unit(rng, 1, 8)[0], unit(rng, 1, 9)[0]),
        lambda rng: AsNorm(unit(rng, 10, 8)).score(np.zeros(8), unit(rng, 1, 8)[0]),
        lambda rng: AsNorm(unit(rng, 10, 8)).score_many(unit(rng, 2, 8), unit(rng, 1, 8)[0], [0]),
    ],
    ids=[
        "tiny-cohort",
        "top-n-1",
        "duplicate-ids",
        "ids-count",
        "dim-mismatch",
        "zero-vector",
        "exclude-count",
    ],
)
def test_bad_inputs_are_refused(make):
    with pytest.raises(ValueError):
        make(np.random.default_rng(8))


def test_an_exclude_index_outside_the_cohort_is_refused():
    rng = np.random.default_rng(9)
    norm = AsNorm(unit(rng, 10, 8))
    with pytest.raises(IndexError):
        norm.score(unit(rng, 1, 8)[0], unit(rng, 1, 8)[0], exclude_index=10)


# --- the effect AS-norm exists for ------------------------------------------
def hub_population(seed: int, n_speakers: int = 80, d: int = 128):
    """Trials where voiceprints differ in how close they sit to the population mean.

    Every call (test utterance and cohort) carries the same channel component
    ``c``; each voiceprint carries it with its own weight h, as if enrolled over
    different handsets. A voiceprint with large h ("hub") scores high against
    every caller, genuine or not, so one raw-cosine threshold fits no one:
    hubs' impostors are accepted while other speakers' genuine calls fall below.
    """
    rng = np.random.default_rng(seed)
    c = l2_normalise(rng.standard_normal(d))

    def identities(n: int) -> np.ndarray:
        r = rng.standard_normal((n, d))
        return l2_normalise(r - np.outer(r @ c, c))

    def noise(n: int, sigma: float) -> np.ndarray:
        return sigma * rng.standard_normal((n, d)) / np.sqrt(d)

    channel, sigma, per_speaker = 0.8, 1.6, 4
    speakers = identities(n_speakers)
    h = rng.uniform(0.0, 1.5, n_speakers)
    voiceprints = l2_normalise(speakers + h[:, None] * c + noise(n_speakers, sigma / np.sqrt(3)))
    calls = np.repeat(speakers, per_speaker, 0)
    tests = l2_normalise(calls + channel * c + noise(len(calls), sigma))
    test_speaker = np.repeat(np.arange(n_speakers), per_speaker)
    cohort = l2_normalise(identities(300) + channel * c + noise(300, sigma))
    return voiceprints, tests, test_speaker, cohort


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asnorm_cuts_the_eer_of_a_population_with_hubs(seed):
    voiceprints, tests, test_speaker, cohort = hub_population(seed)
    norm = AsNorm(cohort, top_n=100)
    raw = tests @ voiceprints.T  # (tests, speakers)
    normed = np.stack([norm.score_many(voiceprints, t) for t in tests])
    genuine = test_speaker[:, None] == np.arange(len(voiceprints))[None, :]
    raw_eer, _ = eer(raw[genuine], raw[~genuine])
    as_eer, _ = eer(normed[genuine], normed[~genuine])
    assert raw_eer > 0.02  # the population is hard enough for the comparison to mean something
    assert as_eer < 0.7 * raw_eer, f"AS-norm EER {as_eer:.3%} vs cosine {raw_eer:.3%}"
