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
    created_at: dt.datetime,
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
        created_at=created_at,
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
    # The scale itself is calibrated on the deployment's population (centred-znorm:
    # the population's impostor tail is anchored to the Gaussian one), so the
    # thresholds follow from the target FAR: accept at the Gaussian quantile of
    # target_far, reject at that of GREY_BAND_FAR_FACTOR x target_far.
    tail_calibrated: bool = False


# The population's anchored tail predicts the FAR of real claims only roughly:
# the share of impostor claims above the anchor's 0.1 % point was 0.04 % on
# LibriSpeech (47,387 claims) and 0.09-0.16 % in a simulation of a deployment
# (LibriSpeech recordings cut in four: three pieces enrol, one claims; 60,393
# claims), more where test answers are longer than enrolment answers. The
# accept threshold therefore aims 1.5x below the target (3.21 for FAR 0.1 %).
TAIL_MARGIN = 1.5


def tail_thresholds(target_far: float) -> tuple[float, float]:
    """(accept, reject) on a tail-calibrated scale for ``target_far``: 3.21 / 2.33 at FAR 0.1 %."""
    from scipy.stats import norm

    _check_rate("target_far", target_far)
    return (float(norm.ppf(1.0 - target_far / TAIL_MARGIN)),
            float(norm.ppf(1.0 - min(GREY_BAND_FAR_FACTOR * target_far, 0.5))))


# Shipped thresholds per (model-family prefix of model_id, normalisation), used
# until an operator runs ``ivr calibrate`` (on recordings, or --from-enrolments).
#
# centred-znorm (the default) is tail-calibrated on the deployment's own
# population, so its thresholds follow the target FAR: accept 3.21 and reject
# 2.33 at FAR 0.1 % (TAIL_MARGIN). Checked with the fused model on LibriSpeech
# (test-other 10 speakers + 251 train-clean-100 cohort; original audio and the
# telephone simulation; engine, enrol-3 and pairs protocols: 47,387 impostor
# trials): 9 reach 3.21 (0.019 %; one-sided 95 % bound 0.033 %), none of the six
# conditions above 0.05 %; the highest threshold any one condition needs for
# FAR 0.1 % is 3.11 (telephone enrol-3). In the deployment simulation (180
# LibriSpeech cohort speakers enrolled from three quarters of one recording,
# claiming with the fourth: 60,393 impostor claims) 49 reach it (0.081 %).
# Plain standard deviations without the tail anchor would need 3.2-3.35 on the
# original audio and 2.5-2.7 on the telephone channel: no single shipped
# number would fit both.
#
# The others are single numbers, measured with scripts/bench_accuracy.py on the
# same data (plus FSDD digit strings for cosine: 84,155 impostor trials in all):
# accept = the highest threshold any condition with >= 1,000 impostor trials
# needs for FAR 0.1 %; reject = the highest any condition needs for FAR 1 %.
# Measured channel by channel, so the raw-cosine and AS-norm thresholds are as
# high as the worst channel demands; genuine callers pay for it (the README's
# accuracy section gives the rates). ECAPA could not be measured here.
_MEASURED = ("LibriSpeech test-other + train-clean-100 cohort{fsdd}, original and telephone-simulated, "
             "engine/enrol-3/pairs protocols; accept: highest FAR-0.1 % threshold of any condition, "
             "reject: highest FAR-1 % threshold")
_LIBRI = _MEASURED.format(fsdd="")
_LIBRI_FSDD = _MEASURED.format(fsdd=" + FSDD digit strings")
_TAIL = ("tail-calibrated on the enrolled population (accept at the Gaussian quantile of target FAR / 1.5); "
         "checked on LibriSpeech original + telephone, 47,387 impostor trials: FAR 0.019 % at 3.21")
DEFAULT_CALIBRATIONS: dict[tuple[str, str], DefaultThresholds] = {
    ("fused/", "none"): DefaultThresholds(0.8519, 0.8098, 0.001, 0.02, 11279, 84155, _LIBRI_FSDD),
    ("fused/", "asnorm"): DefaultThresholds(3.6228, 2.7458, 0.001, 0.02, 614, 47387, _LIBRI),
    ("fused/", "centred-asnorm"): DefaultThresholds(3.9779, 2.9025, 0.001, 0.02, 614, 47387, _LIBRI),
    ("ge2e/", "none"): DefaultThresholds(0.9052, 0.8546, 0.001, 0.02, 11279, 84155, _LIBRI_FSDD),
    ("ge2e/", "asnorm"): DefaultThresholds(3.8501, 2.5958, 0.001, 0.02, 614, 47387, _LIBRI),
    ("ge2e/", "centred-asnorm"): DefaultThresholds(4.1470, 2.7707, 0.001, 0.02, 614, 47387, _LIBRI),
    ("seres2net/", "none"): DefaultThresholds(0.8392, 0.8108, 0.001, 0.02, 11279, 84155, _LIBRI_FSDD),
    ("seres2net/", "asnorm"): DefaultThresholds(4.0787, 2.6699, 0.001, 0.02, 614, 47387, _LIBRI),
    ("seres2net/", "centred-asnorm"): DefaultThresholds(4.1494, 2.7738, 0.001, 0.02, 614, 47387, _LIBRI),
    # No ECAPA weights can be fetched where these defaults were measured. The
    # numbers are the usual operating points of speechbrain's
    # spkrec-ecapa-voxceleb (cosine 0.25 is its own SpeakerRecognition default);
    # run `ivr calibrate` before relying on ECAPA in production.
    ("ecapa/", "none"): DefaultThresholds(
        0.35, 0.25, 0.01, 0.02, 0, 0,
        "NOT measured here: speechbrain spkrec-ecapa-voxceleb usual operating point; run `ivr calibrate`",
    ),
    ("ecapa/", "asnorm"): DefaultThresholds(
        3.0, 2.0, 0.01, 0.02, 0, 0, "NOT measured here: typical AS-norm operating point; run `ivr calibrate`",
    ),
    ("ecapa/", "centred-asnorm"): DefaultThresholds(
        3.0, 2.0, 0.01, 0.02, 0, 0, "NOT measured here: typical AS-norm operating point; run `ivr calibrate`",
    ),
}
for _family in ("fused/", "ge2e/", "seres2net/", "ecapa/"):
    # The scale, not the number, is calibrated; one entry per family so that the lookup by family stays uniform.
    DEFAULT_CALIBRATIONS[(_family, "centred-znorm")] = DefaultThresholds(
        *tail_thresholds(0.001), 0.001, 0.02, 614, 47387, _TAIL, tail_calibrated=True)


def default_calibration(model_id: str, normalisation: str, target_far: float | None = None) -> Calibration:
    """The shipped calibration whose family prefix matches ``model_id`` (longest prefix wins).

    ``target_far``: the configured target; tail-calibrated defaults follow it,
    measured ones are for the FAR they were measured at (their ``target_far``).
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
    accept, reject, far = d.accept_threshold, d.reject_threshold, d.target_far
    if d.tail_calibrated and target_far is not None:
        (accept, reject), far = tail_thresholds(target_far), target_far
    return Calibration(
        model_id=model_id,
        normalisation=normalisation,
        accept_threshold=accept,
        reject_threshold=reject,
        target_far=far,
        target_frr=d.target_frr,
        n_target=d.n_target,
        n_nontarget=d.n_nontarget,
        source=f"shipped default for {prefix}* ({normalisation}): {d.source}",
        created_at=None,
    )
