"""``ivr watchlist``: an admin puts a fraudster's voice on the list, screens callers, removes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from ivr.cli.app import app
from voiceprints.audio.telephone import telephone_channel

NO_MATCH, MATCH, INCONCLUSIVE, NOT_FOUND = 0, 1, 3, 4


@pytest.fixture
def ivr(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    return run


@pytest.fixture
def wav(tmp_path, utterances_of, say):
    def write(name: str, index: int = 0, text: str | None = None) -> Path:
        clip = telephone_channel(say(name, text) if text else utterances_of(name, 1, offset=index)[0])
        path = tmp_path / f"{name}-{index}-{'t' if text else ''}.wav"
        sf.write(path, clip.samples, clip.sample_rate, subtype="PCM_16")
        return path

    return write


def test_add_screen_list_and_remove_a_fraudster(ivr, wav):
    code, out = ivr("watchlist", "add", "case-118", *(str(wav("frank", i)) for i in range(3)),
                    "--note", "account takeover, 2026-11")
    assert code == 0, out
    assert "added case-118" in out

    code, out = ivr("watchlist", "list", "--json")
    entries = json.loads(out)["entries"]
    assert [e["name"] for e in entries] == ["case-118"] and entries[0]["note"] == "account takeover, 2026-11"
    assert "vector" not in out

    code, out = ivr("watchlist", "screen", str(wav("frank", 5)), "--json")
    result = json.loads(out)
    assert code == MATCH and result["hit"] and result["name"] == "case-118", out
    code, out = ivr("watchlist", "screen", str(wav("alice", 5)), "--json")
    assert code == NO_MATCH and not json.loads(out)["hit"], out

    code, out = ivr("watchlist", "remove", "case-118")
    assert code == 0 and "removed case-118" in out
    code, out = ivr("watchlist", "screen", str(wav("frank", 5)))
    assert code == NO_MATCH and "empty" in out
    code, out = ivr("watchlist", "remove", "case-118")
    assert code == NOT_FOUND


def test_too_little_speech_is_refused_for_an_entry_and_inconclusive_for_a_screen(ivr, wav):
    code, out = ivr("watchlist", "add", "short", str(wav("frank", text="Yes.")), "--json")
    assert code == 6 and json.loads(out)["error"] == "too_little_speech"
    code, out = ivr("watchlist", "screen", str(wav("frank", text="Yes.")))
    assert code == INCONCLUSIVE and "no screening" in out
