"""Fixtures for tests that need the lab Asterisk (marked ``lab``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.lab.asterisk import Lab, LabUnavailable
from scripts.lab.lifetime import running_lab


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
