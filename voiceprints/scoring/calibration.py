"""Thresholds from measured trials, and the defaults shipped for each model family.

Two thresholds, not one: the accept threshold is set for the target
false-accept rate (security), the reject threshold for the target
false-reject rate (convenience). Scores in between are inconclusive and the
IVR steps up to another factor instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import numpy as np

from voiceprints.scoring.metrics import det_curve
from voiceprints.store.base import Calibration

log = logging.getLogger(__name__)

# Fewer genuine trials than this and the reject threshold is set by one or
# two unlucky recordings: at 20 trials one trial is already 5 % FRR.
MIN_TARGET_TRIALS = 20


def _check_rate(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


# The reject threshold never lies above the score that this many times the
# target share of impostors reach: scores an impostor gets 1 in 100 times but
# not 1 in 1000 (at FAR 0.1 %) are neither accepted nor rejected, they step up.
GREY_BAND_FAR_FACTOR = 10.0


def calibrate(
    tar: np.ndarray,
    non: np.ndarray,
    *,
    model_id: str,
    normalisation: str,
    target_far: float,
    target_frr: float,
    source: str,
) -> Calibration:
    """Thresholds measured on target and non-target trial scores.

    accept_threshold: the lowest observed-score threshold whose FAR <= target_far.
    reject_threshold: the highest observed-score threshold whose FRR <= target_frr,
    but never above the lowest threshold whose FAR <= GREY_BAND_FAR_FACTOR x
    target_far, and always below the accept threshold: between the two lies a
    grey band in which the IVR asks for another factor instead of guessing.
    When the trials separate better than both targets ask, the band is the one
    the FAR factor gives (noted in ``source``).

    Refuses (ValueError) with fewer than 1/target_far non-target trials, where
    the FAR target cannot even be observed, or fewer than MIN_TARGET_TRIALS
    target trials.
    """
    _check_rate("target_far", target_far)
    _check_rate("target_frr", target_frr)
    tar_a = np.asarray(tar, dtype=np.float64).ravel()
    non_a = np.asarray(non, dtype=np.float64).ravel()
    need_non = math.ceil(1.0 / target_far - 1e-9)
    if non_a.size < need_non:
        raise ValueError(
            f"only {non_a.size} non-target (impostor) trials; need at least {need_non} to set a threshold "
            f"for a false-accept rate of {target_far:.2%} (10x that many for a reliable one): "
            "add speakers or utterances to the calibration set"
        )
    if tar_a.size < MIN_TARGET_TRIALS:
        raise ValueError(
            f"only {tar_a.size} target (genuine) trials; need at least {MIN_TARGET_TRIALS} to set a reject "
            "threshold: add utterances per speaker to the calibration set"
        )
    far, frr, thr = det_curve(tar_a, non_a)
    # FAR falls along ascending thresholds and ends at 0 (+inf), so a point exists.
    accept = float(thr[int(np.argmax(far <= target_far))])
    if not math.isfinite(accept):
        # Every observed non-target scored at or above the top target score, FAR
        # still too high: accept nothing that scores below the highest score seen.
        accept = float(np.nextafter(thr[-2], np.inf))
    # FRR rises along ascending thresholds and starts at 0, so a point exists.
    reject_frr = float(thr[int(np.flatnonzero(frr <= target_frr)[-1])])
    band_far = min(GREY_BAND_FAR_FACTOR * target_far, 0.5)
    reject_far = float(thr[int(np.argmax(far <= band_far))])
    reject = min(reject_frr, reject_far)
    if reject_frr > reject_far:
        note = (
            f"trials separate beyond both targets: FRR {target_frr:.2%} allows a reject threshold up to "
            f"{reject_frr:.4f}; kept at {reject_far:.4f}, where {band_far:.2%} of impostors would pass, "
            "so a grey band remains"
        )
        log.info("calibration of %s (%s): %s", model_id, normalisation, note)
        source = f"{source} [note: {note}]"
    if not reject < accept:
        # Too few distinct scores between the two: the band starts one observed score lower.
        lower = thr[thr < accept]
        reject = float(lower[-1]) if lower.size else float(np.nextafter(accept, -np.inf))
    return Calibration(
        model_id=model_id,
        normalisation=normalisation,
        accept_threshold=accept,
        reject_threshold=reject,
        target_far=target_far,
        target_frr=target_frr,
        n_target=int(tar_a.size),
        n_nontarget=int(non_a.size),
        source=source,
        created_at=dt.datetime.now(dt.UTC),
    )


@dataclass(frozen=True)
class DefaultThresholds:
    accept_threshold: float
    reject_threshold: float
    target_far: float
    target_frr: float
    n_target: int
    n_nontarget: int
    source: str


# Shipped thresholds per (model-family prefix of model_id, normalisation), used
# until an operator runs ``ivr calibrate`` on their own calls. Measured with
# scripts/bench_accuracy.py on LibriSpeech test-other (10 speakers x 10) plus
# 251 train-clean-100 cohort speakers, through the telephone-channel simulation
# (300-3400 Hz, 8 kHz, G.711 mu-law). Accept: FAR 1 % on enrol-3 trials (the
# deployment's 3-utterance voiceprint vs. one answer). Reject: FRR 2 %.
_LIBRI_TEL = "LibriSpeech test-other + train-clean-100 cohort, telephone simulation"
DEFAULT_CALIBRATIONS: dict[tuple[str, str], DefaultThresholds] = {
    ("ge2e/", "none"): DefaultThresholds(
        0.8463, 0.8051, 0.01, 0.02, 70, 3140,
        f"shipped default: {_LIBRI_TEL}, enrol-3 trials, cosine",
    ),
    # enrol-3 trials separate beyond both targets with AS-norm (no grey band),
    # so the reject threshold comes from the 450 target trials of the pairs
    # protocol (FRR 2 % at 1.87), keeping a band in which callers step up.
    ("ge2e/", "asnorm"): DefaultThresholds(
        2.049, 1.872, 0.01, 0.02, 450, 3140,
        f"shipped default: {_LIBRI_TEL}, accept from enrol-3 (3140 non-target), reject from pairs "
        f"(450 target), AS-norm top-200",
    ),
    # Subtracting the cohort mean first: enrol-3 trials again separate beyond
    # both targets (reject = accept, no grey band), and so do the pairs trials
    # (FRR 2 % allows up to 2.24 there, with accept at 2.24 for FAR 1 %).
    ("ge2e/", "centred-asnorm"): DefaultThresholds(
        2.3356, 2.3356, 0.01, 0.02, 70, 3140,
        f"shipped default: {_LIBRI_TEL}, enrol-3 trials, cohort-mean centring + AS-norm top-200",
    ),
    # No ECAPA weights can be fetched where these defaults were measured. The
    # numbers are the usual operating points of speechbrain's
    # spkrec-ecapa-voxceleb (cosine 0.25 is its own SpeakerRecognition default);
    # run `ivr calibrate` before relying on ECAPA in production.
    ("ecapa/", "none"): DefaultThresholds(
        0.35, 0.25, 0.01, 0.02, 0, 0,
        "shipped default, NOT measured here: speechbrain spkrec-ecapa-voxceleb usual operating point; "
        "run `ivr calibrate`",
    ),
    ("ecapa/", "asnorm"): DefaultThresholds(
        3.0, 2.0, 0.01, 0.02, 0, 0,
        "shipped default, NOT measured here: typical AS-norm operating point; run `ivr calibrate`",
    ),
    ("ecapa/", "centred-asnorm"): DefaultThresholds(
        3.0, 2.0, 0.01, 0.02, 0, 0,
        "shipped default, NOT measured here: typical AS-norm operating point; run `ivr calibrate`",
    ),
}


_PROVISIONAL = "PROVISIONAL (to be measured)"
for _family in ("ge2e/", "seres2net/", "fused/", "ecapa/"):
    DEFAULT_CALIBRATIONS.setdefault((_family, "centred-znorm"), DefaultThresholds(3.4, 2.3, 0.001, 0.02, 0, 0,
                                                                                  _PROVISIONAL))
for _family in ("seres2net/", "fused/"):
    DEFAULT_CALIBRATIONS.setdefault((_family, "none"), DefaultThresholds(0.80, 0.70, 0.001, 0.02, 0, 0, _PROVISIONAL))
    DEFAULT_CALIBRATIONS.setdefault((_family, "asnorm"), DefaultThresholds(3.0, 2.0, 0.001, 0.02, 0, 0, _PROVISIONAL))
    DEFAULT_CALIBRATIONS.setdefault((_family, "centred-asnorm"), DefaultThresholds(3.0, 2.0, 0.001, 0.02, 0, 0,
                                                                                   _PROVISIONAL))


def default_calibration(model_id: str, normalisation: str) -> Calibration:
    """The shipped calibration whose family prefix matches ``model_id`` (longest prefix wins).

    Raises LookupError, naming the fix, for a model family without shipped thresholds.
    """
    matches = [
        (prefix, d)
        for (prefix, norm), d in DEFAULT_CALIBRATIONS.items()
        if norm == normalisation and model_id.startswith(prefix)
    ]
    if not matches:
        raise LookupError(
            f"no shipped calibration for model {model_id!r} with normalisation {normalisation!r}; "
            "run `ivr calibrate` on recorded trials to measure thresholds for it"
        )
    prefix, d = max(matches, key=lambda m: len(m[0]))
    return Calibration(
        model_id=model_id,
        normalisation=normalisation,
        accept_threshold=d.accept_threshold,
        reject_threshold=d.reject_threshold,
        target_far=d.target_far,
        target_frr=d.target_frr,
        n_target=d.n_target,
        n_nontarget=d.n_nontarget,
        source=f"shipped default for {prefix}* ({normalisation}): {d.source}",
        created_at=None,
    )
