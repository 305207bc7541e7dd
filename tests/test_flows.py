"""Call flows as a caller experiences them: prompts, keys, speech, and the result the dialplan gets."""

from __future__ import annotations

import pytest

from ivr.call import CallInfo
from ivr.db.customers import CustomerDirectory
from ivr.db.engine import open_database
from ivr.flows.config import FlowConfig
from ivr.flows.enroll import EnrollFlow
from ivr.flows.pin import PinFactor
from ivr.flows.runner import run_call
from ivr.flows.verify import VerifyFlow
from ivr.knowledge.service import KnowledgeService
from tests.scripted_call import Hangs, Keys, Say, ScriptedCall
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.config import CoreConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.store.sql import open_store

# Short keypad and listening deadlines keep silent-caller tests fast.
FAST = FlowConfig(first_digit_timeout_s=1.0, next_digit_timeout_s=0.5, verify_listen_deadline_s=2.0,
                  utterance_listen_deadline_s=2.0)


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
def pin_factor(tmp_path, engine):
    db = open_database(engine.config.database_url())
    customers = CustomerDirectory(db)
    customer = customers.add("4572", phone_e164="+573001234567")
    KnowledgeService(db).set_answers(customer, {"pin": "2580"})
    return PinFactor(customers, KnowledgeService(db), FAST)


def phone_speech(utterances_of, name: str, index: int) -> AudioClip:
    return telephone_channel(utterances_of(name, 1, offset=index)[0])


@pytest.fixture
def enrolled(engine, utterances_of):
    engine.enroll("4572", [phone_speech(utterances_of, "alice", i) for i in range(3)])


async def test_genuine_caller_passes_and_the_dialplan_gets_the_variables(engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    result = await run_call(VerifyFlow(engine, FAST), call)
    assert result is not None and result.result.value == "PASS"
    assert call.result["VOICEAUTH_RESULT"] == "PASS"
    assert call.result["VOICEAUTH_SPEAKER"] == "4572"
    assert float(call.result["VOICEAUTH_SCORE"]) >= 0.8
    assert call.result["VOICEAUTH_METHOD"] == "voice"
    assert call.played == ["enter-account", "verify-speak"]
    assert call.hung_up  # the session is handed back so the dialplan continues
    assert result.decision_s is not None and result.decision_s > 0  # its size is measured by scripts/bench_load.py


async def test_impostor_fails(engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))]})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAIL"


async def test_silent_caller_is_inconclusive_with_a_reason(engine, enrolled):
    call = ScriptedCall({"enter-account": [Keys("4572#")]})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert call.result["VOICEAUTH_REASON"]


async def test_too_short_answer_is_inconclusive_and_says_how_much_speech(engine, enrolled, say):
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(telephone_channel(say("alice", "Yes, hello.")))]})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert "need 3.0 s" in call.result["VOICEAUTH_REASON"]


async def test_unknown_account_is_not_enrolled_without_asking_for_speech(engine):
    call = ScriptedCall({"enter-account": [Keys("9999#")]})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_RESULT"] == "NOT_ENROLLED"
    assert "verify-speak" not in call.played


async def test_caller_id_claim_and_dialplan_account_skip_the_keypad(engine, enrolled, utterances_of):
    speech = phone_speech(utterances_of, "alice", 5)
    by_callerid = ScriptedCall({"verify-speak": [Say(speech)]},
                               info=CallInfo("c2", "+4572", "es", {"claim": "callerid"}))
    await run_call(VerifyFlow(engine, FAST), by_callerid)
    given = ScriptedCall({"verify-speak": [Say(speech)]}, info=CallInfo("c3", None, "en", {"account": "4572"}))
    await run_call(VerifyFlow(engine, FAST), given)
    assert by_callerid.result["VOICEAUTH_RESULT"] == given.result["VOICEAUTH_RESULT"] == "PASS"
    assert "enter-account" not in by_callerid.played + given.played


async def test_no_account_entered_after_reprompts(engine):
    call = ScriptedCall({})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE"
    assert call.played == ["enter-account"] + ["enter-account-again"] * (FAST.input_attempts - 1)


async def test_star_restarts_the_account_number(engine, enrolled, utterances_of):
    call = ScriptedCall({"enter-account": [Keys("99*4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(VerifyFlow(engine, FAST), call)
    assert call.result["VOICEAUTH_SPEAKER"] == "4572"


async def test_hang_up_during_verification_sets_nothing(engine, enrolled):
    call = ScriptedCall({"enter-account": [Keys("4572#")], "verify-speak": [Hangs()]})
    assert await run_call(VerifyFlow(engine, FAST), call) is None
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


async def test_enrolment_line_creates_a_voiceprint(engine, pin_factor, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of))
    await run_call(EnrollFlow(engine, FAST, pin_factor), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert engine.store.get_voiceprint("4572", engine.model_id) is not None
    assert call.played[-1] == "enroll-done"


async def test_enrolment_gives_live_advice_and_retries_a_short_answer(engine, pin_factor, utterances_of, say):
    script = enrol_script(utterances_of)
    script["enroll-say-1"].insert(0, Say(telephone_channel(say("alice", "Hi."))))
    call = ScriptedCall(script)
    await run_call(EnrollFlow(engine, FAST, pin_factor), call)
    assert "enroll-speak-longer" in call.played
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED"


async def test_enrolment_without_consent_stores_nothing(engine, pin_factor, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of, consent="2"))
    await run_call(EnrollFlow(engine, FAST, pin_factor), call)
    assert call.result["VOICEAUTH_RESULT"] == "DECLINED"
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


async def test_wrong_pin_refuses_enrolment(engine, pin_factor, utterances_of):
    call = ScriptedCall(enrol_script(utterances_of, pin="1111"))
    await run_call(EnrollFlow(engine, FAST, pin_factor), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED"
    assert call.played.count("enter-pin") == FAST.input_attempts
    assert "enroll-consent" not in call.played


async def test_hang_up_mid_enrolment_leaves_no_partial_voiceprint(engine, pin_factor, utterances_of):
    script = enrol_script(utterances_of)
    script["enroll-say-3"] = [Hangs()]
    call = ScriptedCall(script)
    assert await run_call(EnrollFlow(engine, FAST, pin_factor), call) is None
    assert engine.store.get_voiceprint("4572", engine.model_id) is None
    assert engine.store.list_voiceprints() == []


async def test_enrolment_with_someone_else_speaking_fails_and_stores_nothing(engine, pin_factor, utterances_of):
    script = enrol_script(utterances_of, name="erin")
    script["enroll-say-3"] = [Say(phone_speech(utterances_of, "bob", 2))]
    call = ScriptedCall(script)
    await run_call(EnrollFlow(engine, FAST, pin_factor), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED"
    assert engine.store.get_voiceprint("4572", engine.model_id) is None


async def test_database_gone_gives_error_result_not_a_dropped_call(engine, enrolled, utterances_of):
    engine.store.engine.dispose()
    (engine.config.data_dir / "voiceprints.db").unlink()
    call = ScriptedCall({"enter-account": [Keys("4572#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(VerifyFlow(engine, FAST), call)
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
