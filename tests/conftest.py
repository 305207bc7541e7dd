"""Fixtures shared by the whole suite: synthetic speech and temporary data directories."""

from __future__ import annotations

from pathlib import Path

import pytest

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
