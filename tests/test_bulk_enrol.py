"""Bulk enrolment from recorded calls, as an admin runs it: ``ivr consent import`` then ``ivr enroll --manifest``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ivr.audit.log import AuditLog
from ivr.bulk.enrol import BulkEnroller, as_utterances
from ivr.bulk.manifest import ManifestError, read_manifest
from ivr.cli.app import app
from ivr.consent.registry import ConsentRegistry
from ivr.db import open_database
from ivr.secrets import SecretsConfig, load_server_secrets
from tests.fakes.mailbox import running_mailbox
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import SpeechDetector
from voiceprints.audio.telephone import telephone_channel

ROOT = Path(__file__).resolve().parents[1]
OK, REJECT, BAD_INPUT, INTERRUPTED = 0, 1, 6, 130


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(data))
    for name in ("VOICEAUTH_KEYS", "VOICEAUTH_STORE__URL", "VOICEAUTH_SECRETS__FILE"):
        monkeypatch.delenv(name, raising=False)
    return data


def ivr(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def calls(tmp_path: Path, utterances_of):
    """``calls(name, n, offset)``: n telephone recordings (8 kHz) of one espeak speaker, as files."""
    folder = tmp_path / "calls"
    folder.mkdir()

    def write(name: str, n: int = 3, offset: int = 0) -> list[Path]:
        paths = []
        for i, clip in enumerate(utterances_of(name, n, offset=offset)):
            path = folder / f"{name}-{offset + i}.wav"
            sf.write(path, telephone_channel(clip).samples, 8000, subtype="PCM_16")
            paths.append(path)
        return paths

    return write


def stereo_call(path: Path, caller: list[Path], agent: list[Path]) -> Path:
    """One recorded call: the caller's answers on the left channel, the agent's voice on the right."""
    left = np.concatenate([sf.read(p, dtype="float32")[0] for p in caller])
    right = np.concatenate([sf.read(p, dtype="float32")[0] for p in agent])
    n = max(len(left), len(right))
    sf.write(path, np.stack([np.pad(left, (0, n - len(left))), np.pad(right, (0, n - len(right)))], axis=1), 8000)
    return path


def write_manifest(path: Path, rows: list[tuple[str, list[Path] | str, str]]) -> Path:
    lines = ["account,files,channel"]
    for account, files, channel in rows:
        text = files if isinstance(files, str) else ";".join(p.name if p.parent == path.parent else str(p)
                                                            for p in files)
        lines.append(f"{account},{text},{channel}")
    path.write_text("\n".join(lines) + "\n")
    return path


def audit_rows(data_dir: Path):  # type: ignore[no-untyped-def]
    db = open_database(f"sqlite:///{data_dir / 'voiceprints.db'}")
    try:
        return AuditLog(db, key=load_server_secrets(SecretsConfig(), data_dir).audit_key).query()
    finally:
        db.dispose()


def test_consented_accounts_are_enrolled_and_every_other_row_says_why_not(data_dir, tmp_path, calls):
    alice = calls("alice", 3)
    bob_answers = calls("bob", 3)
    agent = calls("erin", 3, offset=5)  # espeak voices GE2E tells apart well: bob vs erin cosine ~0.65
    bob_call = stereo_call(tmp_path / "calls" / "bob-call.wav", bob_answers, agent)  # one long call, bob left
    mixed = stereo_call(tmp_path / "calls" / "mixed.wav", calls("dave", 3), agent)
    corrupt = tmp_path / "calls" / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    manifest = write_manifest(tmp_path / "calls" / "manifest.csv", [
        ("700001", alice, ""),
        ("700002", [bob_call], "left"),
        ("700003", calls("frank", 3), ""),  # consent never recorded
        ("700004", calls("carol", 3), ""),  # opted out
        ("700005", [corrupt, *alice[:2]], ""),
        ("700006", "missing-1.wav;missing-2.wav;missing-3.wav", ""),
        ("700007", [mixed], ""),  # stereo, caller and agent differ, channel not given
        ("700001", alice, ""),  # the same account twice
        ("700008", alice, "centre"),
    ])
    consented = write_manifest(tmp_path / "consent.csv", [(a, "x", "") for a in
                                                          ("700001", "700002", "700004", "700005", "700006",
                                                           "700007", "700008")])
    code, out, _ = ivr("consent", "import", str(consented), "--channel", "recorded-call")
    assert code == OK and "recorded 7 consent(s)" in out
    assert ivr("consent", "optout", "700004")[0] == OK
    code, out, _ = ivr("consent", "import", str(consented), "--channel", "recorded-call")
    assert "6 already consented" in out and "opted out and left alone: 700004" in out

    code, out, err = ivr("enroll", "--manifest", str(manifest), "--json")
    report = json.loads(out)
    assert code == BAD_INPUT, "some rows failed: a script must notice"
    assert (report["enrolled"], report["skipped"], report["failed"]) == (2, 0, 7)
    why = {f["line"]: (f["code"], f["detail"]) for f in report["failures"]}
    assert why[4][0] == "no_consent" and "no consent recorded" in why[4][1]
    assert why[5][0] == "no_consent" and "opted out" in why[5][1]
    assert why[6][0] == "corrupt_audio" and "corrupt.wav" in why[6][1]
    assert why[7][0] == "audio_not_found"
    assert why[8][0] == "bad_audio" and "channel column" in why[8][1]
    assert why[9][0] == "bad_row" and "already on line 2" in why[9][1]
    assert why[10][0] == "bad_row" and "'centre'" in why[10][1]

    # The caller's side of the stereo call was enrolled, not the agent's.
    assert ivr("verify", "700002", str(calls("bob", 1, offset=6)[0]))[0] == OK
    assert ivr("verify", "700002", str(calls("erin", 1, offset=6)[0]))[0] == REJECT
    assert ivr("verify", "700001", str(calls("alice", 1, offset=6)[0]))[0] == OK
    rows = audit_rows(data_dir)
    enrolments = [r for r in rows if r.flow == "enroll"]
    assert sorted(r.identity for r in enrolments) == ["700001", "700002"]
    assert all("bulk enrolment" in (r.reason or "") and "consent given" in (r.reason or "") for r in enrolments)
    [summary] = [r for r in rows if r.flow == "bulk-enroll"]
    assert "2 enrolled" in summary.reason and "7 failed" in summary.reason
    assert ivr("audit", "verify")[0] == OK


def test_a_rerun_does_only_what_is_left_and_a_changed_manifest_is_not_resumed_blindly(data_dir, tmp_path, calls):
    manifest = write_manifest(tmp_path / "m.csv", [("800001", calls("alice", 3), ""),
                                                   ("800002", calls("bob", 3), "")])
    consent = write_manifest(tmp_path / "c.csv", [("800001", "x", "")])
    ivr("consent", "import", str(consent), "--channel", "crm")
    code, out, _ = ivr("enroll", "--manifest", str(manifest), "--json")
    assert code == BAD_INPUT and json.loads(out)["enrolled"] == 1
    first = [r for r in audit_rows(data_dir) if r.flow == "enroll"]
    ivr("consent", "import", str(write_manifest(tmp_path / "c2.csv", [("800002", "x", "")])), "--channel", "crm")
    # --replace: only the progress file can keep 800001 from being enrolled again.
    code, out, _ = ivr("enroll", "--manifest", str(manifest), "--replace", "--json")
    report = json.loads(out)
    assert code == OK and (report["enrolled"], report["done_before"], report["failed"]) == (1, 1, 0)
    enrolments = [r.identity for r in audit_rows(data_dir) if r.flow == "enroll"]
    assert len(first) == 1 and sorted(enrolments) == ["800001", "800002"]
    # Without the progress file, accounts already enrolled are skipped, not replaced.
    code, out, _ = ivr("enroll", "--manifest", str(manifest), "--restart", "--json")
    assert code == OK and json.loads(out)["skipped"] == 2
    manifest.write_text(manifest.read_text() + "800003,x.wav,\n")
    code, _, err = ivr("enroll", "--manifest", str(manifest))
    assert code == BAD_INPUT and "another manifest" in err and "--restart" in err
    code, _, err = ivr("enroll", "--manifest", str(tmp_path / "none.csv"))
    assert code == BAD_INPUT and "cannot be read" in err
    (tmp_path / "bad.csv").write_text("customer,recordings\n1,a.wav\n")
    with pytest.raises(ManifestError, match="no 'account' or 'files' column"):
        read_manifest(tmp_path / "bad.csv")


def test_an_interrupted_run_stops_cleanly_and_the_next_one_finishes_it(data_dir, tmp_path, calls):
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    manifest = write_manifest(tmp_path / "m.csv", [(f"90000{i}", calls(name, 3), "")
                                                   for i, name in enumerate(names)])
    ivr("consent", "import", str(manifest), "--channel", "crm")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VOICEAUTH_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "ivr.cli.app", "enroll", "--manifest", str(manifest)]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = tmp_path / "m.csv.progress"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) >= 2:  # header + one row done
            run.send_signal(signal.SIGINT)  # what Ctrl-C does
            break
        time.sleep(0.02)
    out, err = run.communicate(timeout=60)
    assert run.returncode == INTERRUPTED, (out, err)
    assert "interrupted" in out and "run the same command again" in out
    done_first = len(progress.read_text().splitlines()) - 1
    assert 1 <= done_first < len(names)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == OK, again.stderr
    assert f"{done_first} done in an earlier run" in again.stdout
    enrolled = [r.identity for r in audit_rows(data_dir) if r.flow == "enroll"]
    assert sorted(enrolled) == [f"90000{i}" for i in range(len(names))], "each account exactly once"


def test_customers_on_file_are_told_their_voiceprint_was_created(data_dir, tmp_path, calls, monkeypatch):
    customers = tmp_path / "customers.csv"
    customers.write_text("external_id,email,language\n" "810001,ana@example.org,es\n")
    manifest = write_manifest(tmp_path / "m.csv", [("810001", calls("alice", 3), ""),
                                                   ("810002", calls("bob", 3), "")])
    with running_mailbox() as (box, port):
        for name, value in (("HOST", "127.0.0.1"), ("PORT", str(port)), ("FROM_ADDRESS", "bank@example.com"),
                            ("STARTTLS", "false")):
            monkeypatch.setenv(f"VOICEAUTH_OTP__SMTP__{name}", value)
        assert ivr("customers", "import", str(customers))[0] == OK
        ivr("consent", "import", str(manifest), "--channel", "crm")
        code, out, _ = ivr("enroll", "--manifest", str(manifest), "--json")
        assert code == OK and json.loads(out)["enrolled"] == 2
        notices = box.notices(to="ana@example.org")
        assert len(notices) == 1 and "huella de voz" in notices[0]
        outcomes = [json.loads(line) for line in (tmp_path / "m.csv.progress").read_text().splitlines()[1:]]
        assert "no contact on file" in next(o["detail"] for o in outcomes if o["account"] == "810002")
        code, out, _ = ivr("enroll", "--manifest", str(manifest), "--restart", "--replace", "--no-notify", "--json")
        assert code == OK and json.loads(out)["enrolled"] == 2 and len(box.notices()) == 1
    rows = audit_rows(data_dir)
    assert [r.result for r in rows if r.flow == "notify"] == ["SENT"]
    assert "customers not notified" in [r for r in rows if r.flow == "bulk-enroll"][-1].reason


def test_a_screen_hit_stores_nothing(data_dir, tmp_path, calls):
    """The watchlist hook: a refusal fails the row before any audit row or voiceprint is written."""
    from ivr.settings import Settings
    from ivr.cli.context import CliContext

    manifest = read_manifest(write_manifest(tmp_path / "m.csv", [("820001", calls("alice", 3), "")]))
    cli = CliContext(Settings())
    registry = ConsentRegistry(cli.database(), policy_version="t", store=cli.engine().store)
    registry.record_consent("820001", "crm")
    audited: list[str] = []
    screened: list[int] = []

    def watchlist(account: str, vector: np.ndarray) -> str | None:
        screened.append(vector.shape[0])
        return "sounds like a voice on the fraud watchlist"

    enroller = BulkEnroller(cli.engine(), registry, lambda a, r, res: audited.append(f"{res} {r}"), screen=watchlist)
    outcome = enroller.enrol(manifest.rows[0])
    assert (outcome.status, outcome.code) == ("failed", "screened") and screened == [cli.engine().embedder.dim]
    assert len(audited) == 1 and audited[0].startswith("FAILED bulk enrolment refused") and "watchlist" in audited[0]
    assert cli.engine().store.model_ids_for("820001") == []
    cli.close()


def test_a_watchlisted_voice_is_not_enrolled_and_enrolled_recordings_are_known_to_the_replay_check(
        data_dir, tmp_path, calls):
    from ivr.cli.context import CliContext
    from ivr.settings import Settings
    from voiceprints.audio.io import read_audio
    from voiceprints.defences import REPLAY, AttackDefences

    fraudster = calls("erin", 3, offset=5)
    assert ivr("watchlist", "add", "case-0042", *map(str, fraudster))[0] == OK
    alice = calls("alice", 3)
    manifest = write_manifest(tmp_path / "m.csv", [("830001", alice, ""), ("830002", calls("erin", 3), "")])
    ivr("consent", "import", str(manifest), "--channel", "crm")
    code, out, _ = ivr("enroll", "--manifest", str(manifest), "--json")
    report = json.loads(out)
    assert code == BAD_INPUT and report["enrolled"] == 1
    [failure] = report["failures"]
    assert failure["account"] == "830002" and failure["code"] == "screened" and "case-0042" in failure["detail"]
    refused = [r for r in audit_rows(data_dir) if r.flow == "enroll" and r.result == "FAILED"]
    assert [r.identity for r in refused] == ["830002"]
    cli = CliContext(Settings())
    replayed = read_audio(alice[1])
    engine = cli.engine()
    risks = AttackDefences(engine).screen_call("830001", replayed, engine.embed_speech(replayed))
    assert REPLAY in risks.risks, "a replay of a recording used for the bulk enrolment is recognised"
    cli.close()


def test_one_long_call_is_cut_into_parts_with_equal_shares_of_the_callers_speech(utterances_of):
    """A stereo call's caller side: speech in turns, with the agent's long turns as silence between them."""
    detector = SpeechDetector(2)
    answers = [telephone_channel(c) for c in utterances_of("bob", 3)]
    gap = lambda seconds: np.zeros(int(8000 * seconds), dtype=np.float32)  # noqa: E731
    # Most of the caller's speech early in the call, then one answer after a 40 s agent turn.
    call = AudioClip(np.concatenate([answers[0].samples, gap(2), answers[1].samples, gap(40),
                                     answers[2].samples, gap(20)]), 8000)
    parts = as_utterances([call], 3, detector)
    assert sum(len(p.samples) for p in parts) == len(call.samples), "nothing lost, nothing twice"
    shares = [detector.net_speech_seconds(p) for p in parts]
    total = detector.net_speech_seconds(call)
    assert all(abs(s - total / 3) < 0.25 * total / 3 for s in shares), shares
    equal_times = [detector.net_speech_seconds(AudioClip(piece, 8000)) for piece in np.array_split(call.samples, 3)]
    assert min(equal_times) < 0.5 * total / 3, "cutting by time would have starved a part"
    wide = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
    assert [p.sample_rate for p in as_utterances([call, wide], 3, detector)] == [8000] * 3
    assert as_utterances(answers, 3, detector) == answers
