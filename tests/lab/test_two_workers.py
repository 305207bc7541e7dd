"""Two real ``ivr serve`` processes on one PostgreSQL behind the lab Asterisk (issue 12).

What a second worker must not break: a caller enrolled through one worker
verifies through the other (AudioSocket, and FastAGI where the audio leg must
come back to the worker that took the AGI call even when the dialplan's
AudioSocket address is another worker's), and an erasure is honoured by the
other worker on its very next call. Both workers share keys and secrets from
``ivr keys generate``, as docs/deploy.md says.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from ivr.prompts.catalog import PROMPTS
from scripts.lab.asterisk import REPO, Lab
from scripts.lab.callers import DialplanResults, keys, pause, place_call, speak, speech_file
from tests.fakes.mailbox import free_port
from tests.fakes.postgres import temporary_database
from tests.lab.serve_process import IVR, start_serve, stop_serve
from tests.lab.test_e2e_calls import write_tone
from tests.speech import SENTENCES, SPEAKERS, synth

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT, PIN = "6201", "8642"


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory):
    """The settings every worker host shares: one PostgreSQL, one set of keys and secrets."""
    with temporary_database("two_workers") as url:
        base = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_")}
        generated = subprocess.run([str(IVR), "keys", "generate"], env=base, capture_output=True, text=True,
                                   timeout=60, check=True).stdout
        secrets = dict(line.split("=", 1) for line in generated.splitlines() if line.startswith("VOICEAUTH_"))
        env = {**base, **secrets, "VOICEAUTH_STORE__URL": url}
        work = tmp_path_factory.mktemp("customers")
        (work / "customers.csv").write_text(f"external_id,pin\n{ACCOUNT},{PIN}\n")
        subprocess.run([str(IVR), "customers", "import", str(work / "customers.csv")],
                       env={**env, "VOICEAUTH_DATA_DIR": str(work)}, check=True, capture_output=True, timeout=120)
        yield env


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def workers(asterisk: Lab, shared_env, tmp_path_factory: pytest.TempPathFactory):
    """Worker A on the lab's usual ports, worker B on ports of its own; both logged in to the lab AMI."""
    ports = {"a": (asterisk.audiosocket_port, asterisk.agi_port, free_port()),
             "b": (free_port(), free_port(), free_port())}
    started = {}
    try:
        for name, (audiosocket, agi, http) in ports.items():  # one by one: the first may generate the prompts
            data = tmp_path_factory.mktemp(f"worker-{name}")
            for prompt in PROMPTS:  # short tones for prompts: the calls take seconds, not minutes
                write_tone(data / "prompts" / "en" / f"{prompt}.wav")
            env = {**shared_env,
                   "VOICEAUTH_DATA_DIR": str(data),
                   "VOICEAUTH_AMI__PORT": str(asterisk.ami_port),
                   "VOICEAUTH_AMI__USERNAME": asterisk.ami_user,
                   "VOICEAUTH_AMI__SECRET": asterisk.ami_secret,
                   "VOICEAUTH_AUDIOSOCKET__PORT": str(audiosocket),
                   "VOICEAUTH_FASTAGI__PORT": str(agi),
                   "VOICEAUTH_HTTP__PORT": str(http),
                   "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
                   "VOICEAUTH_PROMPTS__OVERRIDE_DIR": str(data / "prompts")}
            started[name] = (await start_serve(env, http, data / "serve.log"), data / "serve.log")
        yield {name: (f"127.0.0.1:{ports[name][0]}", f"127.0.0.1:{ports[name][1]}", log)
               for name, (_, log) in started.items()}
    finally:
        for process, _ in started.values():
            await stop_serve(process)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def route(asterisk: Lab):
    """Point the lab dialplan's globals at a worker: ``route(VOICEAUTH_WORKER=...)`` (restored after)."""
    async with asterisk.ami_client() as ami:
        await ami.wait_connected(10)
        names = ("VOICEAUTH_WORKER", "VOICEAUTH_AGI")
        before = {n: (await ami.action("Getvar", {"Variable": n})).get("Value", "") for n in names}

        async def point(**values: str) -> None:
            for name, value in values.items():
                reply = await ami.action("Setvar", {"Variable": name, "Value": value})
                assert not reply.is_error, reply

        try:
            yield point
        finally:
            await point(**before)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Alice's enrolment, and something new for each later call (a repeated recording is a replay)."""
    work = tmp_path_factory.mktemp("speech")

    def said(*texts: str) -> list[np.ndarray]:
        return [synth(SPEAKERS["alice"], text, 8000, work).samples for text in texts]

    return {
        "enrol": speech_file(work / "enrol.ulaw", said(*SENTENCES[:6])),
        "audiosocket": speech_file(work / "audiosocket.ulaw", said(
            "Hello, I would like to know why my transfer to my landlord has not arrived yet.",
            "It was sent on Monday from my savings account.")),
        "fastagi": speech_file(work / "fastagi.ulaw", said(
            "Good morning, I am travelling abroad next week and want my card to keep working.",
            "I will be in Portugal and then in Spain for ten days.")),
        "erased": speech_file(work / "erased.ulaw", said(
            "Hi, I am calling about the interest rate on my mortgage renewal.",
            "The letter I received says it changes next month.")),
    }


