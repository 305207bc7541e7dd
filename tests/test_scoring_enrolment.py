"""Enrolment: one voiceprint from several utterances, and a mixed-up enrolment is caught and pinpointed."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints.errors import InconsistentEnrolmentError
from voiceprints.scoring.cosine import cosine, l2_normalise
from voiceprints.scoring.enrolment import check_consistency, combine, utterance_consistency

DIM = 256
# The shipped default (EnrolmentConfig.min_consistency).
MIN_CONSISTENCY = 0.55


def utterances(rng: np.random.Generator, speaker: np.ndarray, count: int) -> np.ndarray:
    # Noise of this size puts genuine utterance pairs around cosine 0.7, like
    # GE2E on telephone audio.
    return l2_normalise(speaker + 0.65 * rng.standard_normal((count, DIM)) / np.sqrt(DIM))


def speaker(rng: np.random.Generator) -> np.ndarray:
    return l2_normalise(rng.standard_normal(DIM))


def test_the_voiceprint_is_the_normalised_mean_of_the_utterances():
    rng = np.random.default_rng(0)
    utts = utterances(rng, speaker(rng), 4)
    voiceprint, _ = combine(utts * np.array([[1.0], [3.0], [0.5], [2.0]]))  # loudness must not weight them
    assert voiceprint.dtype == np.float32 and voiceprint.shape == (DIM,)
    assert np.linalg.norm(voiceprint) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(voiceprint, l2_normalise(utts.mean(axis=0)), atol=1e-6)


def test_consistency_is_the_worst_leave_one_out_cosine():
    rng = np.random.default_rng(1)
    utts = utterances(rng, speaker(rng), 5)
    per = utterance_consistency(utts)
    expected = [cosine(utts[i], np.delete(utts, i, axis=0).mean(axis=0)) for i in range(5)]
    np.testing.assert_allclose(per, expected, atol=1e-6)
    assert combine(utts)[1] == pytest.approx(min(expected), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_genuine_utterances_pass(seed):
    rng = np.random.default_rng(seed)
    utts = utterances(rng, speaker(rng), 3)
    _, consistency = combine(utts)
    assert consistency > MIN_CONSISTENCY
    check_consistency(utterance_consistency(utts), MIN_CONSISTENCY)
    check_consistency(consistency, MIN_CONSISTENCY)


@pytest.mark.parametrize("odd_one", [0, 2, 4])
def test_one_impostor_utterance_among_genuine_ones_is_named(odd_one):
    rng = np.random.default_rng(10 + odd_one)
    utts = utterances(rng, speaker(rng), 5)
    utts[odd_one] = utterances(rng, speaker(rng), 1)[0]
    with pytest.raises(InconsistentEnrolmentError) as err:
        check_consistency(utterance_consistency(utts), MIN_CONSISTENCY)
    message = str(err.value)
    assert f"utterance {odd_one + 1} of 5 (index {odd_one})" in message
    assert f"need {MIN_CONSISTENCY:.3f}" in message
    assert err.value.code == "inconsistent_enrolment"


def test_the_single_number_from_combine_still_refuses_but_cannot_name_the_utterance():
    rng = np.random.default_rng(20)
    utts = utterances(rng, speaker(rng), 4)
    utts[1] = utterances(rng, speaker(rng), 1)[0]
    _, consistency = combine(utts)
    with pytest.raises(InconsistentEnrolmentError, match=rf"{consistency:.3f}.*need 0\.550"):
        check_consistency(consistency, MIN_CONSISTENCY)


def test_two_disagreeing_utterances_are_both_to_be_recorded_again():
    rng = np.random.default_rng(21)
    utts = np.vstack([utterances(rng, speaker(rng), 1), utterances(rng, speaker(rng), 1)])
    with pytest.raises(InconsistentEnrolmentError, match="record both again"):
        check_consistency(utterance_consistency(utts), MIN_CONSISTENCY)


def test_a_single_utterance_has_nothing_to_disagree_with():
    rng = np.random.default_rng(22)
    voiceprint, consistency = combine(utterances(rng, speaker(rng), 1))
    assert consistency == 1.0
    assert np.linalg.norm(voiceprint) == pytest.approx(1.0, abs=1e-6)


def test_utterances_that_cancel_out_are_inconsistent():
    v = speaker(np.random.default_rng(23))
    with pytest.raises(InconsistentEnrolmentError):
        combine(np.vstack([v, -v]))


@pytest.mark.parametrize(
    "bad",
    [np.ones(DIM), np.zeros((0, DIM)), np.zeros((3, DIM)), np.full((2, DIM), np.nan)],
    ids=["1-d", "no-utterances", "zero-vectors", "nan"],
)
def test_unusable_embeddings_are_refused(bad):
    with pytest.raises(ValueError):
        combine(bad)


def test_a_consistency_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError):
        check_consistency(float("nan"), MIN_CONSISTENCY)
    with pytest.raises(ValueError):
        check_consistency([], MIN_CONSISTENCY)
