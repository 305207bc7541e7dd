"""Liveness challenge: the caller repeats a random digit string; the digits are checked against
templates of their own voice recorded at enrolment, in whatever language they speak."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from tests.speech import SPEAKERS, synth
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.errors import EnrolmentError
from voiceprints.liveness import DigitStringVerifier, DigitTemplates, new_challenge, random_digits
from voiceprints.liveness.challenge import ChallengeExhaustedError
from voiceprints.liveness.store import SqlChallengeHistory, SqlDigitTemplateStore
from voiceprints.store import EnrolmentMeta, KeyRing, SqlVoiceprintStore

ENGLISH = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPANISH = ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve")
MAX_MARGIN = 0.15  # LivenessConfig's default, measured on FSDD (scripts/bench_attacks.py)


@pytest.fixture(scope="module")
def caller(speech_cache):
    """``caller(speaker, words, speed, voice=None)``: the words as one telephone recording.

    Enrolment words are spoken one by one with 0.3 s pauses (as the enrolment prompt asks);
    a challenge answer is one phrase, digits run together.
    """

    def speak(name: str, words: list[str] | str, speed: int, voice: str | None = None) -> AudioClip:
        who = dataclasses.replace(SPEAKERS[name], speed=speed, **({"voice": voice} if voice else {}))
        if isinstance(words, str):
            return telephone_channel(synth(who, words, 16000, speech_cache))
        rng = np.random.default_rng(speed)
        parts = []
        for word in words:
            parts.append(synth(who, word, 16000, speech_cache).samples)
            parts.append((rng.standard_normal(4800) * 1e-3).astype(np.float32))
        return telephone_channel(AudioClip(np.concatenate(parts), 16000))

    return speak


@pytest.fixture(scope="module")
def alice_templates(caller) -> DigitTemplates:
    # The enrolment line: the ten digits, three times, at the caller's varying pace.
    return DigitTemplates.from_sequences([caller("alice", list(ENGLISH), speed) for speed in (140, 160, 180)])


def test_enrolment_makes_three_templates_per_digit(alice_templates):
    assert alice_templates.per_digit() == {d: 3 for d in "0123456789"}
    assert all(seq.shape[1] == 24 and len(seq) > 10 for seq in alice_templates.sequences)


def test_the_right_digits_pass_and_a_wrong_string_fails(alice_templates, caller):
    verifier = DigitStringVerifier(MAX_MARGIN)
    answer = caller("alice", "four seven two nine", 170)
    right = verifier.verify(alice_templates, answer, "4729")
    assert right.passed and right.heard == "4729", right.reason
    wrong = verifier.verify(alice_templates, answer, "1385")  # an earlier answer replayed to a new challenge
    assert not wrong.passed and "not 1385" in wrong.reason
    assert wrong.margin is not None and wrong.margin > MAX_MARGIN


def test_one_changed_digit_in_a_longer_string_fails(alice_templates, caller):
    verifier = DigitStringVerifier(MAX_MARGIN)
    answer = caller("alice", "five zero eight one seven", 165)
    assert verifier.verify(alice_templates, answer, "50817").passed
    changed = verifier.verify(alice_templates, answer, "50816")
    assert not changed.passed and changed.heard == "50817"


def test_too_little_speech_fails_with_a_reason(alice_templates, caller):
    result = DigitStringVerifier(MAX_MARGIN).verify(alice_templates, caller("alice", "four", 170), "472951")
    assert not result.passed and result.margin is None and "speech" in result.reason


def test_spanish_digits_work_with_spanish_templates(caller):
    """Language-independent: the templates are the caller's own words for the digits."""
    templates = DigitTemplates.from_sequences(
        [caller("dave", list(SPANISH), speed, voice="es") for speed in (140, 160, 180)])
    verifier = DigitStringVerifier(MAX_MARGIN)
    answer = caller("dave", "tres ocho cero seis", 165, voice="es")
    assert verifier.verify(templates, answer, "3806").passed
    assert not verifier.verify(templates, answer, "2514").passed


