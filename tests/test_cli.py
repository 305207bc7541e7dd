"""The ``ivr`` command line as an admin or a script uses it: outputs, JSON and exit codes."""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from ivr.cli.app import app
from voiceprints.audio.telephone import telephone_channel
from voiceprints.config import VerificationConfig

ACCEPT, REJECT, INCONCLUSIVE, NOT_ENROLLED, BAD_INPUT = 0, 1, 3, 4, 6


@pytest.fixture
def ivr(tmp_path, monkeypatch):
    """Run ``ivr ARGS`` in-process against a fresh data directory; returns (exit code, stdout)."""
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    return run


@pytest.fixture
def wav(tmp_path, utterances_of, say):
    """``wav(speaker, index)`` writes a telephone-quality recording and returns its path."""

    def write(name: str, index: int = 0, text: str | None = None) -> Path:
        clip = say(name, text) if text else utterances_of(name, 1, offset=index)[0]
        clip = telephone_channel(clip)
        path = tmp_path / f"{name}-{index}-{abs(hash(text)) if text else ''}.wav"
        sf.write(path, clip.samples, clip.sample_rate, subtype="PCM_16")
        return path

    return write


def test_enrol_then_verify_gives_exit_codes_scripts_can_rely_on(ivr, wav):
    code, out = ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    assert code == 0, out
    assert "enrolled 4572" in out
    code, out = ivr("verify", "4572", str(wav("alice", 5)))
    assert code == ACCEPT, out
    assert out.startswith("ACCEPT")
    code, out = ivr("verify", "4572", str(wav("frank", 5)))
    assert code == REJECT, out
    code, out = ivr("verify", "4572", str(wav("alice", text="Yes.")))
    assert code == INCONCLUSIVE, out
    assert "need 3.0 s" in out
    code, out = ivr("verify", "7777", str(wav("alice", 5)))
    assert code == NOT_ENROLLED


def test_verify_json_is_machine_readable(ivr, wav):
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    code, out = ivr("verify", "4572", str(wav("alice", 5)), "--json")
    data = json.loads(out)
    assert code == ACCEPT
    assert data["outcome"] == "accept"
    assert data["score"] >= data["accept_threshold"]
    assert data["quality"]["net_speech_s"] > 3


def test_corrupt_or_missing_audio_is_bad_input_with_a_clear_message(ivr, tmp_path, wav):
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    code, out = ivr("verify", "4572", str(broken), "--json")
    assert code == BAD_INPUT
    assert json.loads(out)["error"] == "corrupt_audio"
    code, _ = ivr("verify", "4572", str(tmp_path / "absent.wav"))
    assert code == BAD_INPUT