def verify_steps(audio: Path) -> list:
    return [pause(800), keys(f"{ACCOUNT}#"), pause(2000), speak(audio)]


async def call(asterisk: Lab, events: DialplanResults, exten: str, steps: list, audio: Path, caller: str,
               workdir: Path) -> dict[str, str]:
    sipp = await place_call(asterisk, exten, steps, caller=caller, workdir=workdir, audio=[audio], wait_ms=90000,
                            timeout=120)
    try:
        return await events.of(caller, timeout=15)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; sipp exited {sipp.returncode}: {sipp.stderr[-1500:]}") from None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def enrolled(asterisk: Lab, workers, route, results, speech, tmp_path_factory):
    """Alice enrols by phone through worker A, over FastAGI."""
    a_audiosocket, a_agi, _ = workers["a"]
    await route(VOICEAUTH_WORKER=a_audiosocket, VOICEAUTH_AGI=a_agi)
    steps = [pause(800), keys(f"{ACCOUNT}#"), pause(2500), keys(f"{PIN}#"), pause(2500), keys("1"), pause(1500),
             speak(speech["enrol"])]
    return await call(asterisk, results, "410", steps, speech["enrol"], "two-enrol", tmp_path_factory.mktemp("e"))


async def test_a_caller_enrolled_through_one_worker_verifies_through_the_other_over_audiosocket(
        asterisk, workers, route, results, enrolled, speech, tmp_path):
    assert enrolled["Result"] == "ENROLLED", enrolled
    b_audiosocket, _, b_log = workers["b"]
    await route(VOICEAUTH_WORKER=b_audiosocket)
    result = await call(asterisk, results, "100", verify_steps(speech["audiosocket"]), speech["audiosocket"],
                        "two-verify-as", tmp_path)
    assert result["Result"] == "PASS", result
    assert "via=audiosocket" in b_log.read_text()


async def test_over_fastagi_the_audio_leg_comes_back_to_the_worker_that_took_the_agi_call(
        asterisk, workers, route, results, enrolled, speech, tmp_path):
    """The dialplan's AudioSocket address names worker A (as a shared address would); B takes the AGI call."""
    assert enrolled["Result"] == "ENROLLED", enrolled
    a_audiosocket, _, a_log = workers["a"]
    _, b_agi, b_log = workers["b"]
    await route(VOICEAUTH_WORKER=a_audiosocket, VOICEAUTH_AGI=b_agi)
    a_calls = a_log.read_text().count("call start")
    result = await call(asterisk, results, "400", verify_steps(speech["fastagi"]), speech["fastagi"],
                        "two-verify-agi", tmp_path)
    assert result["Result"] == "PASS", result
    assert "via=fastagi" in b_log.read_text()
    assert a_log.read_text().count("call start") == a_calls  # the leg did not land on A


async def test_an_erasure_is_honoured_by_the_other_worker_on_its_next_call(
        asterisk, workers, route, results, enrolled, shared_env, speech, tmp_path):
    b_audiosocket, b_agi, _ = workers["b"]
    await route(VOICEAUTH_WORKER=b_audiosocket, VOICEAUTH_AGI=b_agi)
    erased = await asyncio.create_subprocess_exec(
        str(IVR), "voiceprints", "delete", ACCOUNT, env={**shared_env, "VOICEAUTH_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(erased.communicate(), 120)
    assert erased.returncode == 0, output
    result = await call(asterisk, results, "100", verify_steps(speech["erased"]), speech["erased"],
                        "two-verify-erased", tmp_path)
    assert result["Result"] == "NOT_ENROLLED", result