def test_enrolment_without_pauses_is_refused_with_what_to_do(caller):
    with pytest.raises(EnrolmentError, match="pause after each"):
        DigitTemplates.from_sequences([caller("alice", " ".join(ENGLISH), 170)])


def test_templates_survive_serialisation(alice_templates):
    again = DigitTemplates.from_bytes(alice_templates.to_bytes())
    assert again.labels == alice_templates.labels and again.feature_version == alice_templates.feature_version
    assert all(np.array_equal(a, b) for a, b in zip(again.sequences, alice_templates.sequences))
    with pytest.raises(ValueError):
        DigitTemplates.from_bytes(b"not templates")


@pytest.fixture
def store(tmp_path):
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'vp.db'}", KeyRing([("k1", bytes(range(32)))])) as s:
        yield s


def test_templates_are_stored_encrypted_and_erased_with_the_speaker(store, alice_templates):
    templates = SqlDigitTemplateStore(store)
    templates.save("4572", alice_templates)
    loaded = templates.get("4572")
    assert loaded is not None and len(loaded) == len(alice_templates)
    raw = store.engine.raw_connection()
    try:
        (blob,) = raw.execute("SELECT ciphertext FROM digit_templates").fetchone()
    finally:
        raw.close()
    assert alice_templates.to_bytes()[:200] not in bytes(blob)
    store.save_voiceprint("4572", "m", np.ones(4, np.float32), EnrolmentMeta(3, 9.0))
    assert store.export_speaker("4572")["digit_templates"][0]["templates"] == 30
    assert store.delete_speaker("4572")
    assert templates.get("4572") is None


def test_challenges_are_random_digits_of_the_configured_length():
    strings = {random_digits(4, 6) for _ in range(200)}
    assert {len(s) for s in strings} == {4, 5, 6} and all(s.isdigit() for s in strings)
    assert len(strings) > 190  # 10^4..10^6 possibilities: repeats are rare


def test_a_string_is_not_asked_again_of_the_account_within_the_reuse_period(store):
    history = SqlChallengeHistory(store)
    now = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    # Every 3-digit string but one was asked of account A yesterday: the only fresh one comes out.
    for n in range(999):
        history.record("A", f"{n:03d}", now - dt.timedelta(days=1))
    assert new_challenge("A", history, min_digits=3, max_digits=3, reuse_days=30, now=now) == "999"
    assert "999" in history.recent("A", now - dt.timedelta(days=30))
    with pytest.raises(ChallengeExhaustedError, match="REUSE_DAYS"):
        new_challenge("A", history, min_digits=3, max_digits=3, reuse_days=30, now=now)
    # After the reuse period, and for other accounts, strings are free again.
    assert len(new_challenge("A", history, min_digits=3, max_digits=3, reuse_days=30,
                             now=now + dt.timedelta(days=40))) == 3
    assert history.recent("B", now - dt.timedelta(days=30)) == set()
    assert history.purge(now) == 999


def test_a_sentence_instead_of_the_digits_fails(alice_templates, say):
    """What a replayed recording of an earlier call would say: not the digits."""
    sentence = telephone_channel(say("alice", "I would like to check the balance of my savings account today."))
    result = DigitStringVerifier(MAX_MARGIN).verify(alice_templates, sentence, "4729")
    assert not result.passed, result.reason


# --- the answer's voice (issue 18) ------------------------------------------------------------------
def test_the_answer_must_match_the_voiceprint_and_the_voice_heard_earlier():
    from voiceprints.liveness.binding import AnswerVoice

    check = AnswerVoice(min_print=0.8, min_sample=0.75)
    me, other = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    near = np.array([1.0, 0.3, 0.0])  # cosine 0.96 with ``me``
    assert check.check(near, me, me).passed
    by_print = check.check(other, me, me)
    assert not by_print.passed and "not said in the enrolled voice" in by_print.reason
    # The recording (the sample) was someone else: the right voice now is not the one heard before.
    by_sample = check.check(near, me, other)
    assert not by_sample.passed and "another voice than the one heard before" in by_sample.reason
    alone = check.check(near, me, None)
    assert alone.passed and alone.sample_score is None


