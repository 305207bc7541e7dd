"""Step-up and policy in the calls: one-time codes by e-mail, knowledge questions, lockout, consent, audit.

Real parts throughout: SQLite database with the real migrations, a real SMTP
server on loopback that receives the code, the caller typing what arrived.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import dataclass
from typing import Callable

import pytest

from ivr.audit.log import AuditLog
from ivr.call import CallInfo
from ivr.db.customers import CustomerDirectory
from ivr.db.engine import Database
from ivr.service.calls import run_call
from ivr.knowledge.service import KnowledgeService
from ivr.limits.service import Limits
from ivr.otp.backends import LocalOtpBackend
from ivr.otp.caps import OtpSendCaps
from ivr.otp.config import OtpConfig
from ivr.otp.senders.smtp import SmtpConfig, SmtpOtpSender
from ivr.otp.service import OtpService
from tests.fakes.mailbox import Mailbox, free_port, running_mailbox
from tests.flow_kit import FAST, Lines, build_lines
from tests.scripted_call import Hangs, Keys, KeysFrom, Say, ScriptedCall
from tests.test_flows import phone_speech
from voiceprints.audio.telephone import telephone_channel
from voiceprints.config import CoreConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.inference import InferenceQueue
from voiceprints.store.sql import open_store

ACCOUNT = "4572"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    """Everything a test needs to script a call and check what it left behind."""

    engine: VoiceprintEngine
    db: Database
    box: Mailbox
    lines: Callable[..., Lines]
    knowledge: KnowledgeService
    clock: Clock
    customers: CustomerDirectory


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest.fixture
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


@pytest.fixture
def world(tmp_path, ge2e, mailbox, monkeypatch):
    """Engine, database and every fallback service, wired as the worker wires them."""
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    box, port = mailbox
    config = CoreConfig(data_dir=tmp_path)
    engine = VoiceprintEngine(ge2e, open_store(config), config)
    clock = Clock()

    def lines(smtp_port: int = port) -> Lines:
        sender = SmtpOtpSender(SmtpConfig(host="127.0.0.1", port=smtp_port, from_address="codes@bank.example",
                                          starttls=False, timeout_s=2.0))
        built = build_lines(engine, clock=clock, notifier_senders={"email": sender})
        otp_service = OtpService(built.db, built.secrets.otp_secret, OtpConfig(), clock=clock)
        backend = LocalOtpBackend(otp_service, {"email": sender}, caps=OtpSendCaps(built.db, OtpConfig(), clock=clock))
        return build_lines(engine, otp=backend, clock=clock, notifier_senders={"email": sender})

    first = lines()
    first.customers.add(ACCOUNT, email="maria.lopez@example.com", phone_e164="+573001234567",
                        preferred_otp_channel="email", language="en")
    yield World(engine, first.db, box, lines, first.knowledge, clock, first.customers)
    engine.close()


def verify(world, **kit_args):  # type: ignore[no-untyped-def]
    return world.lines(**kit_args).verify()


def enrol_alice(world, utterances_of) -> None:
    world.engine.enroll(ACCOUNT, [phone_speech(utterances_of, "alice", i) for i in range(3)])


async def test_inconclusive_voice_steps_up_to_an_emailed_code_and_passes(world, utterances_of, say):
    enrol_alice(world, utterances_of)
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "verify-speak": [Say(telephone_channel(say("alice", "Yes, hello.")))],
                         "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] == "PASS"
    assert call.result["VOICEAUTH_METHOD"] == "otp"
    assert "otp-sent-email" in call.played
    assert world.box.envelopes[-1][1] == ["maria.lopez@example.com"]
    [row] = AuditLog(world.db).query()
    assert [f["factor"] for f in row.factors] == ["voice", "otp"]
    assert [f["outcome"] for f in row.factors] == ["inconclusive", "pass"]
    assert row.rule == "code-pass" and row.result == "PASS"
    assert world.box.latest_code() not in repr(row.to_dict())


async def test_a_busy_engine_steps_the_caller_up_to_a_code_instead_of_a_wait(world, utterances_of):
    """Back-pressure: with the inference queue full, the genuine voice is not scored but the call goes on."""
    enrol_alice(world, utterances_of)
    world.engine.inference.close()
    world.engine.inference = InferenceQueue(workers=1, max_waiting=0)
    release = threading.Event()
    holding = asyncio.create_task(world.engine.run(release.wait, 30))
    try:
        for _ in range(1000):  # bounded: the worker thread picks it up at once
            if world.engine.inference.saturated:
                break
            await asyncio.sleep(0.005)
        call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                             "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                             "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")]})
        await run_call(verify(world), call)
        assert not holding.done(), "the call waited for the held inference instead of stepping up"
    finally:
        release.set()
        await holding
    assert call.result["VOICEAUTH_RESULT"] == "PASS" and call.result["VOICEAUTH_METHOD"] == "otp"
    [row] = AuditLog(world.db).query()
    assert [(f["factor"], f["outcome"]) for f in row.factors] == [("voice", "inconclusive"), ("otp", "pass")]
    assert "busy" in row.factors[0]["detail"]
    assert world.engine.inference.rejected == 1


async def test_genuine_voice_without_digit_templates_is_confirmed_by_a_code(world, utterances_of):
    """Issue 18: no liveness challenge can be asked (no digit templates), and a recording of the customer would
    pass the voice alone; with codes configured the voice pass is confirmed by one (before: PASS by voice)."""
    enrol_alice(world, utterances_of)
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                         "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] == "PASS" and call.result["VOICEAUTH_METHOD"] == "otp", call.result
    assert call.result["VOICEAUTH_LIVENESS"] == "SKIPPED" and len(world.box.messages) == 1
    [row] = AuditLog(world.db).query()
    assert [(f["factor"], f["outcome"]) for f in row.factors] == [("voice", "pass"), ("otp", "pass")]


async def test_impostor_cannot_pass_with_wrong_codes_and_failures_are_counted(world, utterances_of):
    enrol_alice(world, utterances_of)
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))],
                         "otp-enter": [Keys("000000#")] * 5})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS"
    assert call.played.count("otp-enter") == OtpConfig().max_attempts
    assert Limits(world.db, clock=world.clock).check(ACCOUNT, None).recent_failures == 2  # voice and code


async def test_repeated_failures_lock_the_account_and_the_next_call_hears_no_prompt(world, utterances_of):
    enrol_alice(world, utterances_of)
    limits = Limits(world.db, clock=world.clock)
    for _ in range(limits.config.identity.max_events):
        limits.record_failure(ACCOUNT, None, "voice")
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] == "LOCKED"
    assert "verify-speak" not in call.played and world.box.messages == []


async def test_known_customer_without_voiceprint_is_asked_to_speak_then_gets_a_code(world):
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] == "PASS" and call.result["VOICEAUTH_METHOD"] == "otp"
    assert call.played[:3] == ["enter-account", "verify-speak", "otp-sent-email"]


async def test_unknown_account_hears_what_a_customer_hears_and_nothing_is_sent(world):
    call = ScriptedCall({"enter-account": [Keys("99999#")], "otp-enter": [Keys("123456#")] * 3})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] == "NOT_ENROLLED"
    assert call.played[:3] == ["enter-account", "verify-speak", "otp-sent-email"]
    assert "otp-too-many" in call.played
    assert world.box.messages == []


async def test_expired_code_is_refused(world):
    def late_code() -> str:
        code = world.box.latest_code()
        world.clock.now += dt.timedelta(seconds=OtpConfig().ttl_s + 1)
        return code + "#"

    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")], "otp-enter": [KeysFrom(late_code)]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS"
    assert "otp-expired" in call.played


async def test_a_code_is_single_use(world):
    codes: list[str] = []

    def remember() -> str:
        codes.append(world.box.latest_code())
        return codes[-1] + "#"

    first = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")], "otp-enter": [KeysFrom(remember)]})
    await run_call(verify(world), first)
    replay = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")], "otp-enter": [Keys(codes[0] + "#")] * 3})
    await run_call(verify(world), replay)
    assert first.result["VOICEAUTH_RESULT"] == "PASS"
    assert len(world.box.messages) == 2  # a fresh code was sent for the second call
    # (A fresh code equal to the used one is a one-in-a-million draw; it would make the replay right.)
    assert world.box.latest_code() != codes[0]
    assert replay.result["VOICEAUTH_RESULT"] != "PASS"
    assert "otp-wrong" in replay.played  # the used code was refused as a wrong one


async def test_no_code_typed_is_a_timeout_not_a_pass(world):
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")]})
    await run_call(verify(world), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS"
    assert call.played.count("otp-enter") == FAST.input_attempts


async def test_hang_up_while_typing_the_code_sets_nothing(world):
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")], "otp-enter": [Hangs()]})
    assert await run_call(verify(world), call) is None
    assert call.result is None


def grey_band_for_every_voice(world) -> None:
    """Thresholds under which any good speech scores in the grey band (a bad line, a cold)."""
    from voiceprints.store.base import Calibration

    for normalisation in ("none", "asnorm", "centred-asnorm"):
        world.engine.store.save_calibration(Calibration(
            world.engine.model_id, normalisation, accept_threshold=100.0, reject_threshold=-100.0,
            target_far=0.001, target_frr=0.02, n_target=1, n_nontarget=1, source="test: all grey"))


ANSWERS = {"kba-dob": [Keys("15031987#")], "kba-postal-code": [Keys("110111#")]}


async def test_undeliverable_code_lets_knowledge_questions_confirm_a_grey_band_voice(world, utterances_of):
    enrol_alice(world, utterances_of)
    grey_band_for_every_voice(world)
    world.knowledge.set_answers(world.customers.get(ACCOUNT), {"dob": "15/03/1987", "postal_code": "110111"})
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))], **ANSWERS})
    await run_call(verify(world, smtp_port=free_port()), call)
    assert "otp-unavailable" in call.played
    assert call.result["VOICEAUTH_RESULT"] == "PASS" and call.result["VOICEAUTH_METHOD"] == "kba", call.result
    [row] = AuditLog(world.db).query()
    assert row.rule == "knowledge-confirms-grey-voice"
    assert "15031987" not in repr(row.to_dict()) and "110111" not in repr(row.to_dict())


async def test_knowledge_answers_never_stand_in_for_a_voice_that_was_absent(world, utterances_of):
    enrol_alice(world, utterances_of)
    world.knowledge.set_answers(world.customers.get(ACCOUNT), {"dob": "15/03/1987", "postal_code": "110111"})
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")], **ANSWERS})  # silent at the voice prompt
    await run_call(verify(world, smtp_port=free_port()), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS"
    assert "kba-intro" not in call.played


async def test_wrong_knowledge_answers_do_not_pass(world, utterances_of):
    enrol_alice(world, utterances_of)
    grey_band_for_every_voice(world)
    world.knowledge.set_answers(world.customers.get(ACCOUNT), {"dob": "15/03/1987", "postal_code": "110111"})
    call = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                         "kba-dob": [Keys("01011990#")], "kba-postal-code": [Keys("999999#")]})
    await run_call(verify(world, smtp_port=free_port()), call)
    assert "kba-intro" in call.played
    assert call.result["VOICEAUTH_RESULT"] != "PASS"


async def test_enrolment_line_with_a_one_time_code_records_consent_and_tells_the_customer(world, utterances_of):
    lines = world.lines()
    call = ScriptedCall({
        "enter-account": [Keys(ACCOUNT + "#")],
        "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")],
        "enroll-consent": [Keys("1")],
        **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", i))] for i in range(3)},
    })
    await run_call(lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED"
    state = lines.guard.kit.consent.state(ACCOUNT)
    assert state.consented and state.consent.channel == "ivr-enroll" and state.consent.policy_version == "test-1"
    [notice] = world.box.notices("maria.lopez@example.com")
    assert "voiceprint was created" in notice and ACCOUNT not in notice


async def test_opt_out_deletes_the_voiceprint_and_voice_is_never_scored_again(world, utterances_of):
    enrol_alice(world, utterances_of)
    lines = world.lines()
    optout = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                           "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")],
                           "optout-confirm": [Keys("1")]})
    await run_call(lines.optout(), optout)
    assert optout.result["VOICEAUTH_RESULT"] == "OPTED_OUT"
    assert world.engine.store.get_voiceprint(ACCOUNT, world.engine.model_id) is None
    assert lines.guard.kit.consent.state(ACCOUNT).opted_out
    assert any("voiceprint used for voice authentication on your account was deleted" in n
               for n in world.box.notices())
    later = ScriptedCall({"enter-account": [Keys(ACCOUNT + "#")],
                          "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                          "otp-enter": [KeysFrom(lambda: world.box.latest_code() + "#")]},
                         info=CallInfo("call-2", "3001234567", "en", {}))
    await run_call(lines.verify(), later)
    assert later.result["VOICEAUTH_RESULT"] == "PASS" and later.result["VOICEAUTH_METHOD"] == "otp"
    assert "voice refused" in later.result["VOICEAUTH_REASON"] or "voice not_enrolled" in later.result[
        "VOICEAUTH_REASON"]
