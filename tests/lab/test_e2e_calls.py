"""Phone calls through a real Asterisk 22 into the worker, with sipp as the caller.

One lab Asterisk (session) and one worker (this module, in this event loop,
with the real GE2E model and an encrypted SQLite store) serve every call.
Results are read back from Asterisk itself: the lab dialplan emits a
``VoiceAuthResult`` UserEvent with the channel's VOICEAUTH_* variables after
the flow, and the test matches it to its call by caller ID.

The worker runs with an admin prompt override directory of 0.25 s tones:
that keeps calls short (the shipped espeak-ng prompts take ~60 s for an
enrolment) and exercises the override path.  ``test_e2e_serve.py`` places
calls with the generated prompts through the real ``ivr serve`` process.

Speakers: espeak-ng ``alice`` is the genuine caller; ``frank`` (a male voice,
cosine ~0.74 to alice with GE2E) is the impostor.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from ivr.prompts.catalog import PROMPTS
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from scripts.lab.asterisk import REPO, Lab
from scripts.lab.callers import DialplanResults, keys, pause, place_call, running_worker, speak, speech_file
from tests.speech import SENTENCES, SPEAKERS, synth
from voiceprints.audio.telephone import telephone_channel

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT, PIN = "4711", "1234"
HANGUP_ACCOUNT, HANGUP_PIN = "5555", "2468"
SILENT_ACCOUNT, SHORT_ACCOUNT = "4713", "4714"
# Generated prompts are cached here between runs (start.sh also copies them into the chroot).
GENERATED_PROMPTS = REPO / ".lab" / "prompts"


def write_tone(path: Path, seconds: float = 0.25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((0.2 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The callers' speech as headerless mu-law, 8 kHz, sentences separated by pauses."""
    work = tmp_path_factory.mktemp("callers")
    cache = tmp_path_factory.mktemp("speech")

    def sentences(name: str, indexes: range) -> list[np.ndarray]:
        return [synth(SPEAKERS[name], SENTENCES[i % len(SENTENCES)], 8000, cache).samples for i in indexes]

    rng = np.random.default_rng(7)
    line_noise = (rng.standard_normal(8000 * 20) * 3e-4).astype(np.float32)  # a quiet, open line
    short = synth(SPEAKERS["alice"], "yes", 8000, cache).samples
    def said(texts: tuple[str, ...]) -> list[np.ndarray]:
        return [synth(SPEAKERS["alice"], text, 8000, cache).samples for text in texts]

    return {
        "alice_enrol": speech_file(work / "alice_enrol.ulaw", sentences("alice", range(0, 6))),
        "alice": speech_file(work / "alice.ulaw", sentences("alice", range(4, 8))),
        # Every call of alice says something new: playing one recording twice is a replay (refused).
        "alice_fastagi": speech_file(work / "alice_fastagi.ulaw", said((
            "Hello, I am calling because my debit card was declined at the supermarket this morning.",
            "I checked my balance online and there should be enough money in the account."))),
        "alice_restart": speech_file(work / "alice_restart.ulaw", said((
            "Good evening, I need to report that I lost my wallet on the bus this afternoon.",
            "Please block the cards that were inside it and send me replacements."))),
        "frank": speech_file(work / "frank.ulaw", sentences("frank", range(4, 8))),
        "silence": speech_file(work / "silence.ulaw", [line_noise], gap_s=0),
        "short": speech_file(work / "short.ulaw", [short, line_noise], gap_s=0),
    }


