"""AudioSocket server behaviour, with a loopback client speaking the protocol the way Asterisk does.

(The same server against a real Asterisk is in tests/lab/test_lab_asterisk.py.)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.call import AudioFrame, CallerHungUp, DtmfDigit, FlowResult, HangUp, Result
from ivr.prompts.sources import DirectoryPromptSource, PromptNotFound
from ivr.transports.asterisk.audiosocket import AudioSocketServer, AudioSocketSession, encode_frame

CALL_ID = "0f9c2b66-4b7e-4d1e-9a55-6a3c3c1d2e10"


class TonePrompts:
    """Prompts of a given length: a steady tone, so frames are recognisable."""

    def __init__(self, seconds: dict[str, float]):
        self._seconds = seconds

    async def audio(self, name: str, language: str) -> bytes | None:
        if name not in self._seconds:
            return None
        n = int(self._seconds[name] * 8000)
        return (np.full(n, 1000, dtype="<i2")).tobytes()


def uuid_frame(call_id: str = CALL_ID) -> bytes:
    return encode_frame(0x01, uuid.UUID(call_id).bytes)


async def read_frames(reader: asyncio.StreamReader, timeout: float) -> list[tuple[int, bytes, float]]:
    """All frames until the server closes: (kind, payload, arrival time)."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                header = await reader.readexactly(3)
            except asyncio.IncompleteReadError:
                break
            kind, length = header[0], int.from_bytes(header[1:], "big")
            payload = await reader.readexactly(length) if length else b""
            frames.append((kind, payload, time.monotonic()))
            if kind == 0x00:
                break
    return frames


class Recorder:
    def __init__(self):
        self.results: list[tuple[str, dict]] = []

    async def __call__(self, call_id, variables):
        self.results.append((call_id, dict(variables)))


async def serve(handler, **kwargs):
    recorder = kwargs.pop("on_result", None) or Recorder()
    server = AudioSocketServer(handler, prompts=kwargs.pop("prompts", TonePrompts({"hello": 1.0})), on_result=recorder, port=0, **kwargs)
    await server.start()
    return server, recorder


async def test_events_arrive_in_order_and_hangup_frame_ends_the_call():
    got = []
    done = asyncio.Event()

    async def handler(session: AudioSocketSession):
        assert session.info.call_id == CALL_ID
        while True:
            event = await session.next_event(timeout=2)
            got.append(event)
            if isinstance(event, HangUp) or event is None:
                break
        done.set()

    server, _ = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        audio = bytes(range(256)) + bytes(64)
        writer.write(uuid_frame() + encode_frame(0x10, audio) + encode_frame(0x03, b"4") + encode_frame(0x10, audio) + encode_frame(0x03, b"#") + encode_frame(0x00))
        await writer.drain()
        await asyncio.wait_for(done.wait(), 5)
        writer.close()
    finally:
        await server.close()
    assert got == [AudioFrame(audio, 8000), DtmfDigit("4"), AudioFrame(audio, 8000), DtmfDigit("#"), HangUp()]


async def test_socket_closed_without_hangup_frame_is_a_hangup_and_later_calls_raise():
    outcome = {}
    done = asyncio.Event()

    async def handler(session: AudioSocketSession):
        outcome["first"] = await session.next_event(timeout=5)
        outcome["again"] = await session.next_event(timeout=0.1)
        try:
            await session.play("hello")
        except CallerHungUp:
            outcome["play"] = "CallerHungUp"
        done.set()

    server, _ = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame())
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await server.close()
    assert outcome == {"first": HangUp(), "again": HangUp(), "play": "CallerHungUp"}


async def test_prompt_is_streamed_in_20ms_frames_at_real_time_pace_then_hangup_sent():
    async def handler(session: AudioSocketSession):
        await session.play("hello")

    server, _ = await serve(handler, prompts=TonePrompts({"hello": 1.0}))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame())
        await writer.drain()
        frames = await read_frames(reader, timeout=5)
        writer.close()
    finally:
        await server.close()
    audio = [f for f in frames if f[0] == 0x10]
    assert len(audio) == 50 and all(len(p) == 320 for _, p, _ in audio)
    spread = audio[-1][2] - audio[0][2]
    assert 0.9 <= spread <= 1.3, f"50 frames arrived over {spread:.2f} s; real time is 0.98 s"
    assert frames[-1][0] == 0x00  # the server ends the AudioSocket so the dialplan continues


async def test_missing_prompt_is_a_typed_error_naming_prompt_and_language():
    outcome = {}

    async def handler(session: AudioSocketSession):
        with pytest.raises(PromptNotFound) as err:
            await session.play("no-such-prompt")
        outcome["message"] = str(err.value)

    server, _ = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame())
        await writer.drain()
        await read_frames(reader, timeout=5)
    finally:
        await server.close()
    assert "no-such-prompt" in outcome["message"] and "'en'" in outcome["message"]


