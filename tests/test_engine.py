"""The biometric engine end to end: enrol, verify, identify with the real GE2E model and a real store."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.config import CoreConfig, VerificationConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import (
    EmptyAudioError,
    EnrolmentError,
    InconsistentEnrolmentError,
    ReenrolmentNeededError,
    UnknownSpeakerError,
)
from voiceprints.scoring.decision import Outcome
from voiceprints.store.base import EnrolmentMeta
from voiceprints.store.sql import open_store


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


def make_engine(tmp_path, embedder, **verification) -> VoiceprintEngine:
    config = CoreConfig(data_dir=tmp_path, verification=VerificationConfig(**verification))
    return VoiceprintEngine(embedder, open_store(config), config)


@pytest.fixture
def engine(tmp_path, ge2e, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    eng = make_engine(tmp_path, ge2e)
    yield eng
    eng.close()


def phone(clips: list[AudioClip]) -> list[AudioClip]:
    return [telephone_channel(c) for c in clips]


def test_genuine_caller_is_accepted_and_impostor_rejected(engine, utterances_of):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    genuine = engine.verify("4572", phone(utterances_of("alice", 1, offset=4))[0])
    impostor = engine.verify("4572", phone(utterances_of("frank", 1, offset=4))[0])
    assert genuine.outcome is Outcome.ACCEPT, genuine
    assert impostor.outcome is Outcome.REJECT, impostor
    assert genuine.score > impostor.score
    assert genuine.model_id.startswith("ge2e/")
    assert genuine.latency_ms is not None and genuine.latency_ms > 0


def test_verify_with_too_little_speech_is_inconclusive_and_says_how_much(engine, utterances_of, say):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    decision = engine.verify("4572", telephone_channel(say("alice", "Yes.")))
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert decision.score is None
    assert any("need 3.0 s" in r for r in decision.reasons), decision.reasons


def test_verify_with_silence_is_inconclusive(engine, utterances_of):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    silence = AudioClip(np.zeros(8000 * 4, dtype=np.float32), 8000)
    decision = engine.verify("4572", silence)
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert decision.reasons


def test_empty_audio_is_an_error_not_a_decision(engine, utterances_of):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    with pytest.raises(EmptyAudioError):
        engine.verify("4572", AudioClip(np.zeros(0, dtype=np.float32), 8000))


def test_unknown_speaker_is_reported_as_not_enrolled(engine, utterances_of):
    with pytest.raises(UnknownSpeakerError, match="not enrolled"):
        engine.verify("9999", phone(utterances_of("alice", 1))[0])


def test_voiceprint_of_another_model_needs_reenrolment(engine, utterances_of):
    engine.store.save_voiceprint("4572", "ecapa/other/0123456789ab", np.eye(1, 192, dtype=np.float32)[0],
                                 EnrolmentMeta(3, 10.0))
    with pytest.raises(ReenrolmentNeededError, match="re-enrolment needed"):
        engine.verify("4572", phone(utterances_of("alice", 1))[0])


def test_enrolment_needs_enough_utterances_and_speech(engine, utterances_of, say):
    with pytest.raises(EnrolmentError, match="at least 3"):
        engine.enroll("4572", phone(utterances_of("alice", 2)))
    short = [telephone_channel(say("alice", w)) for w in ("Yes.", "No.", "Maybe.")]
    with pytest.raises(EnrolmentError, match="utterance 1"):
        engine.enroll("4572", short)
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


def test_enrolment_with_two_different_voices_is_refused(engine, utterances_of):
    mixed = phone(utterances_of("erin", 2) + utterances_of("bob", 1, offset=2))
    with pytest.raises(InconsistentEnrolmentError):
        engine.enroll("4572", mixed)
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


@pytest.mark.parametrize("normalisation", ["asnorm", "centred-asnorm", "centred-znorm"])
def test_normalisation_is_used_once_enough_speakers_are_enrolled(tmp_path, ge2e, utterances_of, monkeypatch,
                                                                 normalisation):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    engine = make_engine(tmp_path, ge2e, min_cohort_size=3, cohort_top_n=3, normalisation=normalisation)
    names = ["alice", "bob", "carol", "dave", "erin"]
    for name in names:
        engine.enroll(name, phone(utterances_of(name, 3)))
    genuine = engine.verify("alice", phone(utterances_of("alice", 1, offset=5))[0])
    impostor = engine.verify("alice", phone(utterances_of("frank", 1, offset=5))[0])
    assert genuine.normalisation == impostor.normalisation == normalisation
    # Normalised scores are in cohort standard deviations: the voices are far apart. (With a
    # cohort of four, where a genuine caller lands against the shipped thresholds means little.)
    assert genuine.score > impostor.score + 1.0
    assert impostor.outcome is not Outcome.ACCEPT


def test_small_store_falls_back_to_cosine_and_says_why(engine, utterances_of):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    decision = engine.verify("4572", phone(utterances_of("alice", 1, offset=4))[0])
    assert decision.normalisation == "none"
    assert any("normalisation off" in r for r in decision.reasons)


def test_identify_finds_the_speaker_among_the_enrolled(engine, utterances_of):
    for name in ("alice", "bob", "carol", "dave"):
        engine.enroll(name, phone(utterances_of(name, 3)))
    quality, candidates = engine.identify(phone(utterances_of("carol", 1, offset=6))[0], top_k=3)
    assert quality.ok
    assert [c.speaker_id for c in candidates][0] == "carol"
    assert len(candidates) == 3 and candidates[0].score >= candidates[1].score >= candidates[2].score


def test_identify_sees_new_enrolments_and_deletions(engine, utterances_of):
    engine.enroll("alice", phone(utterances_of("alice", 3)))
    probe = phone(utterances_of("bob", 1, offset=5))[0]
    assert engine.identify(probe)[1][0].speaker_id == "alice"
    engine.enroll("bob", phone(utterances_of("bob", 3)))
    assert engine.identify(probe)[1][0].speaker_id == "bob"
    assert engine.forget("bob")
    assert [c.speaker_id for c in engine.identify(probe)[1]] == ["alice"]


async def test_async_verifications_run_concurrently_off_the_event_loop(engine, utterances_of):
    engine.enroll("4572", phone(utterances_of("alice", 3)))
    probes = phone(utterances_of("alice", 2, offset=4)) + phone(utterances_of("frank", 2, offset=4))
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    decisions = await asyncio.wait_for(asyncio.gather(*(engine.averify("4572", p) for p in probes)), 60)
    task.cancel()
    assert [d.outcome for d in decisions[:2]] == [Outcome.ACCEPT] * 2
    assert all(d.outcome is Outcome.REJECT for d in decisions[2:])
    assert ticks > 0  # the loop kept running while models worked


def test_identify_with_nobody_enrolled_returns_no_candidates(engine, utterances_of):
    quality, candidates = engine.identify(phone(utterances_of("alice", 1))[0])
    assert quality.ok and candidates == []


def test_fallback_reason_counts_the_other_enrolled_speakers(engine, utterances_of):
    engine.enroll("alice", phone(utterances_of("alice", 3)))
    engine.enroll("erin", phone(utterances_of("erin", 3)))
    decision = engine.verify("alice", phone(utterances_of("alice", 1, offset=4))[0])
    assert any("cohort has 1 other speaker(s)" in r for r in decision.reasons), decision.reasons


def test_a_population_of_identical_voiceprints_does_not_break_verification(engine, utterances_of):
    """Every stored voiceprint the same (the same audio enrolled under many accounts): a degenerate
    population to normalise against; the engine decides on plain cosine instead of failing."""
    clips = phone(utterances_of("alice", 3))
    for account in [f"dup-{i}" for i in range(25)]:
        engine.enroll(account, clips)
    decision = engine.verify("dup-0", phone(utterances_of("alice", 1, offset=5))[0])
    assert decision.score is not None
