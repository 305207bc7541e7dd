"""The transports against a real Asterisk 22 (scripts/lab) with sipp as the caller.

One Asterisk serves the session (fixture ``asterisk``); each test runs our
servers on the lab's fixed loopback ports and places real SIP calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.call import AudioFrame, DtmfDigit, HangUp
from ivr.transports.asterisk.ami import AmiCallDirectory, AmiClient
from ivr.call import FlowResult, Result
from ivr.prompts.sources import DirectoryPromptSource
from ivr.transports.asterisk.audiosocket import AudioSocketServer, AudioSocketSession
from ivr.transports.asterisk.fastagi import AgiCallSession, AgiSession, FastAgiServer
from scripts.lab.asterisk import Lab
from tests.lab.sipp import sipp_call
from voiceprints.audio.g711 import ulaw_decode

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def best_correlation(received: np.ndarray, reference: np.ndarray) -> float:
    """Peak normalised cross-correlation over all alignments (the stream starts at an unknown offset)."""
    from scipy.signal import correlate

    # The first and last packets of a call may not make it into the stream
    # (call set-up and tear-down race the RTP): compare without its edges.
    edge = 800  # 0.1 s at 8 kHz
    reference = reference[edge:-edge]
    if len(received) < len(reference):
        return 0.0
    reference = reference - reference.mean()
    corr = correlate(received, reference, mode="valid")
    # Energy of the received audio under each placement of the reference.
    local_energy = np.convolve(received**2, np.ones(len(reference)), mode="valid")
    norm = np.sqrt(np.maximum(local_energy, 1e-9)) * np.sqrt(np.sum(reference**2))
    return float(np.max(np.abs(corr) / norm))


def rtp_sent_to_caller(channelstats: str) -> int:
    """Transmit packet count of the caller's channel in ``pjsip show channelstats``.

    Columns are read from the right: the optional BridgeId column on the left shifts the rest.
    """
    for line in channelstats.splitlines():
        parts = line.split()
        if any(p.startswith("caller-") for p in parts) and len(parts) >= 10:
            return int(parts[-5])
    raise AssertionError(f"no caller channel in:\n{channelstats}")


def write_prompt(path: Path, seconds: float, rate: int = 16000) -> None:
    """A prompt recorded at 16 kHz (so the 8 kHz resampling path is exercised)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


@pytest.fixture
async def ami(asterisk: Lab):
    async with asterisk.ami_client() as client:
        await client.wait_connected(10)
        yield client


@pytest.fixture
def prompts(tmp_path: Path) -> DirectoryPromptSource:
    write_prompt(tmp_path / "prompts" / "en" / "welcome.wav", 1.0)
    write_prompt(tmp_path / "prompts" / "en" / "long.wav", 10.0)
    return DirectoryPromptSource(tmp_path / "prompts")


async def test_lab_runs_asterisk_22_with_the_project_dialplans(asterisk: Lab, ami: AmiClient):
    assert "Asterisk 22." in asterisk.rx("core show version")
    for context in ("voiceauth-verify", "voiceauth-enroll", "voiceauth-verify-agi", "voiceauth-route-example"):
        shown = asterisk.rx(f"dialplan show {context}")
        assert f"Context '{context}'" in shown, shown
    assert "AudioSocket(${VOICEAUTH_UUID},${VOICEAUTH_WORKER})" in asterisk.rx("dialplan show voiceauth-audiosocket")
    # The lab must not listen beyond loopback (chan_iax2 and friends are not loaded).
    assert "chan_iax2" not in asterisk.rx("module show like iax2").split("\n", 1)[1].split("modules loaded")[0]