async def test_the_result_goes_to_the_callback_as_escaped_channel_variables_then_the_socket_hangs_up():
    async def handler(session: AudioSocketSession):
        await session.finish(FlowResult(Result.PASS, "4711", 0.9, 'score "high"\nenough', method="voice"))

    server, recorder = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame())
        await writer.drain()
        frames = await read_frames(reader, timeout=5)
    finally:
        await server.close()
    assert recorder.results == [(CALL_ID, {
        "VOICEAUTH_RESULT": "PASS", "VOICEAUTH_SCORE": "0.900", "VOICEAUTH_REASON": "score 'high' enough",
        "VOICEAUTH_SPEAKER": "4711", "VOICEAUTH_ACCOUNT": "4711", "VOICEAUTH_METHOD": "voice",
        "VOICEAUTH_LIVENESS": "", "VOICEAUTH_RISK": "NONE"})]
    assert frames and frames[-1][0] == 0x00


@pytest.mark.parametrize(
    "garbage, reason",
    [
        (b"GET / HTTP/1.1\r\n\r\n", "unknown frame type 0x47"),
        (encode_frame(0x10, bytes(320)), "first frame has type 0x10"),
        (b"\x01\x00\x05hello", "UUID frame with 5 bytes"),
        (b"\x10\xff\xff", "audio frame of 65535 bytes"),
        (b"\x01\x00\x10abc", "not completed within"),  # slowloris: promises 16 bytes, sends 3
        (b"", "no frame for"),  # connects and says nothing
    ],
)
async def test_garbage_is_rejected_with_a_warning_and_the_server_keeps_serving(garbage, reason, caplog):
    served = []

    async def handler(session: AudioSocketSession):
        served.append(session.info.call_id)

    caplog.set_level(logging.WARNING)
    server, _ = await serve(handler, handshake_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(garbage)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the server
        writer.close()
        # A real call right after is served.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame())
        await writer.drain()
        await read_frames(reader, timeout=5)
    finally:
        await server.close()
    assert served == [CALL_ID]
    assert server.rejected_connections == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(reason in w and "127.0.0.1:" in w for w in warnings), warnings


async def test_garbage_inside_a_call_ends_that_call_as_a_hangup(caplog):
    got = []

    async def handler(session: AudioSocketSession):
        for _ in range(5):
            event = await session.next_event(timeout=2)
            got.append(event)
            if isinstance(event, HangUp):
                return

    caplog.set_level(logging.WARNING)
    server, _ = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(uuid_frame() + encode_frame(0x03, b"7") + b"\x42\x00\x00")
        await writer.drain()
        await read_frames(reader, timeout=5)
    finally:
        await server.close()
    assert got == [DtmfDigit("7"), HangUp()]
    assert any("unknown frame type 0x42" in r.getMessage() for r in caplog.records)


async def test_calls_beyond_max_calls_are_refused_without_disturbing_the_current_one():
    release = asyncio.Event()

    async def handler(session: AudioSocketSession):
        await asyncio.wait_for(release.wait(), 5)

    server, _ = await serve(handler, max_calls=1)
    try:
        r1, w1 = await asyncio.open_connection("127.0.0.1", server.port)
        w1.write(uuid_frame())
        await w1.drain()
        await asyncio.sleep(0.1)
        r2, w2 = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(r2.read(), 3) == b""
        assert server.active_calls == 1
        release.set()
        frames = await read_frames(r1, timeout=5)
    finally:
        await server.close()
    assert frames[-1][0] == 0x00
    assert server.rejected_connections == 1


async def test_a_flow_that_reads_too_slowly_loses_old_audio_but_never_digits():
    async def handler(session: AudioSocketSession):
        await asyncio.sleep(0.3)  # busy; meanwhile 60 frames arrive with room for 10
        events = []
        while (event := await session.next_event(timeout=0.2)) is not None and not isinstance(event, HangUp):
            events.append(event)
        handler.events = events

    server, _ = await serve(handler, max_buffered_seconds=0.2)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        frames = [encode_frame(0x10, i.to_bytes(2, "little") * 160) for i in range(60)]
        writer.write(uuid_frame() + encode_frame(0x03, b"1") + b"".join(frames) + encode_frame(0x00))
        await writer.drain()
        await read_frames(reader, timeout=5)
    finally:
        await server.close()
    audio = [e for e in handler.events if isinstance(e, AudioFrame)]
    assert DtmfDigit("1") in handler.events
    assert len(audio) == 10
    assert audio[-1].pcm16[:2] == (59).to_bytes(2, "little")  # the newest audio was kept


def _write_wav(path: Path, rate: int, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (0.5 * np.sin(2 * np.pi * 300 * np.arange(int(rate * seconds)) / rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


async def test_directory_prompts_are_resampled_to_8khz_and_stay_inside_the_root(tmp_path: Path):
    _write_wav(tmp_path / "es" / "bienvenida.wav", 16000, 0.5)
    _write_wav(tmp_path / "secret.wav", 8000, 0.5)
    prompts = DirectoryPromptSource(tmp_path)
    pcm = await prompts.audio("bienvenida", "es")
    assert pcm is not None and len(pcm) == 0.5 * 8000 * 2
    samples = np.frombuffer(pcm, dtype="<i2")
    assert 0.4 * 32767 < np.abs(samples).max() < 0.6 * 32767  # level preserved
    assert await prompts.audio("bienvenida", "en") is None
    assert await prompts.audio("../secret", "es") is None
    assert await prompts.audio("secret", "..") is None
