"""The real ``ivr serve`` process, configured only by environment variables, answering lab calls.

Slower than the in-process worker (model import, prompt generation check),
so one process serves this module: it must become ready, answer a call with
the shipped espeak-ng prompts, install those prompts into Asterisk's sounds
directory, and on SIGTERM end a call in progress cleanly (the dialplan sees
``ERROR`` / "worker shutting down") and exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import wave
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from scripts.lab.asterisk import REPO, Lab
from scripts.lab.callers import keys, pause, place_call, speak, speech_file
from tests.fakes.mailbox import free_port
from tests.lab.serve_process import start_serve, stop_serve
from tests.speech import SENTENCES, SPEAKERS, synth

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def serve(asterisk: Lab, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("serve")
    http_port = free_port()
    env = {
        **os.environ,
        "VOICEAUTH_DATA_DIR": str(data),
        "VOICEAUTH_AMI__PORT": str(asterisk.ami_port),
        "VOICEAUTH_AMI__USERNAME": asterisk.ami_user,
        "VOICEAUTH_AMI__SECRET": asterisk.ami_secret,
        "VOICEAUTH_AUDIOSOCKET__PORT": str(asterisk.audiosocket_port),
        "VOICEAUTH_FASTAGI__PORT": str(asterisk.agi_port),
        "VOICEAUTH_HTTP__PORT": str(http_port),
        "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
        "VOICEAUTH_PROMPTS__ASTERISK_SOUNDS_DIR": str(asterisk.directory / "usr/share/asterisk/sounds"),
    }
    process = await start_serve(env, http_port, data / "serve.log")
    base = f"http://127.0.0.1:{http_port}"
    yield process, base, data / "serve.log"
    await stop_serve(process)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("speech")
    clips = [synth(SPEAKERS["alice"], SENTENCES[i], 8000, work).samples for i in range(3)]
    return speech_file(work / "alice.ulaw", clips)


async def test_serve_answers_a_call_with_the_generated_prompts(
    serve, asterisk: Lab, results, speech, tmp_path
):
    process, base, log = serve
    call = await place_call(
        asterisk,
        "100",
        [pause(800), keys("9999#"), pause(2500), speak(speech)],
        caller="serve-unknown",
        workdir=tmp_path,
        audio=[speech],
    )
    result = await results.of("serve-unknown", timeout=15)
    assert result["Result"] == "NOT_ENROLLED", (result, log.read_text())
    # The prompt took its real length: the worker played the espeak-ng "enter-account" prompt.
    with wave.open(str(REPO / ".lab" / "prompts" / "en" / "enter-account.wav")) as w:
        assert call.elapsed >= w.getnframes() / w.getframerate()
    text = log.read_text()
    assert "call start" in text and "result=NOT_ENROLLED" in text and "channel=PJSIP/caller-" in text


async def test_serve_installs_its_prompts_for_the_dialplan(serve, asterisk: Lab):
    sounds = asterisk.directory / "usr/share/asterisk/sounds/voiceauth"
    for language in ("en", "es"):
        with wave.open(str(sounds / language / "verify-failed.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)


async def test_sigterm_ends_a_call_in_progress_cleanly_and_exits(
    serve, asterisk: Lab, results, speech, tmp_path
):
    process, base, log = serve
    # Enrolment over FastAGI: the welcome prompt alone takes ~7 s, so the call is in progress at SIGTERM.
    call = asyncio.create_task(
        place_call(
            asterisk,
            "410",
            [pause(1000), speak(speech)],
            caller="serve-cut",
            workdir=tmp_path,
            audio=[speech],
        )
    )
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(100):
            metrics = (await http.get("/metrics")).text
            if 'voiceauth_calls_in_progress{flow="enroll"} 1.0' in metrics:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the enrolment call never started:\n" + log.read_text())
    process.send_signal(signal.SIGTERM)
    result = await results.of("serve-cut", timeout=20)
    assert result["Result"] == "ERROR", result
    assert result["Reason"] == "worker shutting down", result
    assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()
    await call
    text = log.read_text()
    assert "SIGTERM received" in text and "worker stopped" in text, text