def test_voiceprints_can_be_listed_exported_and_erased(ivr, wav, tmp_path):
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    code, out = ivr("voiceprints", "list", "--json")
    rows = json.loads(out)["voiceprints"]
    assert code == 0 and [r["speaker"] for r in rows] == ["4572"]
    assert "vector" not in rows[0]
    # What an admin's terminal gets: one row per voiceprint, each ending its line (the shell
    # prompt starts on a line of its own), read from a real process's stdout.
    listed = subprocess.run([sys.executable, "-m", "ivr.cli.app", "voiceprints", "list"], env=os.environ,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("4572 ") and listed.stdout.endswith("\n")
    assert len(listed.stdout.splitlines()) == 1 and not listed.stdout.endswith("\n\n")
    export = tmp_path / "export.json"
    code, _ = ivr("voiceprints", "export", "4572", "--out", str(export))
    data = json.loads(export.read_text())
    assert code == 0 and "4572" in json.dumps(data)
    code, _ = ivr("voiceprints", "delete", "4572")
    assert code == 0
    code, out = ivr("voiceprints", "list", "--json")
    assert json.loads(out)["voiceprints"] == []
    assert ivr("voiceprints", "list") == (0, "no voiceprints stored\n")
    code, _ = ivr("voiceprints", "delete", "4572")
    assert code == NOT_ENROLLED


def test_identify_lists_the_best_candidates(ivr, wav):
    for name in ("alice", "erin", "bob"):
        ivr("enroll", name, *(str(wav(name, i)) for i in range(3)))
    code, out = ivr("identify", str(wav("erin", 6)), "--top", "2", "--json")
    candidates = json.loads(out)["candidates"]
    assert code == 0
    assert [c["speaker"] for c in candidates][0] == "erin" and len(candidates) == 2


def test_key_rotation_reencrypts_and_old_key_can_then_be_dropped(ivr, wav, monkeypatch):
    old = "k1:" + base64.b64encode(os.urandom(32)).decode()
    new = "k2:" + base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("VOICEAUTH_KEYS", old)
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    monkeypatch.setenv("VOICEAUTH_KEYS", f"{new},{old}")
    code, out = ivr("keys", "rotate", "--json")
    assert code == 0 and json.loads(out)["reencrypted"] == 1
    monkeypatch.setenv("VOICEAUTH_KEYS", new)
    code, out = ivr("verify", "4572", str(wav("alice", 5)))
    assert code == ACCEPT, out


def test_models_list_names_the_builtin_encoder(ivr, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_MODEL__ECAPA_DIR", raising=False)
    code, out = ivr("models", "list", "--json")
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert code == 0
    assert models["ge2e"]["available"] is True
    # No ECAPA directory is configured here: listed as unavailable, saying how to get one.
    assert models["ecapa"]["available"] is False
    assert "no ECAPA model directory configured" in models["ecapa"]["detail"]
    assert "ivr models pull ecapa" in models["ecapa"]["detail"]


def test_evaluate_reports_eer_and_draws_a_det_curve(ivr, tmp_path, utterances_of):
    rows = []
    for name in ("alice", "erin", "bob", "carol"):
        for i, clip in enumerate(utterances_of(name, 4)):
            path = tmp_path / "set" / f"{name}{i}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, clip.samples, clip.sample_rate)
            rows.append({"path": path.name, "speaker": name, "utterance_id": f"{name}{i}", "role": "eval"})
    manifest = tmp_path / "set" / "manifest.csv"
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out_json, det = tmp_path / "r.json", tmp_path / "det.png"
    code, out = ivr("evaluate", str(manifest), "--channel", "telephone", "--protocol", "pairs",
                    "--normalisation", "none", "--json", str(out_json), "--det", str(det))
    assert code == 0, out
    assert "EER=" in out
    result = json.loads(out_json.read_text())
    [r] = result["results"]
    assert r["n_target"] == 4 * 6 and r["n_nontarget"] == 16 * 15 // 2 - 24
    assert 0.0 <= r["eer"] < 0.5
    assert det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_stores_thresholds_that_verify_then_uses(ivr, wav, tmp_path, utterances_of):
    rows = []
    names = ("alice", "erin", "bob", "carol", "dave", "frank")
    for name in names:
        for i, clip in enumerate(utterances_of(name, 8)):
            path = tmp_path / "cal" / f"{name}{i}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, telephone_channel(clip).samples, 8000)
            rows.append({"path": path.name, "speaker": name, "utterance_id": f"{name}{i}", "role": ""})
    manifest = tmp_path / "cal" / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    code, out = ivr("calibrate", str(manifest), "--protocol", "pairs", "--target-far", "0.05", "--json")
    assert code == 0, out
    cal = {c["normalisation"]: c for c in json.loads(out)["calibrations"]}
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    _, out = ivr("verify", "4572", str(wav("alice", 5)), "--json")
    assert json.loads(out)["accept_threshold"] == pytest.approx(cal["none"]["accept_threshold"], abs=1e-4)


def test_console_script_is_installed():
    ivr_bin = Path(sys.executable).with_name("ivr")
    result = subprocess.run([str(ivr_bin), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "verify" in result.stdout and "evaluate" in result.stdout


def test_a_built_cohort_turns_on_normalisation_for_verify(ivr, wav, tmp_path, monkeypatch):
    cohort_files = [str(wav(name, 7)) for name in ("bob", "carol", "dave", "erin")]
    code, out = ivr("cohort", "build", str(tmp_path / "cohort"), *cohort_files, "--json")
    assert code == 0, out
    assert json.loads(out)["size"] == 4
    ivr("enroll", "4572", *(str(wav("alice", i)) for i in range(3)))
    monkeypatch.setenv("VOICEAUTH_VERIFICATION__COHORT_DIR", str(tmp_path / "cohort"))
    monkeypatch.setenv("VOICEAUTH_VERIFICATION__MIN_COHORT_SIZE", "3")
    _, out = ivr("verify", "4572", str(wav("alice", 5)), "--json")
    decision = json.loads(out)
    assert decision["normalisation"] == VerificationConfig().normalisation, decision
    assert decision["outcome"] != "reject"
