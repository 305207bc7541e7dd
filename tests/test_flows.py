"""Call flows as a caller experiences them: prompts, keys, speech, and the result the dialplan gets."""

from __future__ import annotations

import pytest

from ivr.call import CallInfo
from ivr.service.calls import run_call
from tests.flow_kit import FAST, Lines, build_lines
from tests.scripted_call import Hangs, Keys, Say, ScriptedCall
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.config import CoreConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.store.sql import open_store

__all__ = ["FAST", "phone_speech"]


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest.fixture
def engine(tmp_path, ge2e, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    config = CoreConfig(data_dir=tmp_path)
    eng = VoiceprintEngine(ge2e, open_store(config), config)
    yield eng
    eng.close()


@pytest.fixture
def lines(engine) -> Lines:
    """The verify and enrolment lines with the PIN as the enrolment line's factor (no codes configured)."""
    built = build_lines(engine)
    customer = built.customers.add("4572", phone_e164="+573001234567")
    built.knowledge.set_answers(customer, {"pin": "2580"})
    return built


def phone_speech(utterances_of, name: str, index: int) -> AudioClip:
    return telephone_channel(utterances_of(name, 1, offset=index)[0])


@pytest.fixture
def enrolled(engine, utterances_of):
    engine.enroll("4572", [phone_speech(utterances_of, "alice", i) for i in range(3)])


async def test_genuine_caller_passes_and_the_dialplan_gets_the_variables(lines, engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    result = await run_call(lines.verify(), call)
    assert result is not None and result.result.value == "PASS"
    assert call.result["VOICEAUTH_RESULT"] == "PASS"
    assert call.result["VOICEAUTH_SPEAKER"] == "4572"
    assert float(call.result["VOICEAUTH_SCORE"]) >= 0.8
    assert call.result["VOICEAUTH_METHOD"] == "voice"
    assert call.played == ["enter-account", "verify-speak"]
    assert call.hung_up  # the session is handed back so the dialplan continues
    assert result.decision_s is not None and result.decision_s > 0  # its size is measured by scripts/bench_load.py


async def test_impostor_fails(lines, engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAIL"


async def test_silent_caller_is_inconclusive_with_a_reason(lines, engine, enrolled):
    call = ScriptedCall({"enter-account": [Keys("4572#")]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert call.result["VOICEAUTH_REASON"]


async def test_too_short_answer_is_inconclusive_and_says_how_much_speech(lines, engine, enrolled, say):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(telephone_channel(say("alice", "Yes, hello.")))]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert "need 3.0 s" in call.result["VOICEAUTH_REASON"]


async def test_unknown_account_is_not_enrolled_but_is_asked_to_speak_like_any_other(lines, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("9999#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "NOT_ENROLLED"
    assert call.played == ["enter-account", "verify-speak"]


async def test_caller_id_claim_and_dialplan_account_skip_the_keypad(lines, engine, enrolled, utterances_of):
    by_callerid = ScriptedCall({"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]},
                               info=CallInfo("c2", "+4572", "es", {"claim": "callerid"}))
    await run_call(lines.verify(), by_callerid)
    # A new call says something new: the same recording twice would be a replay.
    given = ScriptedCall({"verify-speak": [Say(phone_speech(utterances_of, "alice", 6))]},
                         info=CallInfo("c3", None, "en", {"account": "4572"}))
    await run_call(lines.verify(), given)
    assert by_callerid.result["VOICEAUTH_RESULT"] == given.result["VOICEAUTH_RESULT"] == "PASS"
    assert "enter-account" not in by_callerid.played + given.played


async def test_no_account_entered_after_reprompts(lines):
    call = ScriptedCall({})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert call.played == ["enter-account"] + ["enter-account-again"] * (FAST.input_attempts - 1)


async def test_star_restarts_the_account_number(lines, engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("99*4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_SPEAKER"] == "4572"


async def test_hang_up_during_verification_sets_nothing(lines, engine, enrolled):
    call = ScriptedCall({"enter-account": [Keys("4572#")], "verify-speak": [Hangs()]})
    assert await run_call(lines.verify(), call) is None
    assert call.result is None


def enrol_script(utterances_of, name="alice", pin="2580", consent="1"):
    return {
        "enter-account": [Keys("4572#")],
        "enter-pin": [Keys(pin + "#")] * 3,
        "enroll-consent": [Keys(consent)],
        "enroll-say-1": [Say(phone_speech(utterances_of, name, 0))],
        "enroll-say-2": [Say(phone_speech(utterances_of, name, 1))],
        "enroll-say-3": [Say(phone_speech(utterances_of, name, 2))],
    }


async def test_enrolment_line_creates_a_voiceprint(lines, engine, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of))
    await run_call(lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert engine.store.get_voiceprint("4572", engine.model_id) is not None
    assert call.played[-1] == "enroll-done"


async def test_enrolment_gives_live_advice_and_retries_a_short_answer(lines, engine, utterances_of, say):
    script = enrol_script(utterances_of)
    script["enroll-say-1"].insert(0, Say(telephone_channel(say("alice", "Hi."))))
    call = ScriptedCall(script)
    await run_call(lines.enroll(), call)
    assert "enroll-speak-longer" in call.played
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED"


async def test_enrolment_without_consent_stores_nothing(lines, engine, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of, consent="2"))
    await run_call(lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "DECLINED"
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


async def test_wrong_pin_refuses_enrolment(lines, engine, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of, pin="1111"))
    await run_call(lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED"
    assert call.played.count("enter-pin") == FAST.input_attempts
    assert "enroll-consent" not in call.played


async def test_hang_up_mid_enrolment_leaves_no_partial_voiceprint(lines, engine, utterances_of):
    script = enrol_script(utterances_of)
    script["enroll-say-3"] = [Hangs()]
    call = ScriptedCall(script)
    assert await run_call(lines.enroll(), call) is None
    assert engine.store.get_voiceprint("4572", engine.model_id) is None
    assert engine.store.list_voiceprints() == []


async def test_enrolment_with_someone_else_speaking_fails_and_stores_nothing(lines, engine, utterances_of):
    script = enrol_script(utterances_of, name="erin")
    script["enroll-say-3"] = [Say(phone_speech(utterances_of, "bob", 2))]
    call = ScriptedCall(script)
    await run_call(lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED"
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


async def test_database_gone_gives_error_result_not_a_dropped_call(lines, engine, enrolled, utterances_of):
    engine.store.engine.dispose()
    (engine.config.data_dir / "voiceprints.db").unlink()
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ERROR", call.result
    assert "store" in call.result["VOICEAUTH_REASON"] or "database" in call.result["VOICEAUTH_REASON"]


async def test_hash_after_a_full_length_entry_does_not_end_the_next_entry():
    from ivr.flows.callio import CallIO

    call = ScriptedCall({"q1": [Keys("1234#")], "q2": [Keys("5678#")]})
    io = CallIO(call)
    await io.play("q1")
    first = await io.read_digits(4, 1.0, 0.5)
    await io.play("q2")
    second = await io.read_digits(4, 1.0, 0.5)
    assert (first, second) == ("1234", "5678")
