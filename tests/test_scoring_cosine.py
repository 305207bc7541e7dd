"""Cosine scores are the same whatever the length of the vectors, and nonsense input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints.scoring.cosine import cosine, cosine_matrix, l2_normalise


def test_normalised_rows_have_unit_length_and_keep_their_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 5, (7, 32))
    u = l2_normalise(x)
    assert u.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(u * np.linalg.norm(x, axis=1, keepdims=True), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "bad", [np.zeros(8), np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([np.nan, 1.0]), np.zeros((2, 2, 2))]
)
def test_vectors_without_a_direction_are_refused(bad):
    with pytest.raises(ValueError):
        l2_normalise(bad)


def test_cosine_ignores_length_and_knows_the_special_angles():
    a = np.array([3.0, 0.0, 0.0])
    assert cosine(a, np.array([0.1, 0.0, 0.0])) == pytest.approx(1.0)
    assert cosine(a, np.array([0.0, 2.0, 0.0])) == pytest.approx(0.0)
    assert cosine(a, np.array([-5.0, 0.0, 0.0])) == pytest.approx(-1.0)
    assert cosine(a, np.array([1.0, 1.0, 0.0])) == pytest.approx(np.sqrt(0.5))


def test_cosine_refuses_mismatched_or_zero_vectors():
    with pytest.raises(ValueError):
        cosine(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        cosine(np.ones(3), np.zeros(3))


def test_cosine_matrix_equals_pairwise_cosines():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(9, 16)) * 3
    m = cosine_matrix(a, b)
    assert m.shape == (5, 9) and m.dtype == np.float32
    expected = np.array([[cosine(x, y) for y in b] for x in a])
    np.testing.assert_allclose(m, expected, atol=1e-6)


def test_cosine_matrix_refuses_mismatched_dimensions():
    with pytest.raises(ValueError):
        cosine_matrix(np.ones((2, 3)), np.ones((2, 4)))
