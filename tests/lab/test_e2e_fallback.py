"""One-time codes by e-mail, through a real Asterisk 22: the caller reads the code and types it.

The worker (in this event loop, as in ``test_e2e_calls.py``) is configured
only through settings to send codes by e-mail: ``VOICEAUTH_OTP__SMTP__HOST``,
``__PORT``, ``__FROM_ADDRESS``, ``__STARTTLS=false`` pointing at a real SMTP
server on loopback (aiosmtpd, ``tests/fakes/mailbox.py``).  With a code
channel configured, the verify flow steps up to a code when the voice is not
enough, and the enrolment line proves the caller holds the account with a
code instead of the PIN.

How the code reaches the caller's keypad: the code is random and only exists
mid-call, while a sipp scenario is written before the call.  The test plays
the person reading their e-mail: it takes the code out of the message the
SMTP server received and hands it to the caller's phone as a SIP MESSAGE
inside the call (AMI ``SendText`` on the caller's channel; Asterisk sends it
in-dialog).  The scenario waits for that MESSAGE (``<recv request="MESSAGE">``
with ``<ereg>`` into ``$code``, answered 200 OK) and then types it:
``<exec play_dtmf="[$code]#"/>`` (sipp 3.6 substitutes variables there) sends
RFC 4733 DTMF over RTP, which Asterisk hands to the worker over AudioSocket
like any keypad digit.  Only the caller's side knows about the MESSAGE; the
worker and the dialplan see an ordinary call.

Calls are short because the worker plays 0.25 s tones instead of the spoken
prompts (as in ``test_e2e_calls.py``), and listens at most 5 s for a verify
answer instead of 15 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from ivr.prompts.catalog import PROMPTS
from ivr.settings import Settings
from ivr.transports.asterisk.ami import AmiClient
from tests.fakes.mailbox import Mailbox, running_mailbox
from scripts.lab.asterisk import REPO, Lab
from scripts.lab.callers import (
    DialplanResults,
    await_text,
    keys,
    pause,
    place_call,
    running_worker,
    send_text,
    quiet,
    speak,
    speech_file,
)
from tests.lab.test_e2e_calls import write_tone
from tests.speech import SENTENCES, SPEAKERS, synth

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT, EMAIL = "6021", "alice.otp@example.com"
OTP_ATTEMPTS = 3  # OtpConfig.max_attempts: the impostor uses every try
# sipp types 0.4 s per digit in the background; a code and '#' take 2.8 s, and the next
# keys step must not cut it off.
TYPE_CODE_MS = 3200


@pytest.fixture(scope="module")
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("otp-callers")
    cache = tmp_path_factory.mktemp("otp-speech")

    def sentences(name: str, indexes: range) -> list[np.ndarray]:
        return [synth(SPEAKERS[name], SENTENCES[i % len(SENTENCES)], 8000, cache).samples for i in indexes]

    return {
        "alice_enrol": speech_file(work / "alice_enrol.ulaw", sentences("alice", range(0, 6))),
        # "Yes." every 2.5 s (the file loops): well under the 3 s of speech a decision needs.
        "short": speech_file(work / "short.ulaw", [synth(SPEAKERS["alice"], "yes", 8000, cache).samples], gap_s=2.0),
        "frank": speech_file(work / "frank.ulaw", sentences("frank", range(4, 8))),
    }


@pytest.fixture(scope="module")
def settings(asterisk: Lab, mailbox, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The admin's configuration: the e-mail channel comes from VOICEAUTH_OTP__SMTP__* variables."""
    _, smtp_port = mailbox
    data = tmp_path_factory.mktemp("otp-worker")
    override = data / "admin-prompts"
    for name in PROMPTS:
        write_tone(override / "en" / f"{name}.wav")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VOICEAUTH_OTP__SMTP__HOST", "127.0.0.1")
        env.setenv("VOICEAUTH_OTP__SMTP__PORT", str(smtp_port))
        env.setenv("VOICEAUTH_OTP__SMTP__FROM_ADDRESS", "codes@bank.example")
        env.setenv("VOICEAUTH_OTP__SMTP__STARTTLS", "false")
        settings = Settings(
            data_dir=data,
            ami={"port": asterisk.ami_port, "username": asterisk.ami_user, "secret": asterisk.ami_secret},
            audiosocket={"port": asterisk.audiosocket_port},
            fastagi={"port": asterisk.agi_port},
            http={"port": 0},
            prompts={"generated_dir": REPO / ".lab" / "prompts", "override_dir": override},
            service={"shutdown_grace_s": 5},
            # A too-short answer is INCONCLUSIVE at the listening deadline: 5 s keeps the call short.
            flows={"verify_listen_deadline_s": 5.0},
        )
    assert settings.otp.smtp is not None and settings.otp.smtp.port == smtp_port
    return settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(settings: Settings):
    from ivr.db.customers import CustomerDirectory
    from ivr.db.engine import open_database

    db = open_database(settings.core().database_url())
    CustomerDirectory(db).add(ACCOUNT, email=EMAIL, preferred_otp_channel="email", language="en")
    db.dispose()
    async with running_worker(settings) as service:
        yield service


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ami(asterisk: Lab):
    async with asterisk.ami_client() as client:
        await client.wait_connected(10)
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(ami: AmiClient):
    events = DialplanResults(ami)
    yield events
    events.close()


