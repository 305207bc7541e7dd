"""Scores, score normalisation, error rates, thresholds and decisions: pure numpy/scipy, no models."""

from voiceprints.scoring.asnorm import AsNorm
from voiceprints.scoring.calibration import (
    DEFAULT_CALIBRATIONS,
    MIN_TARGET_TRIALS,
    DefaultThresholds,
    calibrate,
    default_calibration,
)
from voiceprints.scoring.cosine import cosine, cosine_matrix, l2_normalise
from voiceprints.scoring.decide import decide
from voiceprints.scoring.decision import Decision, Outcome
from voiceprints.scoring.enrolment import check_consistency, combine, utterance_consistency
from voiceprints.scoring.identify import IdentificationIndex
from voiceprints.scoring.metrics import det_curve, eer, frr_at_far, min_dcf, plot_det

__all__ = [
    "DEFAULT_CALIBRATIONS",
    "MIN_TARGET_TRIALS",
    "AsNorm",
    "Decision",
    "DefaultThresholds",
    "IdentificationIndex",
    "Outcome",
    "calibrate",
    "check_consistency",
    "combine",
    "cosine",
    "cosine_matrix",
    "decide",
    "default_calibration",
    "det_curve",
    "eer",
    "frr_at_far",
    "l2_normalise",
    "min_dcf",
    "plot_det",
    "utterance_consistency",
]
