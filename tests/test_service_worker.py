"""The worker process around its calls: settings, health and readiness, metrics, start and stop.

The engine is real (VAD, encrypted SQLite store) with a tiny deterministic
embedder standing in for the neural model, so these tests stay fast; the
real model answers real calls in tests/lab/test_e2e_*.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from ivr.call import FlowResult, Result
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from scripts.lab.twilio_caller import TwilioSimulator
from tests.fakes.mailbox import free_port
from voiceprints.audio.clip import AudioClip
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import EngineBusyError
from voiceprints.store.sql import open_store


class BandEnergyEmbedder:
    """Log energy in 32 frequency bands, L2-normalised: deterministic and instant."""

    model_id = "test/band-energy/1"
    dim = 32

    def embed(self, clip: AudioClip) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(clip.samples, n=2048)) + 1e-6
        bands = np.log(np.array([b.sum() for b in np.array_split(spectrum, self.dim)], dtype=np.float32))
        return (bands / np.linalg.norm(bands)).astype(np.float32)

    def embed_batch(self, clips) -> np.ndarray:
        return np.stack([self.embed(c) for c in clips])


async def passes(call) -> FlowResult:
    return FlowResult(Result.PASS, "4711", 0.9)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch) -> Settings:
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    return Settings(
        data_dir=tmp_path,
        ami={"port": closed_port(), "secret": "x", "backoff_max_s": 0.5},
        audiosocket={"port": 0},
        fastagi={"port": 0},
        http={"port": 0},
        prompts={"generated_dir": tmp_path / "prompts"},
    )


@pytest.fixture
def engine(settings: Settings):
    core = settings.core()
    engine = VoiceprintEngine(BandEnergyEmbedder(), open_store(core), core)
    yield engine
    engine.close()


def service_for(settings: Settings, engine: VoiceprintEngine) -> VoiceAuthService:
    return VoiceAuthService(settings, engine=engine, flows={"verify": passes}, build_prompts=False)


def test_every_listener_binds_to_loopback_unless_configured_otherwise():
    s = Settings()
    assert {s.audiosocket.bind, s.fastagi.bind, s.http.bind, s.ami.host} == {"127.0.0.1"}
    assert (s.audiosocket.port, s.fastagi.port, s.ami.port) == (9092, 4573, 5038)


def test_settings_come_from_voiceauth_environment_variables_and_hide_the_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICEAUTH_AUDIOSOCKET__BIND", "0.0.0.0")
    monkeypatch.setenv("VOICEAUTH_AUDIOSOCKET__MAX_CALLS", "30")
    monkeypatch.setenv("VOICEAUTH_AMI__HOST", "10.0.0.7")
    monkeypatch.setenv("VOICEAUTH_AMI__SECRET", "s3cr3t")
    monkeypatch.setenv("VOICEAUTH_PROMPTS__OVERRIDE_DIR", str(tmp_path))
    monkeypatch.setenv("VOICEAUTH_SERVICE__SHUTDOWN_GRACE_S", "90")
    s = Settings()
    assert (s.audiosocket.bind, s.audiosocket.max_calls, s.ami.host) == ("0.0.0.0", 30, "10.0.0.7")
    assert s.ami.secret.get_secret_value() == "s3cr3t" and "s3cr3t" not in repr(s)
    assert s.prompts.override_dir == tmp_path and s.service.shutdown_grace_s == 90


def test_bad_settings_are_refused_with_the_field_named(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("VOICEAUTH_AUDIOSOCKET__PORT", "70000")
    with pytest.raises(ValidationError, match="audiosocket.port"):
        Settings()


async def test_readiness_says_what_is_missing_while_health_says_alive(settings, engine):
    service = service_for(settings, engine)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert "not logged in to AMI" in checks["ami"]
            assert checks["store"] == "ok" and checks["model"] == "ok"
            metrics = (await http.get("/metrics")).text
        for name in (
            "voiceauth_calls_in_progress",
            "voiceauth_decision_latency_seconds",
            "voiceauth_embedding_latency_seconds",
            "voiceauth_errors_total",
        ):
            assert name in metrics
    finally:
        await service.stop()


async def test_ready_without_ami_when_it_is_switched_off(settings, engine):
    settings.ami.enabled = False
    service = service_for(settings, engine)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "ami" not in ready.json()["checks"]
    finally:
        await service.stop()


async def test_readiness_fails_after_shutdown_starts(settings, engine):
    settings.ami.enabled = False
    service = service_for(settings, engine)
    await service.start()
    service.runner.accepting = False
    try:
        checks = await service.readiness()
        assert checks["accepting_calls"] == "shutting down"
    finally:
        await service.stop()


async def test_stop_releases_every_port(settings, engine):
    service = service_for(settings, engine)
    await service.start()
    ports = [service.transport("asterisk").audiosocket.port, service.transport("asterisk").fastagi.port, service.http.port]
    await service.stop()
    for port in ports:
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)


async def test_a_busy_http_port_fails_start_with_the_address_and_releases_the_rest(settings, engine):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings.http.port = busy.getsockname()[1]
        service = service_for(settings, engine)
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{settings.http.port}"):
            await service.start()
        audiosocket_port = service.transport("asterisk").audiosocket.port
        await service.stop()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", audiosocket_port), 2)


async def test_a_full_inference_queue_makes_the_worker_not_ready_and_counts_busy(settings):
    settings.ami.enabled = False
    settings.model.max_workers, settings.model.max_waiting = 1, 0
    core = settings.core()
    engine = VoiceprintEngine(BandEnergyEmbedder(), open_store(core), core)
    service = service_for(settings, engine)
    release = asyncio.Event()
    await service.start()
    try:
        loop = asyncio.get_running_loop()
        holding = asyncio.create_task(engine.run(lambda: asyncio.run_coroutine_threadsafe(
            release.wait(), loop).result(30)))
        for _ in range(1000):  # bounded: the thread picks it up at once
            if engine.inference.saturated:
                break
            await asyncio.sleep(0.005)
        clip = AudioClip(np.zeros(8000, dtype=np.float32), 8000)
        with pytest.raises(EngineBusyError):
            await engine.averify("4711", clip)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["inference"].startswith("busy")
            assert 'voiceauth_errors_total{kind="busy"} 1.0' in (await http.get("/metrics")).text
            release.set()
            await asyncio.wait_for(holding, 30)
            assert (await http.get("/readyz")).status_code == 200
    finally:
        release.set()
        await service.stop()
        engine.close()


@pytest.mark.parametrize("bind, advertise, expected", [
    ("127.0.0.1", "", "127.0.0.1:{port}"),
    ("0.0.0.0", "", "127.0.0.1:{port}"),  # wildcard: the address Asterisk reached the FastAGI port at
    ("0.0.0.0", "10.0.0.21:9092", "10.0.0.21:9092"),
])
async def test_a_fastagi_calls_audio_leg_is_asked_back_to_this_worker_whatever_the_dialplan_names(
        settings, engine, bind, advertise, expected):
    """With workers behind one address, a leg sent to the dialplan's (shared) address could land on another."""
    settings.ami.enabled = False
    settings.audiosocket.bind, settings.audiosocket.advertise = bind, advertise
    service = service_for(settings, engine)
    await service.start()
    try:
        asterisk = service.transport("asterisk")
        reader, writer = await asyncio.open_connection("127.0.0.1", asterisk.fastagi.port)
        writer.write(b"agi_network_script: verify\nagi_channel: PJSIP/x-00000001\n"
                     b"agi_arg_1: uuid=6f0f3cc4-8d7e-4a8e-9e47-1d2b0f7a9c11\nagi_arg_2: audiosocket=10.9.9.9:9092\n\n")
        await writer.drain()
        command = (await asyncio.wait_for(reader.readline(), 5)).decode()
        want = expected.format(port=asterisk.audiosocket.port)
        assert command.startswith("EXEC AudioSocket") and f",{want}" in command, command
        writer.close()
    finally:
        await service.stop(grace_s=1)