async def next_code(box: Mailbox, already: int, call: asyncio.Task, timeout: float = 40) -> str:
    """The code in the first e-mail after ``already`` messages, as the caller reading it would see it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(box.messages) <= already:
        if call.done():
            result = call.result()
            raise AssertionError(f"the call ended before a code was e-mailed:\n{result.stdout}{result.stderr}")
        if loop.time() > deadline:
            raise AssertionError(f"no e-mail with a code within {timeout} s")
        await asyncio.sleep(0.1)
    return box.latest_code()


async def call_reading_the_code(
    asterisk: Lab, ami: AmiClient, box: Mailbox, exten: str, script: list, *, caller: str, audio: Path,
    work: Path, typed=lambda code: code,
):
    """Place the call; when the code arrives by e-mail, pass ``typed(code)`` to the caller's phone."""
    already = len(box.messages)
    call = asyncio.create_task(
        place_call(asterisk, exten, script, caller=caller, workdir=work, audio=[audio], wait_ms=90000, timeout=120)
    )
    code = await next_code(box, already, call)
    await send_text(ami, caller, typed(code))
    return await call, code


def enrol_script(speech: Path) -> list:
    return [pause(800), keys(f"{ACCOUNT}#"), await_text(40000), pause(300), keys("[$code]#"),
            pause(TYPE_CODE_MS), keys("1"), pause(1500), speak(speech)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def enrolled(asterisk: Lab, worker, ami, results: DialplanResults, mailbox, audio, tmp_path_factory):
    """Alice enrols on the enrolment line, proving the account with the code e-mailed to her."""
    box, _ = mailbox
    call, code = await call_reading_the_code(
        asterisk, ami, box, "200", enrol_script(audio["alice_enrol"]), caller="alice-otp-enrol",
        audio=audio["alice_enrol"], work=tmp_path_factory.mktemp("otp-enrol"))
    return call, code, await results.of("alice-otp-enrol", timeout=15)


async def test_enrolment_line_takes_the_emailed_code_as_second_factor(enrolled, worker, mailbox):
    call, code, result = enrolled
    box, _ = mailbox
    assert result["Result"] == "ENROLLED", (result["Reason"], call.stdout)
    assert result["Account"] == ACCOUNT
    assert box.envelopes[-1] == ("codes@bank.example", [EMAIL])
    assert worker.engine.store.get_voiceprint(ACCOUNT, worker.engine.model_id) is not None
    assert code not in result["Reason"]


async def test_too_short_an_answer_steps_up_to_the_emailed_code_typed_on_the_keypad(
    asterisk: Lab, enrolled, ami, results: DialplanResults, mailbox, audio, tmp_path: Path
):
    box, _ = mailbox
    script = [pause(800), keys(f"{ACCOUNT}#"), pause(2000), speak(audio["short"]),
              await_text(40000), quiet(), pause(300), keys("[$code]#")]
    call, code = await call_reading_the_code(
        asterisk, ami, box, "100", script, caller="alice-otp-short", audio=audio["short"], work=tmp_path)
    result = await results.of("alice-otp-short", timeout=15)
    assert result["Result"] == "PASS", (result, call.stdout)
    assert result["Method"] == "otp"
    assert "voice inconclusive (only" in result["Reason"] and "otp pass" in result["Reason"], result
    assert box.envelopes[-1][1] == [EMAIL]
    assert code not in result["Reason"]


async def test_impostor_typing_wrong_codes_does_not_pass(
    asterisk: Lab, enrolled, ami, results: DialplanResults, mailbox, audio, tmp_path: Path
):
    """Frank claims alice's account, his voice fails, and he cannot read her e-mail: every guess is wrong."""
    box, _ = mailbox
    already = len(box.messages)
    script = [pause(800), keys(f"{ACCOUNT}#"), pause(2000), speak(audio["frank"]), await_text(40000), quiet()]
    for _ in range(OTP_ATTEMPTS):
        script += [pause(300), keys("[$code]#"), pause(TYPE_CODE_MS)]

    def a_wrong_code(code: str) -> str:
        return "".join(str((int(digit) + 1) % 10) for digit in code)  # differs from the code in every digit

    call, code = await call_reading_the_code(
        asterisk, ami, box, "100", script, caller="frank-otp-guesses", audio=audio["frank"], work=tmp_path,
        typed=a_wrong_code)
    result = await results.of("frank-otp-guesses", timeout=15)
    assert result["Result"] not in ("PASS", ""), (result, call.stdout)
    assert result["Method"] != "otp"
    assert "otp fail (code too_many_attempts)" in result["Reason"], result  # all three guesses were heard
    assert len(box.messages) == already + 1  # one code for the call, never a new one per guess
