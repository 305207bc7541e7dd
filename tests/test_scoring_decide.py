"""Decisions: each outcome, when it is given, and reasons that state the numbers."""

from __future__ import annotations

import json

import pytest

from voiceprints.audio.quality import QualityProblem, QualityReport
from voiceprints.scoring.decide import decide
from voiceprints.scoring.decision import Outcome
from voiceprints.store.base import Calibration

MODEL = "ge2e/resemblyzer/abcd"


def calibration(normalisation: str = "none", accept: float = 0.52, reject: float = 0.35) -> Calibration:
    return Calibration(
        model_id=MODEL,
        normalisation=normalisation,
        accept_threshold=accept,
        reject_threshold=reject,
        target_far=0.01,
        target_frr=0.02,
        n_target=100,
        n_nontarget=1000,
        source="test",
    )


def quality(net_speech_s: float = 4.0, problems=(), reasons=()) -> QualityReport:
    return QualityReport(
        duration_s=net_speech_s + 1.0,
        net_speech_s=net_speech_s,
        snr_db=25.0,
        clipping_ratio=0.0,
        speech_level_dbfs=-20.0,
        problems=tuple(problems),
        reasons=tuple(reasons),
    )


def run(score, raw=None, *, cal=None, q=None, normalisation="none", min_speech_s=3.0, extra=()):
    return decide(
        score,
        score if raw is None else raw,
        cal or calibration(normalisation),
        q if q is not None else quality(),
        speaker_id="alice",
        model_id=MODEL,
        normalisation=normalisation,
        min_speech_s=min_speech_s,
        extra_reasons=extra,
    )


def test_a_score_at_or_above_the_accept_threshold_is_accepted():
    d = run(0.61)
    assert d.outcome is Outcome.ACCEPT
    assert d.reasons == ("score 0.61 >= accept threshold 0.52",)
    assert run(0.52).outcome is Outcome.ACCEPT  # the threshold itself accepts


def test_a_score_below_the_reject_threshold_is_rejected():
    d = run(0.20)
    assert d.outcome is Outcome.REJECT
    assert d.reasons == ("score 0.20 < reject threshold 0.35",)


def test_a_score_in_the_grey_band_is_inconclusive():
    d = run(0.41)
    assert d.outcome is Outcome.INCONCLUSIVE
    assert d.reasons == ("score 0.41 in the grey band [0.35, 0.52)",)
    assert run(0.35).outcome is Outcome.INCONCLUSIVE  # the band includes its lower edge


def test_numbers_next_to_a_threshold_are_printed_precisely_enough_to_tell_them_apart():
    d = run(0.5199)
    assert d.outcome is Outcome.INCONCLUSIVE
    assert "0.5199" in d.reasons[0] and "0.5200)" in d.reasons[0]


def test_the_decision_carries_everything_it_was_based_on():
    q = quality()
    d = decide(
        0.61,
        0.61,
        calibration(),
        q,
        speaker_id="alice",
        model_id=MODEL,
        normalisation="none",
        min_speech_s=3.0,
    )
    assert (d.speaker_id, d.model_id, d.normalisation) == ("alice", MODEL, "none")
    assert (d.score, d.raw_score, d.accept_threshold, d.reject_threshold) == (0.61, 0.61, 0.52, 0.35)
    assert d.quality is q
    assert json.loads(json.dumps(d.to_dict()))["outcome"] == "accept"


def test_asnorm_reasons_name_the_normalised_score_and_the_raw_cosine():
    d = run(2.8, raw=0.612, cal=calibration("asnorm", accept=2.5, reject=1.5), normalisation="asnorm")
    assert d.outcome is Outcome.ACCEPT
    assert d.reasons == ("normalised score 2.80 (raw cosine 0.612) >= accept threshold 2.50",)


def test_too_little_speech_is_inconclusive_whatever_the_score():
    d = run(0.99, q=quality(net_speech_s=1.2))
    assert d.outcome is Outcome.INCONCLUSIVE
    assert d.reasons == ("only 1.2 s of speech; need 3.0 s",)


def test_audio_problems_are_inconclusive_with_the_quality_reasons():
    q = quality(problems=[QualityProblem.TOO_NOISY], reasons=["SNR 4.0 dB; need 10.0 dB"])
    for score in (0.05, 0.41, 0.99):
        d = run(score, q=q)
        assert d.outcome is Outcome.INCONCLUSIVE
        assert d.reasons == ("SNR 4.0 dB; need 10.0 dB",)


def test_a_short_clip_already_flagged_too_short_is_not_reported_twice():
    q = quality(1.2, problems=[QualityProblem.TOO_SHORT], reasons=["only 1.2 s of speech; need 1.5 s"])
    assert run(0.9, q=q).reasons == ("only 1.2 s of speech; need 1.5 s",)


def test_a_problem_without_a_sentence_is_still_named():
    d = run(0.9, q=quality(problems=[QualityProblem.CLIPPED]))
    assert d.outcome is Outcome.INCONCLUSIVE
    assert d.reasons == ("audio problem: clipped",)


def test_unscored_audio_can_be_decided_when_quality_already_rules_it_out():
    d = run(None, q=quality(net_speech_s=0.4))
    assert d.outcome is Outcome.INCONCLUSIVE and d.score is None
    assert d.to_dict()["score"] is None


@pytest.mark.parametrize("score", [0.05, 0.41, 0.99])
def test_extra_reasons_follow_every_outcome(score):
    note = "AS-norm off: cohort of 12 speakers < 20; plain cosine used"
    d = run(score, extra=[note])
    assert d.reasons[-1] == note and len(d.reasons) == 2


def test_a_calibration_for_another_model_or_normalisation_is_refused():
    with pytest.raises(ValueError, match="calibration is for model"):
        run(0.6, cal=calibration("asnorm"), normalisation="none")
    other = Calibration(
        model_id="ecapa/x/1",
        normalisation="none",
        accept_threshold=0.5,
        reject_threshold=0.3,
        target_far=0.01,
        target_frr=0.02,
        n_target=1,
        n_nontarget=1,
        source="x",
    )
    with pytest.raises(ValueError):
        run(0.6, cal=other)


def test_inverted_thresholds_are_refused():
    with pytest.raises(ValueError, match="above its accept threshold"):
        run(0.6, cal=calibration(accept=0.3, reject=0.5))


@pytest.mark.parametrize("score", [None, float("nan"), float("inf")])
def test_usable_audio_without_a_finite_score_is_refused(score):
    with pytest.raises(ValueError):
        run(score, raw=0.5)