# -- which transports run ------------------------------------------------------------------------


def twilio_only_settings(tmp_path: Path) -> Settings:
    """docs/twilio.md's Twilio-only worker, read from the environment as ``ivr serve`` reads it."""
    port = free_port()
    env = {"VOICEAUTH_DATA_DIR": str(tmp_path), "VOICEAUTH_HTTP__PORT": str(port),
           "VOICEAUTH_AMI__ENABLED": "false", "VOICEAUTH_AUDIOSOCKET__ENABLED": "false",
           "VOICEAUTH_FASTAGI__ENABLED": "false", "VOICEAUTH_TWILIO__AUTH_TOKEN": TWILIO_TOKEN,
           "VOICEAUTH_TWILIO__PUBLIC_URL": f"http://127.0.0.1:{port}",
           "VOICEAUTH_TWILIO__RESULT_URL": "https://ivr.example/next",
           "VOICEAUTH_PROMPTS__GENERATED_DIR": str(tmp_path / "prompts"), "VOICEAUTH_SERVICE__WARM_UP": "false"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        return Settings()


async def test_a_twilio_only_worker_is_ready_and_binds_no_asterisk_port(tmp_path, engine):
    """/readyz said 503 'ami: not logged in to AMI' on a Twilio-only worker: the balancer took it out."""
    settings = twilio_only_settings(tmp_path)
    audiosocket, fastagi = free_port(), free_port()
    settings.audiosocket.port, settings.fastagi.port = audiosocket, fastagi
    service = service_for(settings, engine)
    await service.start()
    try:
        assert [t.name for t in service.transports] == ["twilio"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "ami" not in ready.json()["checks"]
        for port in (audiosocket, fastagi):  # switched off: nothing listens there
            with pytest.raises(OSError):
                await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    finally:
        await service.stop()


async def test_with_ami_enabled_but_unreachable_a_twilio_worker_is_not_ready(tmp_path, engine):
    settings = twilio_only_settings(tmp_path)
    settings.ami.enabled, settings.audiosocket.enabled, settings.audiosocket.port = True, True, 0
    settings.ami.port, settings.ami.backoff_max_s = closed_port(), 0.5
    service = service_for(settings, engine)
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http.port}") as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 503 and "not logged in to AMI" in ready.json()["checks"]["ami"]
    finally:
        await service.stop()


async def test_a_disabled_audiosocket_listener_does_not_bind_its_port(settings, engine):
    settings.ami.enabled = settings.audiosocket.enabled = settings.fastagi.enabled = False
    settings.audiosocket.port = free_port()
    service = service_for(settings, engine)
    await service.start()
    try:
        assert all(t.name != "asterisk" for t in service.transports)
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", settings.audiosocket.port), 2)
    finally:
        await service.stop()


@pytest.mark.parametrize("switch, why", [
    ({"fastagi": True}, "VOICEAUTH_FASTAGI__ENABLED=true needs VOICEAUTH_AUDIOSOCKET__ENABLED=true"),
    ({"ami": True}, "VOICEAUTH_AMI__ENABLED=true needs VOICEAUTH_AUDIOSOCKET__ENABLED=true"),
])
async def test_asterisk_parts_that_cannot_work_without_audiosocket_are_refused_naming_the_fix(
        settings, engine, switch, why):
    settings.ami.enabled = settings.audiosocket.enabled = settings.fastagi.enabled = False
    for group, on in switch.items():
        getattr(settings, group).enabled = on
    service = service_for(settings, engine)
    with pytest.raises(ValueError, match=why):
        await service.start()
    await service.stop()


def test_twilio_is_switched_off_with_its_enabled_setting_even_when_configured(monkeypatch):
    monkeypatch.setenv("VOICEAUTH_TWILIO__AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("VOICEAUTH_TWILIO__PUBLIC_URL", "https://voice.example.com")
    monkeypatch.setenv("VOICEAUTH_TWILIO__RESULT_URL", "https://ivr.example/next")
    assert Settings().twilio.enabled is True  # today: on when configured
    monkeypatch.setenv("VOICEAUTH_TWILIO__ENABLED", "false")
    assert Settings().twilio.enabled is False
    monkeypatch.setenv("VOICEAUTH_TWILIO__ENABLED", "true")
    monkeypatch.delenv("VOICEAUTH_TWILIO__AUTH_TOKEN")
    monkeypatch.delenv("VOICEAUTH_TWILIO__PUBLIC_URL")
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="VOICEAUTH_TWILIO__AUTH_TOKEN"):
        Settings()


# -- Twilio: shutdown --------------------------------------------------------------------------

TWILIO_TOKEN = "worker-test-auth-token"


def twilio_worker_settings(tmp_path: Path, **service) -> Settings:
    """Twilio on a free port (signatures are made over the public URL), Asterisk's listeners off."""
    port = free_port()
    return Settings(
        data_dir=tmp_path, ami={"enabled": False}, audiosocket={"enabled": False}, fastagi={"enabled": False},
        http={"port": port}, prompts={"generated_dir": tmp_path / "prompts"},
        service={"warm_up": False, **service},
        twilio={"auth_token": TWILIO_TOKEN, "public_url": f"http://127.0.0.1:{port}",
                "result_url": "https://ivr.example/next"},
    )


def takes(seconds: float):
    async def flow(call) -> FlowResult:
        await asyncio.sleep(seconds)
        return FlowResult(Result.PASS, "4711", 0.9)

    return flow


async def timed_stop(service: VoiceAuthService, grace_s: float | None = None) -> float:
    started = time.monotonic()
    await service.stop(grace_s)
    return time.monotonic() - started


async def test_an_idle_twilio_worker_stops_at_once_after_a_call_that_never_came_back_for_its_result(
        tmp_path, engine):
    """SIGTERM took 10.2 s: the worker waited for the <Connect> action of a caller who had hung up."""
    settings = twilio_worker_settings(tmp_path, shutdown_grace_s=30)
    service = VoiceAuthService(settings, engine=engine, flows={"verify": passes}, build_prompts=False)
    await service.start()
    sim = TwilioSimulator(f"http://127.0.0.1:{settings.http.port}", TWILIO_TOKEN)
    try:
        announced = await sim.announce()
        async with sim.stream(announced) as stream:
            assert await stream.closed(5) == 1000  # the flow finished, its result kept for the action
        # The caller hung up as the stream closed: Twilio says so, and asks no action URL.
        response = await sim.post("/twilio/status", sim.call_params(announced.call_sid, "+15551230001",
                                                                   "+15557654321", "completed"))
        assert response.status_code == 204
        assert service.runner is not None and not service.runner.active
    finally:
        await sim.aclose()
        took = await timed_stop(service)
    assert took < 2.0, f"an idle worker took {took:.1f} s to stop"


async def test_a_twilio_call_in_progress_at_stop_finishes_and_gets_its_result(tmp_path, engine):
    settings = twilio_worker_settings(tmp_path, shutdown_grace_s=30)
    service = VoiceAuthService(settings, engine=engine, flows={"verify": takes(1.5)}, build_prompts=False)
    await service.start()
    sim = TwilioSimulator(f"http://127.0.0.1:{settings.http.port}", TWILIO_TOKEN)
    try:
        call = asyncio.create_task(sim.call({}))
        for _ in range(500):  # bounded: the stream opens within milliseconds
            if service.runner is not None and service.runner.active:
                break
            await asyncio.sleep(0.01)
        assert service.runner is not None and service.runner.active, "the call did not start"
        took = await timed_stop(service)
        outcome = await asyncio.wait_for(call, 5)
    finally:
        await sim.aclose()
    assert outcome.result is not None and outcome.result["VOICEAUTH_RESULT"] == "PASS"
    assert 1.0 < took < 5.0, f"stop took {took:.1f} s for a call with 1.5 s to go"


async def test_a_twilio_call_longer_than_the_grace_is_cut_with_error_at_the_grace(tmp_path, engine):
    settings = twilio_worker_settings(tmp_path)
    service = VoiceAuthService(settings, engine=engine, flows={"verify": takes(60)}, build_prompts=False)
    await service.start()
    sim = TwilioSimulator(f"http://127.0.0.1:{settings.http.port}", TWILIO_TOKEN)
    try:
        call = asyncio.create_task(sim.call({}))
        for _ in range(500):
            if service.runner is not None and service.runner.active:
                break
            await asyncio.sleep(0.01)
        took = await timed_stop(service, grace_s=1.0)
        outcome = await asyncio.wait_for(call, 5)
    finally:
        await sim.aclose()
    assert outcome.result is not None and outcome.result["VOICEAUTH_RESULT"] == "ERROR"
    assert 0.9 < took < 3.0, f"stop took {took:.1f} s with a 1 s grace"


async def test_at_stop_twilio_waits_only_for_actions_that_can_still_come(tmp_path):
    """Twilio asks the <Connect> action within a second or two of a stream's close: an older result
    whose action never came (caller gone, no status callback) is not waited for; a fresh one is."""
    from ivr.service.metrics import ServiceMetrics
    from ivr.transports.base import TransportEnv
    from ivr.transports.twilio.transport import ACTION_WAIT_S, TwilioTransport

    now = [1000.0]
    env = TransportEnv(settings=twilio_worker_settings(tmp_path, shutdown_grace_s=30), prompts=None,
                       prompt_directories=(), metrics=ServiceMetrics())
    twilio = TwilioTransport(env, clock=lambda: now[0])
    twilio.results.put("CA-stale", FlowResult(Result.PASS, "4711", 0.9), awaiting_action=True)
    now[0] += ACTION_WAIT_S + 1
    await asyncio.wait_for(twilio.close(), 1.0)  # at once: that action is not coming

    twilio = TwilioTransport(env, clock=lambda: now[0])
    twilio.results.put("CA-fresh", FlowResult(Result.PASS, "4711", 0.9), awaiting_action=True)
    closing = asyncio.create_task(twilio.close())
    await asyncio.sleep(0.3)
    assert not closing.done(), "a result kept a moment ago: its action is on its way"
    twilio.results.continued("CA-fresh")
    await asyncio.wait_for(closing, 1.0)
