"""Fixtures shared by the whole suite: synthetic speech and temporary data directories."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_asyncio

from scripts.lab.asterisk import Lab, LabUnavailable
from scripts.lab.callers import DialplanResults
from scripts.lab.lifetime import running_lab
from tests.speech import SPEAKERS, Speaker, espeak_available, synth, utterances


@pytest.fixture(scope="session")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not espeak_available():
        pytest.fail("espeak-ng is not installed: run scripts/bootstrap.sh (it installs the Debian package)")
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def speakers() -> dict[str, Speaker]:
    return SPEAKERS


@pytest.fixture(scope="session")
def say(speech_cache: Path):
    """``say(speaker_name, text, sample_rate=16000) -> AudioClip``"""

    def _say(name: str, text: str, sample_rate: int = 16000):
        return synth(SPEAKERS[name], text, sample_rate, speech_cache)

    return _say


@pytest.fixture(scope="session")
def utterances_of(speech_cache: Path):
    """``utterances_of(speaker_name, count, sample_rate=16000, offset=0) -> list[AudioClip]``"""

    def _utts(name: str, count: int, sample_rate: int = 16000, offset: int = 0):
        return utterances(SPEAKERS[name], count, sample_rate, speech_cache, offset)

    return _utts


# --- the lab Asterisk (tests marked lab: tests/lab, tests/security) ---------------
@pytest.fixture(scope="session")
def asterisk() -> Lab:
    """A running lab Asterisk 22, built on first use (~1 min).

    Stopped at the end of the session (also when the run is interrupted by
    Ctrl-C or SIGTERM) unless it was already running before the session.
    """
    for tool in ("debootstrap", "sipp"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: apt-get install debootstrap sip-tester")
    lab = Lab()
    try:
        if not lab.built:
            lab.build()
        with running_lab(lab):
            yield lab
    except (LabUnavailable, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"lab Asterisk unavailable: {exc}")


@pytest.fixture(scope="session")
def caller_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 2 s of synthetic speech as headerless 8 kHz mu-law, the way sipp streams it."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are needed: apt-get install espeak-ng sox")
    work = tmp_path_factory.mktemp("caller")
    wav = work / "speech.wav"
    ulaw = work / "speech.ulaw"
    subprocess.run(
        ["espeak-ng", "-v", "en+m3", "-s", "150", "-w", str(wav), "my voice is my password, verify me"],
        check=True, capture_output=True, timeout=30,
    )
    subprocess.run(
        ["sox", str(wav), "-t", "raw", "-e", "mu-law", "-r", "8000", "-c", "1", str(ulaw)],
        check=True, capture_output=True, timeout=30,
    )
    return ulaw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def results(asterisk: Lab):
    """Results as the lab dialplan saw them (its VoiceAuthResult events), by caller ID."""
    async with asterisk.ami_client() as ami:
        await ami.wait_connected(10)
        events = DialplanResults(ami)
        yield events
        events.close()