@pytest.fixture(scope="module")
def settings(asterisk: Lab, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("worker")
    override = data / "admin-prompts"
    for name in PROMPTS:
        write_tone(override / "en" / f"{name}.wav")
    return Settings(
        data_dir=data,
        ami={"port": asterisk.ami_port, "username": asterisk.ami_user, "secret": asterisk.ami_secret},
        audiosocket={"port": asterisk.audiosocket_port},
        fastagi={"port": asterisk.agi_port},
        http={"port": 0},
        prompts={"generated_dir": GENERATED_PROMPTS, "override_dir": override},
        service={"shutdown_grace_s": 5},
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(settings: Settings):
    from ivr.db.customers import CustomerDirectory
    from ivr.db.engine import open_database
    from ivr.knowledge.service import KnowledgeService
    from ivr.secrets import load_server_secrets

    # As `ivr customers import` would: PINs hashed with the server's pepper.
    pepper = load_server_secrets(settings.secrets, settings.data_dir).knowledge_pepper
    db = open_database(settings.core().database_url())
    for account, pin in ((ACCOUNT, PIN), (HANGUP_ACCOUNT, HANGUP_PIN)):
        customer = CustomerDirectory(db).add(account)
        KnowledgeService(db, pepper=pepper).set_answers(customer, {"pin": pin})
    db.dispose()
    async with running_worker(settings) as service:
        yield service


def verify_script(account: str, speech: Path) -> list:
    """Key in the account, then talk (the worker drops what is said over its prompts)."""
    return [pause(800), keys(f"{account}#"), pause(2000), speak(speech)]


def enrol_script(account: str, pin: str, speech: Path) -> list:
    return [
        pause(800),
        keys(f"{account}#"),
        pause(2500),
        keys(f"{pin}#"),
        pause(2500),
        keys("1"),
        pause(1500),
        speak(speech),
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def enrolled(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path_factory
):
    """Alice enrols by phone on the enrolment line (extension 200)."""
    work = tmp_path_factory.mktemp("enrol")
    call = await place_call(
        asterisk,
        "200",
        enrol_script(ACCOUNT, PIN, audio["alice_enrol"]),
        caller="alice-enrol",
        workdir=work,
        audio=[audio["alice_enrol"]],
        wait_ms=90000,
        timeout=120,
    )
    return call, await results.of("alice-enrol", timeout=15)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def verification_calls(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path_factory
):
    """Verification calls once alice is enrolled: independent accounts at the same time, then one at a time.

    Only one authentication of an account may be in progress at once (the
    guard's lease), so the calls claiming alice's account take turns; the
    silent and short callers claim accounts of their own, enrolled directly.
    """
    work = tmp_path_factory.mktemp("verify")
    cache = tmp_path_factory.mktemp("direct-speech")
    clips = [telephone_channel(synth(SPEAKERS["alice"], SENTENCES[i], 16000, cache)) for i in range(3)]
    for account in (SILENT_ACCOUNT, SHORT_ACCOUNT):
        await worker.engine.aenroll(account, clips)

    async def batch(calls: dict[str, tuple[str, list, Path]]) -> None:
        await asyncio.gather(*(
            place_call(asterisk, exten, script, caller=caller, workdir=work, audio=[file], wait_ms=60000)
            for caller, (exten, script, file) in calls.items()))

    # caller id: (extension, script, audio)
    await batch({
        "alice-genuine": ("100", verify_script(ACCOUNT, audio["alice"]), audio["alice"]),
        "alice-silent": ("100", verify_script(SILENT_ACCOUNT, audio["silence"]), audio["silence"]),
        "alice-short": ("100", verify_script(SHORT_ACCOUNT, audio["short"]), audio["short"]),
        "nobody-unknown": ("100", verify_script("9999", audio["alice"]), audio["alice"]),
    })
    await batch({"frank-impostor": ("100", verify_script(ACCOUNT, audio["frank"]), audio["frank"])})
    await batch({"alice-fastagi": ("400", verify_script(ACCOUNT, audio["alice_fastagi"]), audio["alice_fastagi"])})
    callers = ("alice-genuine", "alice-silent", "alice-short", "nobody-unknown", "frank-impostor", "alice-fastagi")
    return {caller: await results.of(caller, timeout=15) for caller in callers}


async def test_enrolment_line_stores_a_voiceprint_after_pin_consent_and_three_utterances(
    enrolled, worker: VoiceAuthService
):
    call, result = enrolled
    assert result["Result"] == "ENROLLED", result
    assert result["Account"] == ACCOUNT
    assert call.returncode == 0, call.stdout + call.stderr
    voiceprint = worker.engine.store.get_voiceprint(ACCOUNT, worker.engine.model_id)
    assert voiceprint is not None and voiceprint.meta.utterance_count >= 3


async def test_genuine_caller_passes(verification_calls):
    result = verification_calls["alice-genuine"]
    assert result["Result"] == "PASS", result
    assert result["Account"] == ACCOUNT
    assert float(result["Score"]) >= 0.85


async def test_impostor_claiming_the_account_never_passes(verification_calls):
    result = verification_calls["frank-impostor"]
    assert result["Result"] in ("FAIL", "INCONCLUSIVE"), result
    assert float(result["Score"]) < float(verification_calls["alice-genuine"]["Score"])


async def test_silence_is_inconclusive_with_a_reason(verification_calls):
    result = verification_calls["alice-silent"]
    assert result["Result"] == "INCONCLUSIVE", result
    assert "speech" in result["Reason"], result


async def test_too_short_an_answer_is_inconclusive_with_a_reason(verification_calls):
    result = verification_calls["alice-short"]
    assert result["Result"] == "INCONCLUSIVE", result
    assert "speech" in result["Reason"], result


async def test_unknown_account_is_not_enrolled(verification_calls):
    result = verification_calls["nobody-unknown"]
    assert result["Result"] == "NOT_ENROLLED", result
    assert result["Account"] == "9999"


async def test_fastagi_variant_verifies_without_ami(verification_calls):
    result = verification_calls["alice-fastagi"]
    assert result["Flow"] == "agi"
    assert result["Result"] == "PASS", result


async def test_metrics_count_the_calls_and_the_decision_latency(verification_calls, worker: VoiceAuthService):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http.port}") as http:
        text = (await http.get("/metrics")).text
    assert 'voiceauth_calls_total{flow="verify",result="PASS"} 2.0' in text
    assert 'voiceauth_calls_total{flow="verify",result="NOT_ENROLLED"} 1.0' in text
    assert 'voiceauth_calls_total{flow="enroll",result="ENROLLED"} 1.0' in text
    count = [
        line
        for line in text.splitlines()
        if line.startswith('voiceauth_decision_latency_seconds_count{flow="verify"}')
    ]
    assert count and float(count[0].split()[-1]) >= 4  # genuine, impostor, silent, short, fastagi
    assert 'voiceauth_calls_in_progress{flow="verify"} 0.0' in text


async def test_caller_hanging_up_mid_enrolment_leaves_no_voiceprint(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path
):
    script = [*enrol_script(HANGUP_ACCOUNT, HANGUP_PIN, audio["alice_enrol"]), pause(6000)]
    await place_call(
        asterisk,
        "200",
        script,
        caller="alice-hangs-up",
        workdir=tmp_path,
        audio=[audio["alice_enrol"]],
        ending="hang_up",
    )
    hangup = await results.hangup_of("alice-hangs-up", timeout=15)
    assert hangup["Result"] != "ENROLLED", hangup
    await asyncio.sleep(1.0)  # the worker notices the closed socket and ends the flow
    assert worker.runner.active == {}
    assert worker.engine.store.model_ids_for(HANGUP_ACCOUNT) == []
    # It really was cut short by the caller, not refused before the flow started.
    assert (
        worker.metrics.registry.get_sample_value(
            "voiceauth_calls_total", {"flow": "enroll", "result": "HUNGUP"}
        )
        == 1
    )


async def test_garbage_clients_are_rejected_and_logged_while_calls_go_on(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path, caplog
):
    caplog.set_level(logging.WARNING)
    for port, junk in (
        (worker.transport("asterisk").audiosocket.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        (worker.transport("asterisk").fastagi.port, b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(junk)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the worker closed the connection
        writer.close()
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert any(r.startswith("AudioSocket 127.0.0.1:") for r in rejected), rejected
    assert any(r.startswith("FastAGI 127.0.0.1:") for r in rejected), rejected
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http.port}") as http:
        text = (await http.get("/metrics")).text
    assert 'voiceauth_errors_total{kind="rejected_audiosocket"} 1.0' in text
    assert 'voiceauth_errors_total{kind="rejected_fastagi"} 1.0' in text
    await place_call(
        asterisk,
        "100",
        verify_script("8888", audio["alice"]),
        caller="after-garbage",
        workdir=tmp_path,
        audio=[audio["alice"]],
    )
    assert (await results.of("after-garbage", timeout=15))["Result"] == "NOT_ENROLLED"


async def test_worker_reconnects_to_a_restarted_asterisk_and_the_next_call_works(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path: Path, caplog
):
    caplog.set_level(logging.WARNING)
    logins = worker.transport("asterisk").ami.connections
    await asyncio.to_thread(asterisk.stop)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http.port}") as http:
        for _ in range(50):  # bounded: the worker notices the lost link at once (TCP reset)
            ready = await http.get("/readyz")
            if ready.status_code == 503:
                break
            await asyncio.sleep(0.1)
        assert ready.status_code == 503 and "AMI" in ready.json()["checks"]["ami"], ready.text
        await asyncio.to_thread(asterisk.start)
        for _ in range(100):
            ready = await http.get("/readyz")
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert ready.status_code == 200, ready.text
    assert worker.transport("asterisk").ami.connections == logins + 1
    assert any("connection lost" in r.getMessage() for r in caplog.records)
    await place_call(
        asterisk,
        "100",
        verify_script(ACCOUNT, audio["alice_restart"]),
        caller="alice-after-restart",
        workdir=tmp_path,
        audio=[audio["alice_restart"]],
    )
    assert (await results.of("alice-after-restart", timeout=20))["Result"] == "PASS"
