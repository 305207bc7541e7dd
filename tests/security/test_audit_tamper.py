"""Attack: change, delete or avoid the audit record of what happened.

Before: audit rows were plain rows any database role could edit, a failed
audit write let a PASS through, and admin commands that change biometric or
contact data left no record.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ivr.audit.log import AuditEntry, AuditLog
from ivr.call import CallInfo
from ivr.cli.app import app
from ivr.db.engine import open_database
from ivr.flows.guard import Guard
from ivr.service.calls import run_call
from ivr.flows.verify import VerifyFlow
from tests.scripted_call import Keys, Say, ScriptedCall
from tests.security.conftest import VICTIM
from tests.test_flows import phone_speech
from voiceprints.config import CoreConfig


@pytest.fixture
def cli(tmp_path: Path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(data))
    for name in ("VOICEAUTH_KEYS", "VOICEAUTH_STORE__URL", "VOICEAUTH_SECRETS__FILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout + result.stderr

    run("locks", "list")  # creates the database and the secrets
    return run, data


def _sql(data: Path, statement: str) -> None:
    db = open_database(CoreConfig(data_dir=data).database_url())
    with db.engine.begin() as connection:
        connection.execute(text(statement))
    db.dispose()


def test_a_changed_a_deleted_and_a_truncated_audit_row_are_each_reported(cli):
    run, data = cli
    for account in ("1001", "1002", "1003", "1004"):
        assert run("customers", "set", account, "--email", f"c{account}@bank.co")[0] == 0
    code, out = run("audit", "verify")
    assert code == 0 and "intact" in out

    _sql(data, "UPDATE audit_events SET result = 'OK-ISH' WHERE id = 2")
    code, out = run("audit", "verify")
    assert code == 1 and "row 2: its content was changed" in out
    _sql(data, "UPDATE audit_events SET result = 'OK' WHERE id = 2")
    _sql(data, "UPDATE audit_events SET identity = '9999' WHERE id = 1")
    code, out = run("audit", "verify")
    assert code == 1 and "row 1: its account was changed" in out
    _sql(data, "UPDATE audit_events SET identity = '1001' WHERE id = 1")
    assert run("audit", "verify")[0] == 0, "restored rows verify again: the check is exact, not a heuristic"

    _sql(data, "DELETE FROM audit_events WHERE id = 2")
    code, out = run("audit", "verify")
    assert code == 1 and "row 3: does not follow row 1" in out
    _sql(data, "DELETE FROM audit_events WHERE id = 4")
    code, out = run("audit", "verify", "--json")
    assert code == 1 and "the newest rows were deleted" in out


def test_every_admin_command_that_changes_or_reads_out_personal_data_is_audited(cli, tmp_path: Path, say):
    from voiceprints.audio.io import write_wav

    run, data = cli
    wavs = []
    for i, text_ in enumerate(["The quick brown fox jumps over the lazy dog.",
                               "My voice is my password, please verify me now.",
                               "Colourless green ideas sleep furiously tonight."]):
        clip = say("alice", text_)
        path = tmp_path / f"alice{i}.wav"
        write_wav(path, clip)
        wavs.append(str(path))
    csv = tmp_path / "customers.csv"
    csv.write_text("external_id,phone,email,preferred_channel,language,dob\n"
                   "2001,+573001234567,ana@bank.co,sms,es,15/03/1987\n")
    commands = [
        ("customers", "import", str(csv)), ("customers", "set", "2001", "--language", "en"),
        ("enroll", "2001", *wavs), ("voiceprints", "export", "2001", "--out", str(tmp_path / "x.json")),
        ("keys", "rotate"), ("customers", "reset", "2001"), ("consent", "optout", "2001"),
        ("locks", "unlock", "2001"), ("enroll", "2002", *wavs), ("voiceprints", "delete", "2002"),
        ("customers", "erase", "2001", "--yes"), ("purge",),
    ]
    for command in commands:
        code, out = run(*command)
        assert code == 0, (command, out)
    flows = [r.flow for r in AuditLog(open_database(CoreConfig(data_dir=data).database_url())).query()]
    assert flows == ["cust-import", "cust-set", "enroll", "vp-export", "keys-rotate", "kba-reset", "optout",
                     "unlock", "enroll", "vp-delete", "erase", "purge"], flows
    assert run("audit", "verify")[0] == 0


async def test_a_pass_whose_audit_record_cannot_be_written_is_not_a_pass(bank, utterances_of, tmp_path: Path):
    bank.enrol_victim(utterances_of)
    gone = open_database(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    with gone.engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_chain"))  # the audit log breaks; everything else works
    kit = bank.lines.guard.kit
    broken = Guard(type(kit)(**{**kit.__dict__, "audit": AuditLog(gone, key=bank.lines.secrets.audit_key)}))
    flow = VerifyFlow(bank.lines.engine, bank.lines.config, broken, bank.lines.steps)
    call = ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]},
                        info=CallInfo("audit-down", "+573001112233", "en", {}))
    await run_call(flow, call)
    assert call.result["VOICEAUTH_RESULT"] == "ERROR", call.result
    assert "audit log is unavailable" in call.result["VOICEAUTH_REASON"]
    # The same call with the audit log working passes: it was the audit, not the voice.
    ok = ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                       "verify-speak": [Say(phone_speech(utterances_of, "alice", 6))]},
                      info=CallInfo("audit-up", "+573001112233", "en", {}))
    await run_call(bank.lines.voice_only(), ok)
    assert ok.result["VOICEAUTH_RESULT"] == "PASS"


def test_audit_rows_cannot_be_written_without_the_key_that_lives_outside_the_database(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    with pytest.raises(ValueError, match="audit key"):
        AuditLog(db).record(AuditEntry(flow="verify", result="PASS"))
    AuditLog(db, key=b"k" * 32).record(AuditEntry(flow="verify", result="PASS", identity="1"))
    forged = AuditLog(db, key=b"f" * 32)
    forged.record(AuditEntry(flow="verify", result="PASS", identity="2"))
    report = AuditLog(db, key=b"k" * 32).verify()
    assert not report.intact and "row 2: its content was changed" in str(report.problems[0])
