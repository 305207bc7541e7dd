"""Twilio Programmable Voice end to end: the real worker and FastAPI app under uvicorn on loopback,
Twilio played by a simulator that speaks the documented wire format in real time.

Every call: a signed voice webhook, TwiML with ``<Connect><Stream>``, a Media
Stream of 20 ms μ-law frames at real-time pace with DTMF events, prompts
consumed and their marks answered, then the signed ``<Connect>`` action
whose ``<Redirect>`` carries the ``VOICEAUTH_*`` result. The engine is the
real GE2E model, the one-time codes go through a real SMTP server on
loopback, and the limits and audit are the same database tables as on the
Asterisk lines.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from ivr.audit.log import AuditLog
from ivr.db.customers import CustomerDirectory
from ivr.db.engine import open_database
from ivr.prompts.catalog import PROMPTS
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from tests.flow_kit import VOICE_ALONE_WITHOUT_TEMPLATES
from tests.fakes.mailbox import free_port, running_mailbox
from scripts.lab.twilio_caller import CallOutcome, TwilioSimulator, sid
from tests.scripted_call import Hangs, Keys, KeysFrom, Say
from tests.test_flows import phone_speech
from voiceprints.audio.telephone import telephone_channel

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TOKEN = "test-auth-token-0123456789abcdef"
RESULT_TOKEN = "result-bearer-token"
RESULT_URL = "https://ivr.example/after-voiceauth?FlowEvent=return"
ENROLLED_BY_PHONE, IMPOSTOR_TARGET, STEP_UP, HANGS_UP = "5001", "5002", "5003", "5004"


def email_of(account: str) -> str:
    return f"holder{account}@bank.example"


def code_sent_to(box, address: str) -> str:  # type: ignore[no-untyped-def]
    """The newest code e-mailed to ``address`` (calls run at once: each reads their own mail)."""
    import re

    for message, (_, recipients) in reversed(list(zip(box.messages, box.envelopes))):
        match = re.search(r"\b\d{6}\b", message.get_body(("plain",)).get_content())
        if address in recipients and match:
            return match.group(0)
    raise AssertionError(f"no code was e-mailed to {address}")


def tone_prompts(directory: Path) -> None:
    """Every prompt the flows can play, as 0.1 s of tone: the calls' timing is the caller's, not espeak's."""
    samples = (np.sin(np.arange(800) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2").tobytes()
    for name in PROMPTS:
        path = directory / "en" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(samples)


@pytest.fixture(scope="module")
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(tmp_path_factory, mailbox, ge2e, utterances_of):
    """``ivr serve`` with Twilio configured (Asterisk listeners on spare ports), customers and voiceprints on file."""
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import open_store

    box, smtp_port = mailbox
    data = tmp_path_factory.mktemp("twilio-worker")
    tone_prompts(data / "prompts")
    http_port = free_port()
    settings = Settings(
        data_dir=data, ami={"enabled": False}, audiosocket={"port": 0}, fastagi={"enabled": False},
        http={"port": http_port}, prompts={"generated_dir": data / "prompts"},
        service={"warm_up": False, "shutdown_grace_s": 2},
        flows={"first_digit_timeout_s": 2.0, "next_digit_timeout_s": 1.0, "verify_listen_deadline_s": 10.0},
        otp={"smtp": {"host": "127.0.0.1", "port": smtp_port, "from_address": "codes@bank.example",
                      "starttls": False, "timeout_s": 5.0}},
        policy={"overrides": VOICE_ALONE_WITHOUT_TEMPLATES},
        twilio={"auth_token": TOKEN, "public_url": f"http://127.0.0.1:{http_port}", "result_url": RESULT_URL,
                "result_token": RESULT_TOKEN, "start_timeout_s": 1.0},
    )
    core = settings.core()
    engine = VoiceprintEngine(ge2e, open_store(core), core)
    customers = CustomerDirectory(open_database(core.database_url()))
    for account in (ENROLLED_BY_PHONE, IMPOSTOR_TARGET, STEP_UP, HANGS_UP):
        customers.add(account, email=email_of(account), preferred_otp_channel="email", language="en")
    for account in (IMPOSTOR_TARGET, STEP_UP, HANGS_UP):
        engine.enroll(account, [phone_speech(utterances_of, "alice", i) for i in range(3)])
    service = VoiceAuthService(settings, engine=engine, build_prompts=False)
    await service.start()
    try:
        yield service
    finally:
        await service.stop(grace_s=2)
        engine.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def twilio(worker):
    sim = TwilioSimulator(f"http://127.0.0.1:{worker.http.port}", TOKEN)
    yield sim
    await sim.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def enrolled_by_phone(twilio, mailbox, utterances_of) -> CallOutcome:
    box, _ = mailbox
    return await twilio.call({
        "otp-enter": [KeysFrom(lambda: code_sent_to(box, email_of(ENROLLED_BY_PHONE)) + "#")],
        "enroll-consent": [Keys("1")],
        **{f"enroll-say-{n}": [Say(phone_speech(utterances_of, "alice", n - 1), 1.5)] for n in (1, 2, 3)},
    }, f"flow=enroll&account={ENROLLED_BY_PHONE}", caller="+15551230010")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def verification_calls(twilio, enrolled_by_phone, mailbox, utterances_of, say) -> dict[str, CallOutcome]:
    """Four callers at once, each on their own account and number."""
    box, _ = mailbox
    wrong_code = [Keys("111111#")] * 4
    calls = {
        "genuine": twilio.call({"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]},
                               f"flow=verify&account={ENROLLED_BY_PHONE}", caller="+15551230011"),
        "impostor": twilio.call({"verify-speak": [Say(phone_speech(utterances_of, "frank", 5))],
                                 "otp-enter": wrong_code}, f"flow=verify&account={IMPOSTOR_TARGET}",
                                caller="+15551230012"),
        "step-up": twilio.call({"verify-speak": [Say(telephone_channel(say("alice", "Yes, hello.")))],
                                "otp-enter": [KeysFrom(lambda: code_sent_to(box, email_of(STEP_UP)) + "#")]},
                               f"flow=verify&account={STEP_UP}", caller="+15551230013"),
        "keypad-claim-hangs-up": twilio.call({"enter-account": [Keys(HANGS_UP + "#")],
                                              "verify-speak": [Hangs()]}, "flow=verify", caller="+15551230014"),
    }
    outcomes = await asyncio.gather(*calls.values())
    return dict(zip(calls, outcomes))


async def test_a_caller_enrols_over_a_media_stream(enrolled_by_phone, worker):
    call = enrolled_by_phone
    assert call.result is not None and call.result["VOICEAUTH_RESULT"] == "ENROLLED", call
    assert call.result["VOICEAUTH_ACCOUNT"] == ENROLLED_BY_PHONE
    assert call.redirect_url.startswith(RESULT_URL + "&VOICEAUTH_RESULT=ENROLLED")
    assert {"enroll-welcome", "otp-enter", "enroll-consent", "enroll-done"} <= set(call.played)
    assert worker.engine.store.get_voiceprint(ENROLLED_BY_PHONE, worker.engine.model_id) is not None


async def test_the_genuine_caller_passes_on_the_voiceprint_enrolled_by_phone(verification_calls):
    call = verification_calls["genuine"]
    assert call.result["VOICEAUTH_RESULT"] == "PASS", call.result
    assert call.result["VOICEAUTH_METHOD"] == "voice" and float(call.result["VOICEAUTH_SCORE"]) > 0
    assert call.close_code == 1000


async def test_an_impostor_who_does_not_have_the_code_does_not_pass(verification_calls):
    call = verification_calls["impostor"]
    assert call.result is not None and call.result["VOICEAUTH_RESULT"] != "PASS", call.result
    assert "otp-enter" in call.played  # stepped up, and the wrong codes were refused


async def test_a_short_answer_steps_up_to_a_code_typed_on_the_keypad_and_passes(verification_calls):
    call = verification_calls["step-up"]
    assert call.result["VOICEAUTH_RESULT"] == "PASS", call.result
    assert call.result["VOICEAUTH_METHOD"] == "otp"


async def test_a_caller_hanging_up_mid_stream_ends_the_call_cleanly_and_it_still_counts(
        verification_calls, worker, twilio):
    call = verification_calls["keypad-claim-hangs-up"]
    assert call.hung_up and call.result is None
    assert "verify-speak" in call.played
    rows = {row.call_id: row for row in AuditLog(open_database(worker.settings.core().database_url())).query()}
    assert rows[call.call_sid].result == "HUNGUP"
    # Issue 22: the result API said 404 for a caller who hung up; Studio or a back end now learns why.
    async with httpx.AsyncClient() as http:
        left = await http.get(f"{twilio.base_url}/twilio/calls/{call.call_sid}/result",
                              headers={"Authorization": f"Bearer {RESULT_TOKEN}"})
    assert left.status_code == 200 and left.json()["VOICEAUTH_RESULT"] == "HUNGUP", left.text
    assert worker.transport("twilio").active_streams == 0


async def test_every_call_is_audited_with_its_call_sid_on_a_twilio_trunk(verification_calls, worker):
    rows = {row.call_id: row for row in AuditLog(open_database(worker.settings.core().database_url())).query()}
    for name in ("genuine", "impostor", "step-up"):
        call = verification_calls[name]
        assert rows[call.call_sid].result == call.result["VOICEAUTH_RESULT"], name


async def test_studio_or_flex_reads_the_result_with_the_bearer_token(verification_calls, twilio):
    call = verification_calls["genuine"]
    url = f"{twilio.base_url}/twilio/calls/{call.call_sid}/result"
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
        answer = await http.get(url, headers={"Authorization": f"Bearer {RESULT_TOKEN}"})
    assert answer.status_code == 200
    assert answer.json()["VOICEAUTH_RESULT"] == "PASS" and answer.json()["CallSid"] == call.call_sid


async def test_an_unknown_flow_is_refused_at_the_webhook_with_what_to_use(twilio):
    """Issue 22: flow=bogus got TwiML and then a stream that closed at once; the admin saw nothing useful."""
    bad = await twilio.post("/twilio/voice?flow=bogus", twilio.call_params(sid("CA"), "+15551230020", "+15557654321"))
    assert bad.status_code == 400 and "verify" in bad.text and "bogus" in bad.text, bad.text
    good = await twilio.post("/twilio/voice?flow=enroll", twilio.call_params(sid("CA"), "+15551230021", "+15557654321"))
    assert good.status_code == 200 and "<Connect" in good.text
