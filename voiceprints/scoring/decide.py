"""Turn a score, its calibration and the audio quality into a Decision with reasons.

Poor or short audio is never scored into an accept or a reject: an impostor
who coughs into the phone should not get a coin-flip, and a genuine caller on
a bad line should be asked for another factor, not told they are someone else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from voiceprints.audio.quality import QualityProblem, QualityReport
from voiceprints.scoring.decision import Decision, Outcome
from voiceprints.store.base import Calibration


def _fmt(x: float, *others: float) -> str:
    """Two decimals, or more when two would print a score equal to a threshold it is not equal to."""
    for digits in range(2, 8):
        text = f"{x:.{digits}f}"
        if all(text != f"{o:.{digits}f}" or x == o for o in others):
            return text
    return repr(x)


def decide(
    score: float | None,
    raw_score: float | None,
    calibration: Calibration,
    quality: QualityReport | None,
    *,
    speaker_id: str,
    model_id: str,
    normalisation: str,
    min_speech_s: float,
    extra_reasons: Sequence[str] = (),
) -> Decision:
    """ACCEPT if score >= accept threshold, REJECT if score < reject threshold, else INCONCLUSIVE.

    Quality problems, or less net speech than ``min_speech_s``, make the
    decision INCONCLUSIVE whatever the score (which may then be None: no
    embedding was computed). ``extra_reasons`` (e.g. "AS-norm off: cohort of
    12 < 20") are appended to the reasons of every outcome.
    """
    if calibration.model_id != model_id or calibration.normalisation != normalisation:
        raise ValueError(
            f"calibration is for model {calibration.model_id!r} with normalisation "
            f"{calibration.normalisation!r}, not {model_id!r} with {normalisation!r}"
        )
    accept_t, reject_t = calibration.accept_threshold, calibration.reject_threshold
    if reject_t > accept_t:
        raise ValueError(f"calibration reject threshold {reject_t} is above its accept threshold {accept_t}")

    def decision(outcome: Outcome, reasons: Sequence[str], grey_band: bool = False) -> Decision:
        return Decision(
            outcome=outcome,
            speaker_id=speaker_id,
            model_id=model_id,
            score=score,
            raw_score=raw_score,
            accept_threshold=accept_t,
            reject_threshold=reject_t,
            normalisation=normalisation,
            quality=quality,
            reasons=tuple(reasons) + tuple(extra_reasons),
            grey_band=grey_band,
        )

    audio_reasons: list[str] = []
    if quality is not None:
        if quality.problems:
            audio_reasons.extend(quality.reasons or (f"audio problem: {p.value}" for p in quality.problems))
        if quality.net_speech_s < min_speech_s and QualityProblem.TOO_SHORT not in quality.problems:
            audio_reasons.append(f"only {quality.net_speech_s:.1f} s of speech; need {min_speech_s:.1f} s")
    if audio_reasons:
        return decision(Outcome.INCONCLUSIVE, audio_reasons)

    if score is None or not math.isfinite(score):
        raise ValueError(f"a usable clip needs a finite score to decide on, got {score!r}")
    kind = "normalised score" if normalisation != "none" else "score"
    raw = (
        f" (raw cosine {raw_score:.3f})"
        if raw_score is not None and normalisation != "none" and math.isfinite(raw_score)
        else ""
    )
    if score >= accept_t:
        text = f"{kind} {_fmt(score, accept_t)}{raw} >= accept threshold {_fmt(accept_t, score)}"
        return decision(Outcome.ACCEPT, [text])
    if score < reject_t:
        text = f"{kind} {_fmt(score, reject_t)}{raw} < reject threshold {_fmt(reject_t, score)}"
        return decision(Outcome.REJECT, [text])
    text = (
        f"{kind} {_fmt(score, reject_t, accept_t)}{raw} in the grey band "
        f"[{_fmt(reject_t, score)}, {_fmt(accept_t, score)})"
    )
    return decision(Outcome.INCONCLUSIVE, [text], grey_band=True)
