"""Attack: talk to the worker's Twilio endpoints without being Twilio, or stream like no phone call does.

The Media Streams WebSocket carries no signature of its own: before, anyone
who found the URL could have streamed a call. Now only a stream announced by
a validated webhook (a single-use token for that call) is served, its audio
is read at real-time pace and bounded like every other line's, and a stream
that breaks the wire format is closed alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ivr.call import CallSession, FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from scripts.lab.twilio_caller import SILENCE, TwilioSimulator, sid
from tests.fakes.mailbox import free_port
from tests.test_service_worker import BandEnergyEmbedder
from voiceprints.engine import VoiceprintEngine
from voiceprints.store.sql import open_store

TOKEN = "attack-test-auth-token"


class Listener:
    """A flow that only listens (up to ``listen_s``) and says how much audio it got."""

    def __init__(self, listen_s: float = 1.0) -> None:
        self.listen_s = listen_s
        self.heard: dict[str, float] = {}
        self.accepted: dict[str, float] = {}

    async def __call__(self, call: CallSession) -> FlowResult:
        speech = await CallIO(call).listen(want_speech_s=1000.0, deadline_s=self.listen_s)
        self.heard[call.info.call_id] = speech.clip.duration_s
        self.accepted[call.info.call_id] = getattr(call, "audio_bytes", 0) / 8000
        return FlowResult(Result.PASS, "4711", 0.9, "listened")


@pytest.fixture
async def served(tmp_path: Path, monkeypatch):
    """A worker with Twilio on loopback around a flow that listens; ``served(**twilio_settings)``."""
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    running: list[tuple[VoiceAuthService, VoiceprintEngine, TwilioSimulator]] = []

    async def start(listen_s: float = 1.0, max_call_s: float = 900.0, **twilio):  # type: ignore[no-untyped-def]
        port = free_port()
        settings = Settings(
            data_dir=tmp_path, ami={"enabled": False}, audiosocket={"port": 0}, fastagi={"enabled": False},
            http={"port": port}, prompts={"generated_dir": tmp_path / "prompts"},
            service={"warm_up": False, "max_call_s": max_call_s, "shutdown_grace_s": 1},
            twilio={"auth_token": TOKEN, "public_url": f"http://127.0.0.1:{port}",
                    "result_url": "https://ivr.example/next", "start_timeout_s": 1.0, **twilio})
        engine = VoiceprintEngine(BandEnergyEmbedder(), open_store(settings.core()), settings.core())
        flow = Listener(listen_s)
        service = VoiceAuthService(settings, engine=engine, flows={"verify": flow}, build_prompts=False)
        await service.start()
        sim = TwilioSimulator(f"http://127.0.0.1:{port}", TOKEN)
        running.append((service, engine, sim))
        return service, sim, flow

    yield start
    for service, engine, sim in running:
        await sim.aclose()
        await service.stop(grace_s=1)
        engine.close()


async def test_a_webhook_with_a_forged_or_missing_signature_is_refused(served):
    service, sim, _ = await served()
    params = sim.call_params(sid("CA"), "+15551230001", "+15557654321")
    for path in ("/twilio/voice?flow=verify", "/twilio/continue", "/twilio/status"):
        assert (await sim.post(path, params, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")).status_code == 403
        assert (await sim.post(path, params, signature="")).status_code == 403
    # Signed for another URL (a replay against this path) is forged too.
    other = TwilioSimulator(sim.base_url + "/elsewhere", TOKEN)
    wrong = other._validator.compute_signature(sim.base_url + "/twilio/other", params)
    assert (await sim.post("/twilio/voice?flow=verify", params, signature=wrong)).status_code == 403
    await other.aclose()
    twilio = service.transport("twilio")
    assert len(twilio.tokens) == 0 and twilio.forged_requests == 7


async def test_a_stream_nobody_announced_is_closed_before_any_flow_runs(served):
    service, sim, flow = await served()
    real = await sim.announce()
    for parameters in ({"token": "made-up"}, {}):
        async with sim.stream(real, parameters=parameters) as stream:
            assert await stream.closed(5) == 1008
    assert flow.heard == {} and service.transport("twilio").refused_streams == 2


async def test_a_stream_token_works_once_and_only_for_its_own_call(served):
    service, sim, flow = await served(listen_s=0.5)
    announced = await sim.announce()
    other_call = type(announced)(sid("CA"), announced.stream_url, announced.action_url, announced.parameters)
    async with sim.stream(other_call) as stolen:  # the token of one call, in another call's stream
        assert await stolen.closed(5) == 1008
    announced = await sim.announce()
    async with sim.stream(announced) as first:
        assert await first.closed(10) == 1000  # served: the flow ran and finished
    async with sim.stream(announced) as again:
        assert await again.closed(5) == 1008
    assert list(flow.heard) == [announced.call_sid]


async def test_an_expired_stream_token_is_refused(served):
    _, sim, flow = await served(stream_token_ttl_s=0.2)
    announced = await sim.announce()
    await asyncio.sleep(0.4)
    async with sim.stream(announced) as late:
        assert await late.closed(5) == 1008
    assert flow.heard == {}


async def test_malformed_oversized_and_startless_streams_are_closed_without_harming_a_call_in_progress(served):
    service, sim, flow = await served(listen_s=3.0)
    genuine = await sim.announce(caller="+15551230002")

    async def real_call() -> int | None:
        async with sim.stream(genuine) as stream:
            for _ in range(100):
                await stream.media(SILENCE)
                await asyncio.sleep(0.02)
            return await stream.closed(10)

    async def broken(payload: str) -> int | None:
        async with sim.stream(await sim.announce()) as stream:
            await stream.ws.send(payload)
            return await stream.closed(5)

    async def never_starts() -> int | None:
        async with sim.stream(await sim.announce(), send_start=False) as stream:
            return await stream.closed(5)

    huge = "x" * (128 * 1024)
    outcomes = await asyncio.gather(
        real_call(), broken("{this is not json"), broken(json.dumps({"event": "media", "media": {
            "track": "inbound", "payload": "A" * 8000}})), broken(huge), never_starts())
    assert outcomes[0] == 1000 and flow.heard[genuine.call_sid] >= 1.9
    assert outcomes[1] == 1007  # invalid payload
    assert outcomes[2] == 1009 and outcomes[3] == 1009  # message too big
    assert outcomes[4] == 1008
    assert service.transport("twilio").active_streams == 0


async def test_a_stream_ten_times_faster_than_real_time_is_read_at_real_time(served):
    """8 s of wall time flooded at 10x: the flow gets ~10 s of audio (8 + the 2 s burst), not ~80 s."""
    _, sim, flow = await served(listen_s=8.0)
    announced = await sim.announce()
    async with sim.stream(announced) as stream:
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        while loop.time() - started < 9 and not flow.heard:
            for _ in range(10):
                await stream.media(SILENCE)
            sent += 10
            await asyncio.sleep(0.02)
        await stream.closed(10)
    assert sent * 0.02 > 40, "the flood really was far faster than real time"
    assert flow.accepted[announced.call_sid] <= 8.0 + 2.5, flow.accepted


async def test_a_call_longer_than_the_limit_is_ended(served):
    from websockets.exceptions import ConnectionClosed

    service, sim, flow = await served(listen_s=30.0, max_call_s=1.0)
    announced = await sim.announce()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with sim.stream(announced) as stream:
        try:
            for _ in range(250):  # 5 s of real-time audio, five times the limit
                await stream.media(SILENCE)
                await asyncio.sleep(0.02)
        except ConnectionClosed:
            pass
        code = await stream.closed(5)
    assert code == 1008 and loop.time() - started < 4.0
    assert flow.heard == {}  # the flow saw the hang-up long before its 30 s of listening
    assert service.transport("twilio").active_streams == 0


async def test_streams_beyond_max_calls_are_refused(served):
    service, sim, _ = await served(listen_s=3.0, max_calls=1)
    async with sim.stream(await sim.announce()) as first:
        await asyncio.sleep(0.3)
        from websockets.exceptions import InvalidStatus

        with pytest.raises(InvalidStatus):
            async with sim.stream(await sim.announce()):
                pass
        assert await first.closed(10) == 1000
    assert service.transport("twilio").refused_streams == 1
