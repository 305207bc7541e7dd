"""Attack: connect to the worker's AudioSocket / FastAGI ports directly.

Neither protocol authenticates its peer: before, anyone who could reach the
port could stream a call or drive a flow, hold any number of connections,
and stream audio faster than real time into the worker's memory.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid

import pytest

from ivr.flows.callio import CallIO
from ivr.transports.asterisk.audiosocket import AudioSocketServer, AudioSocketSession, encode_frame
from ivr.transports.asterisk.fastagi import FastAgiServer
from ivr.transports.listener import TcpListener

CALL_ID = "0f9c2b66-4b7e-4d1e-9a55-6a3c3c1d2e10"
FRAME = encode_frame(0x10, bytes(320))  # 20 ms of silence


class NoPrompts:
    async def audio(self, name: str, language: str) -> bytes | None:
        return None


async def _ignore(*_args) -> None:  # type: ignore[no-untyped-def]
    return None


async def _closed_without_a_call(port: int, greeting: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(greeting)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return True  # closed before it read what we sent
    finally:
        writer.close()
    return data == b""


async def test_audiosocket_refuses_a_peer_that_is_not_in_the_allowlist():
    calls = []

    async def handler(session: AudioSocketSession) -> None:
        calls.append(session)

    server = AudioSocketServer(handler, prompts=NoPrompts(), on_result=_ignore, port=0, allow_from=["10.20.30.40"])
    async with server:
        assert await _closed_without_a_call(server.port, encode_frame(0x01, uuid.UUID(CALL_ID).bytes) + FRAME)
    assert calls == [] and server.refused_peers == 1


async def test_fastagi_refuses_a_peer_that_is_not_in_the_allowlist():
    ran = []

    async def verify(agi) -> None:  # type: ignore[no-untyped-def]
        ran.append(agi)

    server = FastAgiServer({"verify": verify}, port=0, allow_from=["192.0.2.0/24"])
    async with server:
        assert await _closed_without_a_call(server.port, b"agi_network_script: verify\n\n")
    assert ran == [] and server.refused_peers == 1


def test_by_default_only_loopback_may_connect():
    listener = TcpListener("127.0.0.1", 0)
    assert listener._admit(("127.0.0.1", 5000)) is None and listener._admit(("::1", 5000, 0, 0)) is None
    assert listener._admit(("::ffff:127.0.0.1", 5000, 0, 0)) is None
    assert "not in the allowlist" in (listener._admit(("10.0.0.5", 5000)) or "")
    with pytest.raises(ValueError, match="not an IP address"):
        TcpListener("127.0.0.1", 0, allow_from=["pbx.example.com"])


async def test_one_peer_cannot_hold_more_than_its_share_of_connections():
    started = asyncio.Event()

    async def handler(session: AudioSocketSession) -> None:
        started.set()
        await session.next_event(timeout=10)

    server = AudioSocketServer(handler, prompts=NoPrompts(), on_result=_ignore, port=0, max_per_peer=2)
    async with server:
        held = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(encode_frame(0x01, uuid.uuid4().bytes))
            await writer.drain()
            held.append(writer)
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.2)
        assert await _closed_without_a_call(server.port, encode_frame(0x01, uuid.uuid4().bytes))
        assert server.refused_peers == 1
        for writer in held:
            writer.close()


async def test_a_peer_streaming_ten_times_faster_than_real_time_leaves_memory_bounded():
    """A silent 'caller' floods 8 s of wall time with audio at 10x: the worker holds ~10 s, not ~80 s."""
    listened = asyncio.Event()
    seen = {}

    async def handler(session: AudioSocketSession) -> None:
        io = CallIO(session)
        speech = await io.listen(want_speech_s=100.0, deadline_s=8.0)  # silence: runs to the deadline
        seen["audio_s"] = speech.clip.duration_s
        seen["accepted_s"] = session.audio_bytes / 16000
        listened.set()

    server = AudioSocketServer(handler, prompts=NoPrompts(), on_result=_ignore, port=0)
    tracemalloc.start()
    try:
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(encode_frame(0x01, uuid.UUID(CALL_ID).bytes))
            loop = asyncio.get_running_loop()
            start = loop.time()
            sent = 0
            while not listened.is_set() and loop.time() - start < 12:
                writer.write(FRAME * 10)  # 200 ms of audio ...
                sent += 10
                try:
                    await asyncio.wait_for(writer.drain(), 0.02)
                except asyncio.TimeoutError:
                    pass  # the worker stopped reading: TCP pushes back on us
                await asyncio.sleep(0.02)  # ... every 20 ms: ten times real time
            await asyncio.wait_for(listened.wait(), 10)
            writer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent * 0.02 > 40, "the attacker really did try to send far more than real time"
    assert seen["audio_s"] <= 8.0 + 2.5 and seen["accepted_s"] <= 8.0 + 2.5, seen
    assert peak < 2_000_000, f"peak Python memory {peak} bytes"


async def test_a_call_longer_than_the_limit_is_ended():
    ended = asyncio.Event()
    seen = {}

    async def handler(session: AudioSocketSession) -> None:
        while await session.next_event(timeout=5) is not None and not session.ended:
            pass
        seen["ended"] = session.ended
        ended.set()

    server = AudioSocketServer(handler, prompts=NoPrompts(), on_result=_ignore, port=0, max_call_s=1.0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode_frame(0x01, uuid.UUID(CALL_ID).bytes))
        for _ in range(200):  # 4 s of audio at real time, four times the limit
            writer.write(FRAME)
            await writer.drain()
            await asyncio.sleep(0.02)
            if ended.is_set():
                break
        await asyncio.wait_for(ended.wait(), 5)
        writer.close()
    assert seen["ended"]


async def test_a_fastagi_bridge_whose_audio_leg_never_ends_is_cut_at_the_call_limit(tmp_path, monkeypatch):
    """A peer that starts the EXEC AudioSocket and then says nothing cannot hold the worker's slot for ever."""
    from ivr.call import FlowResult, Result
    from ivr.service.worker import VoiceAuthService
    from ivr.settings import Settings
    from tests.test_service_worker import BandEnergyEmbedder, closed_port
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import open_store

    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    settings = Settings(data_dir=tmp_path, ami={"enabled": False, "port": closed_port()}, audiosocket={"port": 0},
                        fastagi={"port": 0}, http={"enabled": False}, service={"max_call_s": 1.0, "warm_up": False},
                        prompts={"generated_dir": tmp_path / "prompts"})
    engine = VoiceprintEngine(BandEnergyEmbedder(), open_store(settings.core()), settings.core())

    async def passes(call) -> FlowResult:  # type: ignore[no-untyped-def]
        return FlowResult(Result.PASS, "4711", 0.9)

    service = VoiceAuthService(settings, engine=engine, flows={"verify": passes}, build_prompts=False)
    await service.start()
    try:
        assert service.transport("asterisk").fastagi is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", service.transport("asterisk").fastagi.port)
        writer.write(f"agi_network_script: verify\nagi_channel: PJSIP/x-00000001\nagi_arg_1: uuid={CALL_ID}\n\n"
                     .encode())
        await writer.drain()
        command = await asyncio.wait_for(reader.readline(), 5)
        assert command.startswith(b"EXEC AudioSocket")
        loop = asyncio.get_running_loop()
        started = loop.time()
        rest = await asyncio.wait_for(reader.read(), 10)  # we never answer the EXEC
        assert loop.time() - started < 5 and b"EXEC" not in rest
        writer.close()
    finally:
        await service.stop(grace_s=1)
        engine.close()
