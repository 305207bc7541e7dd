"""Error-rate metrics agree with brute force and with cases whose answer is known analytically."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from voiceprints.scoring.metrics import det_curve, eer, frr_at_far, min_dcf, plot_det


def brute_rates(tar: np.ndarray, non: np.ndarray, t: float) -> tuple[float, float]:
    far = sum(1 for s in non if s >= t) / len(non)
    frr = sum(1 for s in tar if s < t) / len(tar)
    return far, frr


def brute_thresholds(tar: np.ndarray, non: np.ndarray) -> list[float]:
    return sorted(set(tar.tolist()) | set(non.tolist())) + [float("inf")]


@pytest.fixture
def tied_scores() -> tuple[np.ndarray, np.ndarray]:
    # Rounded to 1 decimal so targets and non-targets share values: ties are
    # where an off-by-one in >= versus > shows.
    rng = np.random.default_rng(1)
    return np.round(rng.normal(1.0, 1.0, 150), 1), np.round(rng.normal(0.0, 1.0, 400), 1)


def test_det_curve_matches_brute_force_at_every_threshold_including_ties(tied_scores):
    tar, non = tied_scores
    far, frr, thr = det_curve(tar, non)
    expected_thr = brute_thresholds(tar, non)
    assert thr.tolist() == expected_thr
    for i, t in enumerate(expected_thr):
        assert (far[i], frr[i]) == pytest.approx(brute_rates(tar, non, t))
    assert far[0] == 1.0 and frr[0] == 0.0  # lowest threshold accepts everything
    assert far[-1] == 0.0 and frr[-1] == 1.0  # +inf accepts nothing


def test_eer_lies_on_the_crossing_segment_found_by_brute_force(tied_scores):
    tar, non = tied_scores
    rates = [brute_rates(tar, non, t) for t in brute_thresholds(tar, non)]
    lower = max(min(far, frr) for far, frr in rates)
    upper = min(max(far, frr) for far, frr in rates)
    rate, threshold = eer(tar, non)
    assert lower <= rate <= upper
    assert lower < upper  # the case is not degenerate, so the bound means something
    far_t, frr_t = brute_rates(tar, non, threshold)
    assert abs(far_t - frr_t) <= 0.1  # near the crossing, within the 0.1 score granularity


def test_perfectly_separated_scores_have_zero_eer_and_a_threshold_between_them():
    rate, threshold = eer(np.array([0.8, 0.9, 0.95]), np.array([0.1, 0.2, 0.5]))
    assert rate == 0.0
    assert 0.5 < threshold <= 0.8


def test_identical_distributions_have_an_eer_near_one_half():
    rng = np.random.default_rng(2)
    rate, _ = eer(rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000))
    assert rate == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize("d_prime", [1.0, 2.0, 3.0])
def test_two_gaussians_have_the_analytic_eer(d_prime):
    # Equal-variance Gaussians d' apart cross at d'/2, where both error rates are Phi(-d'/2).
    rng = np.random.default_rng(3)
    rate, threshold = eer(rng.normal(d_prime, 1, 40_000), rng.normal(0, 1, 40_000))
    assert rate == pytest.approx(norm.cdf(-d_prime / 2), abs=0.006)
    assert threshold == pytest.approx(d_prime / 2, abs=0.03)


@pytest.mark.parametrize("p_target", [0.01, 0.05, 0.5])
def test_min_dcf_matches_brute_force(tied_scores, p_target):
    tar, non = tied_scores
    norm_cost = min(p_target, 1 - p_target)
    costs = {
        t: (p_target * frr + (1 - p_target) * far) / norm_cost
        for t in brute_thresholds(tar, non)
        for far, frr in [brute_rates(tar, non, t)]
    }
    best = min(costs.values())
    value, threshold = min_dcf(tar, non, p_target=p_target)
    assert value == pytest.approx(best)
    assert costs[threshold] == pytest.approx(best)


def test_min_dcf_uses_the_costs():
    rng = np.random.default_rng(4)
    tar, non = rng.normal(2, 1, 2000), rng.normal(0, 1, 2000)
    cheap_misses, _ = min_dcf(tar, non, p_target=0.01, c_miss=1, c_fa=1)
    dear_misses, t_dear = min_dcf(tar, non, p_target=0.01, c_miss=100, c_fa=1)
    _, t_cheap = min_dcf(tar, non, p_target=0.01, c_miss=1, c_fa=1)
    assert t_dear < t_cheap  # expensive misses push the threshold down
    assert cheap_misses != dear_misses


def test_min_dcf_is_zero_for_perfect_and_at_most_one_for_useless_scores():
    assert min_dcf(np.array([2.0, 3.0]), np.array([0.0, 1.0]))[0] == 0.0
    rng = np.random.default_rng(5)
    useless, _ = min_dcf(rng.normal(0, 1, 3000), rng.normal(0, 1, 3000), p_target=0.01)
    assert 0.9 <= useless <= 1.0


def test_frr_at_far_is_taken_at_the_lowest_threshold_meeting_the_far(tied_scores):
    tar, non = tied_scores
    frr, threshold, _ = frr_at_far(tar, non, 0.05)
    candidates = [t for t in brute_thresholds(tar, non) if brute_rates(tar, non, t)[0] <= 0.05]
    assert threshold == min(candidates)
    assert frr == pytest.approx(brute_rates(tar, non, threshold)[1])


def test_frr_at_far_says_when_there_are_too_few_non_targets_to_measure_it():
    rng = np.random.default_rng(6)
    tar = rng.normal(2, 1, 100)
    assert frr_at_far(tar, rng.normal(0, 1, 999), 0.01)[2] is False
    assert frr_at_far(tar, rng.normal(0, 1, 1000), 0.01)[2] is True
    assert frr_at_far(tar, rng.normal(0, 1, 9_999), 0.001)[2] is False


@pytest.mark.parametrize(
    "tar, non",
    [
        (np.array([]), np.array([0.1])),
        (np.array([0.5]), np.array([])),
        (np.array([0.5, np.nan]), np.array([0.1])),
        (np.array([0.5]), np.array([0.1, np.inf])),
        (np.array([[0.5, 0.6]]), np.array([0.1])),
    ],
    ids=["no-targets", "no-non-targets", "nan", "inf", "2-d"],
)
def test_bad_score_arrays_are_refused(tar, non):
    with pytest.raises(ValueError):
        eer(tar, non)


def test_bad_rates_are_refused():
    tar, non = np.array([1.0, 2.0]), np.array([0.0, 0.5])
    with pytest.raises(ValueError):
        frr_at_far(tar, non, 0.0)
    with pytest.raises(ValueError):
        min_dcf(tar, non, p_target=1.0)


def test_det_plot_is_written_as_a_png_with_every_curve(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(7)
    curves = {}
    for name, d in [("weak", 1.0), ("strong", 3.0)]:
        far, frr, _ = det_curve(rng.normal(d, 1, 500), rng.normal(0, 1, 500))
        curves[name] = (far, frr)
    path = plot_det(curves, tmp_path / "det.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= 400 and image.shape[1] >= 400
    # Rates of 0 and 1 (clipped to the frame) must not break the plot.
    assert np.isfinite(image).all()


def test_det_plot_refuses_nothing_to_draw(tmp_path):
    with pytest.raises(ValueError):
        plot_det({}, tmp_path / "det.png")