async def test_audiosocket_call_delivers_speech_digits_and_result(
    asterisk: Lab, ami: AmiClient, prompts: DirectoryPromptSource, caller_speech: Path, tmp_path: Path
):
    directory = AmiCallDirectory(ami)
    seen: dict[str, object] = {"audio": bytearray(), "events": []}
    handled = asyncio.Event()

    async def handler(session: AudioSocketSession) -> None:
        seen["info"] = session.info
        digits = ""
        deadline = time.monotonic() + 20
        while len(digits) < 5 and time.monotonic() < deadline:
            event = await session.next_event(timeout=1.0)
            if isinstance(event, AudioFrame):
                seen["audio"].extend(event.pcm16)
                assert event.sample_rate == 8000
            elif isinstance(event, DtmfDigit):
                digits += event.digit
            elif isinstance(event, HangUp):
                break
        seen["digits"] = digits
        # A client that connected after the VarSet event still finds the channel (AMI Status fallback).
        async with asterisk.ami_client() as late:
            await late.wait_connected(5)
            seen["late_channel"] = await late.find_channel("VOICEAUTH_UUID", session.info.call_id)
        started = time.monotonic()
        await session.play("welcome")
        seen["play_seconds"] = time.monotonic() - started
        seen["tx"] = await ami.command("pjsip show channelstats")
        await session.finish(FlowResult(Result.PASS, digits.rstrip("#"), 0.87))
        handled.set()

    results = ami.user_events("VoiceAuthResult")
    async with AudioSocketServer(
        handler, prompts=prompts, on_result=directory.set_result, call_info=directory.call_info, port=asterisk.audiosocket_port
    ):
        call = await sipp_call(
            asterisk, "call_waits_for_bye.xml", exten="300", audio=caller_speech, digits="4711#", workdir=tmp_path
        )
    assert call.returncode == 0, call.stdout + call.stderr
    assert handled.is_set()

    # The call details came from the dialplan through AMI.
    info = seen["info"]
    assert info.params["channel"].startswith("PJSIP/caller-")
    assert seen["digits"] == "4711#"
    assert seen["late_channel"] == info.params["channel"]

    # What we received is what the caller said (mu-law decoded), not just "some audio".
    received = np.frombuffer(bytes(seen["audio"]), dtype="<i2").astype(np.float64)
    reference = ulaw_decode(caller_speech.read_bytes()).astype(np.float64) * 32768.0
    assert best_correlation(received, reference) > 0.95

    # The 1 s prompt took real time to stream (paced, not dumped) and reached the caller's RTP.
    assert 0.95 <= seen["play_seconds"] <= 1.6
    assert rtp_sent_to_caller(seen["tx"]) >= 45  # 50 frames of 20 ms; Asterisk sends RTP only for what we play

    report = await results.wait_for(lambda e: e.get("Flow") == "audiosocket", timeout=10)
    assert report is not None, "the dialplan did not report after AudioSocket() returned"
    assert report.get("Result") == "PASS"
    assert report.get("Score") == "0.870"
    assert report.get("Account") == "4711"
    assert report.get("Uuid") == info.call_id


async def test_caller_hanging_up_mid_prompt_ends_the_session(
    asterisk: Lab, ami: AmiClient, prompts: DirectoryPromptSource, caller_speech: Path, tmp_path: Path
):
    directory = AmiCallDirectory(ami)
    outcome: dict[str, object] = {}

    async def handler(session: AudioSocketSession) -> None:
        started = time.monotonic()
        try:
            await session.play("long")  # 10 s; the caller leaves after ~3 s
            outcome["play"] = "completed"
        except Exception as exc:  # noqa: BLE001 - the type is what the test checks
            outcome["play"] = type(exc).__name__
        outcome["play_seconds"] = time.monotonic() - started
        event = await session.next_event(timeout=5)
        while isinstance(event, AudioFrame):
            event = await session.next_event(timeout=5)
        outcome["event"] = event

    async with AudioSocketServer(handler, prompts=prompts, on_result=directory.set_result, port=asterisk.audiosocket_port) as server:
        call = await sipp_call(
            asterisk, "caller_hangs_up.xml", exten="300", audio=caller_speech, digits="1", workdir=tmp_path, speech_ms=2000, hold_ms=500
        )
        deadline = time.monotonic() + 10
        while server.active_calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.active_calls == 0, "the handler did not end after the caller hung up"
    assert call.returncode == 0, call.stdout + call.stderr
    assert outcome["play"] == "CallerHungUp"
    assert outcome["play_seconds"] < 6
    assert isinstance(outcome["event"], HangUp)


async def test_fastagi_call_prompts_reads_digit_and_sets_variable(asterisk: Lab, ami: AmiClient, caller_speech: Path, tmp_path: Path):
    seen: dict[str, object] = {}

    async def verify(agi: AgiSession) -> None:
        call = AgiCallSession(agi, prompt_dir="voiceauth", barge_in=False)
        seen["info"] = call.info
        await agi.answer()
        await agi.stream_file("beep")
        with pytest.raises(FileNotFoundError):
            await call.play("no-such-prompt")
        event = None
        for _ in range(10):
            event = await call.next_event(timeout=1.0)
            if event is not None:
                break
        seen["event"] = event
        await call.finish(FlowResult(Result.NOT_ENROLLED, reason="no voiceprint yet"))

    results = ami.user_events("VoiceAuthResult")
    async with FastAgiServer({"verify": verify}, port=asterisk.agi_port):
        call = await sipp_call(asterisk, "call_waits_for_bye.xml", exten="400", audio=caller_speech, digits="7", workdir=tmp_path, speech_ms=1500)
    assert call.returncode == 0, call.stdout + call.stderr
    assert seen["event"] == DtmfDigit("7")
    info = seen["info"]
    assert info.language == "en" and info.params["claim"] == "dtmf"
    report = await results.wait_for(lambda e: e.get("Flow") == "agi", timeout=10)
    assert report is not None
    assert report.get("Result") == "NOT_ENROLLED"
    assert report.get("Reason") == "no voiceprint yet"
    assert report.get("Uuid") == info.call_id