def test_answer_thresholds_are_the_measured_ones_unless_configured_and_unknown_models_have_none():
    from voiceprints.config import LivenessConfig
    from voiceprints.liveness.binding import SHIPPED_THRESHOLDS, AnswerVoice

    shipped = AnswerVoice.for_model("ge2e", LivenessConfig())
    assert shipped is not None and (shipped.min_print, shipped.min_sample) == SHIPPED_THRESHOLDS["ge2e"]
    tuned = AnswerVoice.for_model("ge2e", LivenessConfig(voice_min_score=0.7, continuity_min_score=0.6))
    assert tuned is not None and (tuned.min_print, tuned.min_sample) == (0.7, 0.6)
    assert AnswerVoice.for_model("ecapa", LivenessConfig()) is None
    set_by_admin = AnswerVoice.for_model("ecapa", LivenessConfig(voice_min_score=0.5, continuity_min_score=0.5))
    assert set_by_admin is not None


def test_the_challenge_passes_only_in_the_enrolled_voice_and_the_calls_own(tmp_path, caller, utterances_of):
    """Through the defences as the verify flow calls them: the digits right and the voice right."""
    from tests.test_flows import phone_speech
    from voiceprints.config import CoreConfig
    from voiceprints.defences import AttackDefences
    from voiceprints.embedding.ge2e import Ge2eEmbedder
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import open_store

    config = CoreConfig(data_dir=tmp_path)
    engine = VoiceprintEngine(Ge2eEmbedder(), open_store(config), config)
    try:
        engine.enroll("4572", [phone_speech(utterances_of, "alice", i) for i in range(3)])
        defences = AttackDefences(engine)
        templates = DigitTemplates.from_sequences([caller("alice", list(ENGLISH), s) for s in (140, 160, 180)])
        defences.remember_enrolment("4572", templates, [])
        sample = engine.embed_speech(phone_speech(utterances_of, "alice", 5))
        answer = caller("alice", "four eight one five one", 160)
        genuine = defences.check_challenge("4572", answer, "48151", sample)
        assert genuine is not None and genuine.passed, genuine
        assert genuine.voice_score is not None and genuine.continuity is not None
        # The right digits and the enrolled voice, after a call whose voice was someone else's.
        other_sample = engine.embed_speech(phone_speech(utterances_of, "bob", 5))
        switched = defences.check_challenge("4572", answer, "48151", other_sample)
        assert switched is not None and not switched.passed and "another voice" in switched.reason
    finally:
        engine.close()


# --- digits said at a natural pace (issue 18) -------------------------------------------------------
def test_digits_run_together_are_found_by_aligning_to_another_voice(caller):
    """Three natural-pace "zero ... nine" (no pauses): the caller's own templates, guided by another voice."""
    guide = DigitTemplates.from_digit_clips({str(d): [caller("frank", ENGLISH[d], 150)] for d in range(10)})
    natural = [caller("carol", " ".join(ENGLISH), speed) for speed in (140, 160, 180)]
    with pytest.raises(EnrolmentError, match="expected the 10 digits"):
        DigitTemplates.from_sequences(natural)  # without a guide only pauses separate the words
    verifier = DigitStringVerifier(MAX_MARGIN)
    templates = DigitTemplates.from_sequences(natural, guide, verifier)
    assert templates.per_digit() == {d: 3 for d in "0123456789"}
    answer = caller("carol", "seven two nine four one", 160)
    assert verifier.verify(templates, answer, "72941").passed
    assert not verifier.verify(templates, answer, "72641").passed
    # Other speech at the digit prompt makes no templates, with the recording that was not the digits.
    sentences = [caller("carol", text, 160) for text in ("I would like to check my balance today please",
                                                         "my card was stolen yesterday on the bus",
                                                         "could you tell me when the bank opens tomorrow")]
    with pytest.raises(EnrolmentError, match="recording 1"):
        DigitTemplates.from_sequences(sentences, guide, verifier)
