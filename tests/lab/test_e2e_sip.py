"""The SIP endpoint transport (pyVoIP) through a real Asterisk 22: registrar, PBX and the caller's side.

The worker's SIP endpoint registers to the lab Asterisk as ``voiceauth-sip``
(digest auth). sipp calls the lab's ``8X`` extensions; the dialplan dials the
endpoint with that number (routes: ``81`` verify, digits after it the
account), then reads the result back with ``CURL()`` from the worker's
``GET /calls/{id}/result`` and reports it in a ``VoiceAuthResult`` UserEvent,
exactly as docs/sip.md tells a PBX admin. The result also reaches a webhook
receiver in this module, which checks its signature.

Speakers: espeak-ng ``alice`` enrols by phone through the endpoint (route
``82``: PIN, consent, speech); ``frank`` is the impostor claiming her account.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from ivr.prompts.catalog import PROMPTS
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from ivr.transports.sip.webhook import verify
from scripts.lab.asterisk import Lab
from ivr.transports.asterisk.ami import AmiClient
from scripts.lab.callers import (DialplanResults, await_text, keys, pause, place_call, quiet, speak,
                                 speech_file)
from tests.flow_kit import VOICE_ALONE_WITHOUT_TEMPLATES
from tests.fakes.mailbox import running_mailbox
from tests.lab.test_e2e_calls import GENERATED_PROMPTS, write_tone
from tests.lab.test_e2e_fallback import next_code
from tests.speech import SENTENCES, SPEAKERS, synth
from voiceprints.audio.telephone import telephone_channel

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT, PIN = "4711", "1234"
# Has an e-mail address: a voice that is not enough steps up to a one-time code (tests/lab/test_e2e_fallback.py).
OTP_ACCOUNT, OTP_EMAIL = "6021", "alice.sip@example.com"
SIP_PORT = 5062
WEBHOOK_SECRET = "lab-webhook-secret"


class WebhookReceiver:
    """A tiny HTTP receiver on loopback: answers 503 to a delivery's first attempt, 200 afterwards."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/voiceauth"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
            delivery = headers.get("x-voiceauth-delivery", "")
            first = not any(h.get("x-voiceauth-delivery") == delivery for h, _ in self.requests)
            self.requests.append((headers, body))
            status = "503 Service Unavailable" if first else "200 OK"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    def deliveries(self, call_id: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.requests if h.get("x-voiceauth-delivery") == call_id]

    async def wait_for(self, call_id: str, count: int, timeout: float) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries(call_id)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return self.deliveries(call_id)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("sip-callers")
    cache = tmp_path_factory.mktemp("sip-speech")

    def said(name: str, texts: tuple[str, ...], codec: str = "ulaw", file: str = "") -> Path:
        clips = [synth(SPEAKERS[name], text, 8000, cache).samples for text in texts]
        return speech_file(work / (file or f"{name}.{codec}"), clips, codec=codec)

    sentences = [synth(SPEAKERS["alice"], SENTENCES[i], 8000, cache).samples for i in range(6)]
    return {
        "alice_enrol": speech_file(work / "alice_enrol.ulaw", sentences),
        # Every call of alice says something new: playing one recording twice is a replay (refused).
        "alice": said("alice", (
            "Hello, I am calling because my debit card was declined at the supermarket this morning.",
            "I checked my balance online and there should be enough money in the account.")),
        "alice_alaw": said("alice", (
            "Good evening, I need to report that I lost my wallet on the bus this afternoon.",
            "Please block the cards that were inside it and send me replacements."), codec="alaw"),
        "alice_garbage": said("alice", (
            "I would like to move some money from my savings to my current account today.",
            "It is for the rent, which is due at the end of this week."), file="alice_garbage.ulaw"),
        "alice_restart": said("alice", (
            "Could you tell me whether the transfer I made yesterday evening has arrived?",
            "It was sent to my daughter for her university fees."), file="alice_restart.ulaw"),
        "frank": said("frank", tuple(SENTENCES[4:8])),
        # "Yes." every 2.5 s (the file loops): well under the 3 s of speech a decision needs.
        "short": speech_file(work / "short.ulaw", [synth(SPEAKERS["alice"], "yes", 8000, cache).samples], gap_s=2.0),
        "alice_hangup": said("alice", ("Hello, this call will end before I finish speaking.",),
                             file="alice_hangup.ulaw"),
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def webhook():
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture(scope="module")
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


@pytest.fixture(scope="module")
def settings(asterisk: Lab, webhook: WebhookReceiver, mailbox, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("sip-worker")
    override = data / "admin-prompts"
    for name in PROMPTS:
        write_tone(override / "en" / f"{name}.wav")
    return Settings(
        data_dir=data,
        ami={"enabled": False}, audiosocket={"port": 0}, fastagi={"enabled": False},
        http={"port": asterisk.sip_results_port},
        prompts={"generated_dir": GENERATED_PROMPTS, "override_dir": override},
        service={"shutdown_grace_s": 5},
        # A too-short answer is INCONCLUSIVE at the listening deadline: 8 s keeps the call short.
        flows={"verify_listen_deadline_s": 8.0},
        otp={"smtp": {"host": "127.0.0.1", "port": mailbox[1], "from_address": "codes@bank.example",
                      "starttls": False, "timeout_s": 5.0}},
        policy={"overrides": VOICE_ALONE_WITHOUT_TEMPLATES},
        sip={"enabled": True, "registrar": "127.0.0.1", "registrar_port": asterisk.sip_port,
             "username": asterisk.sip_user, "password": asterisk.sip_secret, "port": SIP_PORT,
             "routes": {"81": "verify", "82": "enroll"}, "register_expires_s": 10,
             "webhook_url": webhook.url, "webhook_secret": WEBHOOK_SECRET},
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    from ivr.db.customers import CustomerDirectory
    from ivr.db.engine import open_database
    from ivr.knowledge.service import KnowledgeService
    from ivr.secrets import load_server_secrets

    # As `ivr customers import` would: the PIN hashed with the server's pepper.
    pepper = load_server_secrets(settings.secrets, settings.data_dir).knowledge_pepper
    db = open_database(settings.core().database_url())
    KnowledgeService(db, pepper=pepper).set_answers(CustomerDirectory(db).add(ACCOUNT), {"pin": PIN})
    CustomerDirectory(db).add(OTP_ACCOUNT, email=OTP_EMAIL, preferred_otp_channel="email", language="en")
    db.dispose()
    service = VoiceAuthService(settings)
    await service.start()
    try:
        cache = tmp_path_factory.mktemp("sip-otp-speech")
        clips = [telephone_channel(synth(SPEAKERS["alice"], SENTENCES[i], 16000, cache)) for i in range(3)]
        await service.engine.aenroll(OTP_ACCOUNT, clips)
        yield service
    finally:
        await service.stop(grace_s=1)


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def enrolled(asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path_factory):
    """Alice enrols by phone: route 82 with her account, then PIN, consent and speech."""
    work = tmp_path_factory.mktemp("sip-enrol")
    steps = [pause(1500), keys(f"{PIN}#"), pause(2500), keys("1"), pause(1500), speak(audio["alice_enrol"])]
    await place_call(asterisk, f"82{ACCOUNT}", steps, caller="sip-alice-enrol", workdir=work,
                     audio=[audio["alice_enrol"]], wait_ms=90000, timeout=120)
    return await results.of("sip-alice-enrol", timeout=20)


def verify_script(speech: Path) -> list:
    return [pause(1500), speak(speech)]


async def call(asterisk: Lab, caller: str, speech: Path, workdir: Path, *, exten: str = f"81{ACCOUNT}",
               codec: str = "ulaw", steps: list | None = None, ending: str = "wait_bye"):
    return await place_call(asterisk, exten, steps or verify_script(speech), caller=caller, workdir=workdir,
                            audio=[speech], wait_ms=60000, codec=codec, ending=ending)


def sip_transport(worker: VoiceAuthService):
    return worker.transport("sip")


async def test_endpoint_registers_to_the_pbx_with_digest_credentials(asterisk: Lab, worker: VoiceAuthService):
    contacts = await asyncio.to_thread(asterisk.rx, "pjsip show contacts")
    assert f"voiceauth-sip/sip:voiceauth-sip@127.0.0.1:{SIP_PORT}" in contacts, contacts
    assert sip_transport(worker).health() == {"sip": None}


async def test_enrolment_by_phone_through_the_endpoint_stores_a_voiceprint(enrolled, worker: VoiceAuthService):
    assert enrolled["Result"] == "ENROLLED", enrolled
    assert enrolled["Account"] == ACCOUNT
    assert worker.engine.store.get_voiceprint(ACCOUNT, worker.engine.model_id) is not None


async def test_genuine_caller_passes_and_the_pbx_reads_the_result_with_curl(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, webhook: WebhookReceiver, audio,
    tmp_path: Path,
):
    sipp = await call(asterisk, "sip-alice", audio["alice"], tmp_path)
    result = await results.of("sip-alice", timeout=20)
    assert result["Flow"] == "sip"
    assert result["Result"] == "PASS", (result, sipp.stderr[-500:])
    assert result["Account"] == ACCOUNT
    assert float(result["Score"]) >= 0.8
    record = sip_transport(worker).call_records[result["Uuid"]]
    assert record[0] == "PCMU" and record[1] == frozenset({"PCMU"}), record
    # The webhook: refused once (503), retried with the same delivery id, signed both times.
    deliveries = await webhook.wait_for(result["Uuid"], 2, timeout=10)
    assert len(deliveries) == 2, webhook.requests
    for headers, body in deliveries:
        assert verify(WEBHOOK_SECRET.encode(), headers["x-voiceauth-signature"], body)
        assert not verify(b"another secret", headers["x-voiceauth-signature"], body)
        assert json.loads(body)["VOICEAUTH_RESULT"] == "PASS"
        assert headers["idempotency-key"] == result["Uuid"]


async def test_impostor_claiming_the_account_does_not_pass(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path: Path
):
    await call(asterisk, "sip-frank", audio["frank"], tmp_path)
    result = await results.of("sip-frank", timeout=20)
    assert result["Result"] in ("FAIL", "INCONCLUSIVE"), result
    assert result["Result"] != "PASS"


async def test_alaw_caller_is_heard_as_alaw_and_passes(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path: Path
):
    await call(asterisk, "sip-alice-alaw", audio["alice_alaw"], tmp_path, codec="alaw")
    result = await results.of("sip-alice-alaw", timeout=20)
    record = sip_transport(worker).call_records[result["Uuid"]]
    assert record[0] == "PCMA" and record[1] == frozenset({"PCMA"}), record
    assert result["Result"] == "PASS", result


async def test_caller_hanging_up_mid_flow_ends_the_call_without_a_result(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path
):
    before = worker.metrics.registry.get_sample_value("voiceauth_calls_total", {"flow": "verify", "result": "HUNGUP"})
    await call(asterisk, "sip-hangs-up", audio["alice_hangup"], tmp_path, ending="hang_up",
               steps=[pause(1500), speak(audio["alice_hangup"]), pause(1500)])
    for _ in range(50):  # bounded: the BYE reaches the endpoint within a second
        if sip_transport(worker).active_calls == 0 and worker.runner.active == {}:
            break
        await asyncio.sleep(0.1)
    assert sip_transport(worker).active_calls == 0
    assert worker.runner.active == {}
    after = worker.metrics.registry.get_sample_value("voiceauth_calls_total", {"flow": "verify", "result": "HUNGUP"})
    assert (after or 0) == (before or 0) + 1


async def test_garbage_to_the_sip_and_rtp_ports_is_ignored_while_a_call_goes_on(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path: Path
):
    junk = [b"", b"\x00" * 4, b"\xff" * 1500, b"GET / HTTP/1.1\r\n\r\n", b"INVITE\r\n\r\n",
            b"INVITE sip:81 SIP/2.0\r\nVia: x\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n", np.random.default_rng(1).bytes(900),
            b"\x80\x65" + bytes(10) + b"\xff\x00\x00\x00",  # an RFC 4733 event code 255 (kills pyVoIP's own reader)
            b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nabc"]

    async def spray(stop: asyncio.Event) -> int:
        """Junk at the SIP port and, once the call is up, at its RTP port, until the call ends."""
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(600):  # bounded: 30 s at most
                if stop.is_set():
                    break
                for port in [SIP_PORT, *sip_transport(worker).media_ports()]:
                    sock.sendto(junk[sent % len(junk)], ("127.0.0.1", port))
                    sent += 1
                await asyncio.sleep(0.05)
        return sent

    stop = asyncio.Event()
    sprayer = asyncio.create_task(spray(stop))
    try:
        await call(asterisk, "sip-alice-garbage", audio["alice_garbage"], tmp_path)
    finally:
        stop.set()
        sent = await sprayer
    assert sent > 100
    result = await results.of("sip-alice-garbage", timeout=20)
    assert result["Result"] == "PASS", result
    codec, heard, garbage = sip_transport(worker).call_records[result["Uuid"]]
    assert garbage > 20, "the junk never reached the call's RTP port"
    assert heard == frozenset({"PCMU"})
    assert sip_transport(worker).health() == {"sip": None}


async def text_the_caller(ami: AmiClient, caller: str, text: str) -> None:
    """SIP MESSAGE to sipp's own channel (the leg to the endpoint carries the same caller ID)."""
    for _ in range(50):  # bounded: 10 s
        for channel in await ami.action_list("CoreShowChannels", timeout=5):
            if channel.get("CallerIDNum") == caller and channel.get("Channel", "").startswith("PJSIP/caller-"):
                await ami.action("SendText", {"Channel": channel["Channel"], "Message": text})
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no channel of caller {caller}")


async def test_a_number_without_a_route_is_refused_busy_and_the_pbx_carries_on(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path
):
    refused = sip_transport(worker).refused_calls
    sipp = await call(asterisk, "sip-no-route", audio["frank"], tmp_path, exten="894711")
    result = await results.of("sip-no-route", timeout=20)
    assert result["Result"] == "", result  # no result to read: the dialplan routes on DIALSTATUS (BUSY)
    assert "486 Busy Here" in sipp.stdout + sipp.stderr  # the lab dialplan just hangs up with the cause
    assert sip_transport(worker).refused_calls == refused + 1
    assert sip_transport(worker).health() == {"sip": None}


async def test_too_short_an_answer_steps_up_to_the_emailed_code_typed_on_the_keypad(
    asterisk: Lab, worker: VoiceAuthService, ami: AmiClient, results: DialplanResults, mailbox, audio, tmp_path: Path
):
    """The flow steps up to a one-time code; the caller reads it from the e-mail and types it (RFC 4733)."""
    box, _ = mailbox
    already = len(box.messages)
    script = [pause(1500), speak(audio["short"]), await_text(40000), quiet(), pause(300), keys("[$code]#")]
    sipp = asyncio.create_task(place_call(asterisk, f"81{OTP_ACCOUNT}", script, caller="sip-alice-otp",
                                          workdir=tmp_path, audio=[audio["short"]], wait_ms=90000, timeout=120))
    code = await next_code(box, already, sipp)
    await text_the_caller(ami, "sip-alice-otp", code)
    await sipp
    result = await results.of("sip-alice-otp", timeout=20)
    assert result["Result"] == "PASS", result
    assert result["Method"] == "otp"
    assert box.envelopes[-1][1] == [OTP_EMAIL]


async def test_twenty_concurrent_calls_each_get_their_result(
    asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path
):
    """20 callers at once, each claiming an account of its own (no voiceprint: NOT_ENROLLED, read back by CURL)."""
    callers = {f"sip-many-{i:02d}": f"81{9100 + i}" for i in range(20)}
    started = time.monotonic()
    calls = await asyncio.gather(*(
        place_call(asterisk, exten, verify_script(audio["frank"]), caller=caller, workdir=tmp_path,
                   audio=[audio["frank"]], wait_ms=60000)
        for caller, exten in callers.items()))
    elapsed = time.monotonic() - started
    got = {caller: await results.of(caller, timeout=30) for caller in callers}
    assert [c.returncode for c in calls] == [0] * 20, [c.stderr[-300:] for c in calls if c.returncode]
    assert {r["Result"] for r in got.values()} == {"NOT_ENROLLED"}, got
    assert {r["Account"] for r in got.values()} == {exten[2:] for exten in callers.values()}
    assert len({r["Uuid"] for r in got.values()}) == 20
    # Each call waits out the flow's keypad timeouts (no voiceprint, then no code typed): ~50 s alone.
    assert elapsed < 120, f"20 concurrent calls took {elapsed:.1f} s"
    print(f"20 concurrent SIP calls: {elapsed:.1f} s wall")


async def test_endpoint_registers_again_after_asterisk_restarts_and_the_next_call_works(
    asterisk: Lab, worker: VoiceAuthService, enrolled, results: DialplanResults, audio, tmp_path: Path
):
    """Asterisk stays down until a renewal fails: /readyz says the endpoint is not registered, and once
    Asterisk is back the endpoint registers again (pyVoIP's own retry, or after three failures a new
    user agent from the transport's supervisor)."""
    await asyncio.to_thread(asterisk.stop)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http.port}") as http:
        for _ in range(80):  # bounded: 40 s; renewals every 5 s, each failing at once (ICMP refused)
            ready = await http.get("/readyz")
            if ready.status_code == 503 and ready.json()["checks"].get("sip"):
                break
            await asyncio.sleep(0.5)
        assert ready.status_code == 503 and "not registered" in ready.json()["checks"]["sip"], ready.text
        await asyncio.to_thread(asterisk.start)
        restarted = time.monotonic()
        for _ in range(120):  # bounded: 60 s (the supervisor's backoff is at most 30 s)
            phone = sip_transport(worker).phone()
            if phone is not None and phone.registered and (phone.registered_at or 0) > restarted:
                break
            await asyncio.sleep(0.5)
        assert (await http.get("/readyz")).status_code == 200
    phone = sip_transport(worker).phone()
    assert phone is not None and (phone.registered_at or 0) > restarted, "no REGISTER accepted after the restart"
    contacts = await asyncio.to_thread(asterisk.rx, "pjsip show contacts")
    assert f"voiceauth-sip@127.0.0.1:{SIP_PORT}" in contacts, contacts
    await call(asterisk, "sip-alice-restart", audio["alice_restart"], tmp_path)
    result = await results.of("sip-alice-restart", timeout=30)  # AMI reconnects to the restarted Asterisk
    assert result["Result"] == "PASS", result