async def test_garbage_on_worker_ports_is_rejected_and_real_calls_still_work(
    asterisk: Lab, ami: AmiClient, prompts: DirectoryPromptSource, caller_speech: Path, tmp_path: Path, caplog
):
    directory = AmiCallDirectory(ami)
    got_digit = asyncio.Event()

    async def handler(session: AudioSocketSession) -> None:
        for _ in range(200):
            event = await session.next_event(timeout=0.5)
            if isinstance(event, DtmfDigit):
                got_digit.set()
                await session.finish(FlowResult(Result.FAIL))
                return
            if isinstance(event, HangUp):
                return

    agi_seen = asyncio.Event()

    async def verify(agi: AgiSession) -> None:
        # Wait for the caller's key so the call ends on our terms, as a real flow would.
        if await agi.wait_for_digit(5000) == "5":
            agi_seen.set()
        await agi.set_variable("VOICEAUTH_RESULT", "ERROR")

    caplog.set_level(logging.WARNING)
    results = ami.user_events("VoiceAuthResult")
    async with AudioSocketServer(
        handler, prompts=prompts, on_result=directory.set_result, port=asterisk.audiosocket_port, handshake_timeout=1.0
    ) as audio_server, FastAgiServer({"verify": verify}, port=asterisk.agi_port, header_timeout=1.0) as agi_server:
        for port in (asterisk.audiosocket_port, asterisk.agi_port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed on us
            writer.close()
        call = await sipp_call(asterisk, "call_waits_for_bye.xml", exten="300", audio=caller_speech, digits="5", workdir=tmp_path, speech_ms=1000)
        assert call.returncode == 0, call.stdout + call.stderr
        call = await sipp_call(asterisk, "call_waits_for_bye.xml", exten="400", audio=caller_speech, digits="5", workdir=tmp_path, speech_ms=500)
        assert call.returncode == 0, call.stdout + call.stderr
        assert audio_server.rejected_connections == 1 and agi_server.rejected_connections == 1
    assert got_digit.is_set() and agi_seen.is_set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AudioSocket 127.0.0.1:" in w and "rejected" in w for w in warnings), warnings
    assert any("FastAGI 127.0.0.1:" in w and "rejected" in w for w in warnings), warnings
    flows = []
    for _ in range(2):
        report = await results.wait_for(lambda e: e.get("Flow") in ("audiosocket", "agi"), timeout=10)
        assert report is not None
        flows.append((report.get("Flow"), report.get("Result")))
    assert sorted(flows) == [("agi", "ERROR"), ("audiosocket", "FAIL")]


async def test_ami_client_reconnects_after_asterisk_restarts(asterisk: Lab, ami: AmiClient):
    assert ami.connections == 1
    await asyncio.to_thread(asterisk.stop)
    deadline = time.monotonic() + 10
    while ami.connected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not ami.connected
    with pytest.raises(ConnectionError):
        await ami.command("core show uptime")
    restarted = time.monotonic()
    await asyncio.to_thread(asterisk.start)
    await ami.wait_connected(timeout=10)  # backoff is capped at 5 s
    assert time.monotonic() - restarted < 10
    assert ami.connections == 2
    assert "System uptime" in await ami.command("core show uptime")


async def test_verify_context_reports_error_instead_of_dropping_the_caller_when_the_worker_is_down(
    asterisk: Lab, ami: AmiClient, caller_speech: Path, tmp_path: Path
):
    results = ami.user_events("VoiceAuthResult")
    # Nothing listens on the AudioSocket port; the dialplan hangs up after reporting,
    # so sipp's own verdict (BYE during its pause) does not matter here.
    await sipp_call(asterisk, "caller_hangs_up.xml", exten="100", audio=caller_speech, digits="1", workdir=tmp_path, speech_ms=300, hold_ms=300)
    report = await results.wait_for(lambda e: e.get("Flow") == "verify", timeout=10)
    assert report is not None, "the dialplan did not continue after AudioSocket() failed"
    assert report.get("Result") == "ERROR"
    assert "no result from the worker" in (report.get("Reason") or "")
