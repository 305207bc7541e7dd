"""The fallback admin commands as an admin types them: customers, consent, locks, audit, policy, purge."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivr.cli.app import app
from ivr.db import open_database
from ivr.knowledge import KnowledgeService
from ivr.limits import Limits
from ivr.secrets import SecretsConfig, load_server_secrets
from tests.store_support import unit_vectors
from voiceprints.config import CoreConfig
from voiceprints.store.base import EnrolmentMeta
from voiceprints.store.sql import open_store

OK, BAD_INPUT, ERROR = 0, 6, 7
CSV = (
    "external_id,phone,email,preferred_channel,language,dob,doc_last4\n"
    "700123,+57 300 123 4567,maria@example.com,sms,es,15/03/1987,3318\n"
    "700124,,john@example.org,,en,1990-12-01,\n"
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(data))
    for name in (
        "VOICEAUTH_KEYS",
        "VOICEAUTH_STORE__URL",
        "VOICEAUTH_SECRETS__FILE",
        "VOICEAUTH_SECRETS__KNOWLEDGE_PEPPER",
    ):
        monkeypatch.delenv(name, raising=False)
    return data


def audit_key(db) -> bytes:  # type: ignore[no-untyped-def]
    """The key the CLI seals audit rows with (the data directory's generated secrets)."""
    url = str(db.engine.url)
    return load_server_secrets(SecretsConfig(), Path(url.removeprefix("sqlite:///")).parent).audit_key


@pytest.fixture
def ivr(data_dir: Path):
    """Run ``ivr ARGS``; returns (exit code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture
def db(data_dir: Path, ivr):
    ivr("locks", "list")  # let the CLI create the database and the secrets first
    database = open_database(CoreConfig(data_dir=data_dir).database_url())
    yield database
    database.dispose()


def test_import_stores_customers_and_peppered_answers(ivr, tmp_path: Path, data_dir: Path, db) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV)
    code, out, _ = ivr("customers", "import", str(path), "--json")
    assert code == OK and json.loads(out) == {
        "customers_added": 2,
        "customers_updated": 0,
        "answers_stored": 3,
    }
    pepper = load_server_secrets(SecretsConfig(), data_dir).knowledge_pepper
    from ivr.db.customers import CustomerDirectory

    maria = CustomerDirectory(db).get("700123")
    assert KnowledgeService(db, pepper=pepper).check(maria, "doc_last4", "3318")
    assert not KnowledgeService(db).check(maria, "doc_last4", "3318"), (
        "answers are hashed with the server pepper"
    )

    path.write_text(CSV.replace("+57 300 123 4567", "300"))
    code, _, err = ivr("customers", "import", str(path))
    assert code == BAD_INPUT and "line 2, phone" in err and "nothing imported" in err


def test_set_show_and_reset_a_customer(ivr, tmp_path: Path) -> None:
    code, out, _ = ivr("customers", "set", "1001", "--phone", "+57 300 123 4567", "--language", "en")
    assert code == OK and "created 1001" in out and "+57 *** *** 4567" in out and "3001234567" not in out
    code, out, _ = ivr(
        "customers", "set", "1001", "--email", "ana@example.com", "--channel", "email", "--json"
    )
    assert code == OK and json.loads(out)["channel"] == "email" and json.loads(out)["created"] is False
    code, out, _ = ivr("customers", "show", "1001", "--json")
    shown = json.loads(out)
    assert (shown["language"], shown["questions"], shown["locked"]) == ("en", [], False)

    code, _, err = ivr("customers", "set", "1001", "--phone", "12")
    assert code == BAD_INPUT and "E.164" in err
    code, _, err = ivr("customers", "set", "1001", "--channel", "fax")
    assert code == BAD_INPUT and "fax" in err
    code, _, err = ivr("customers", "set", "1001", "--email", "")
    assert code == BAD_INPUT and "no e-mail address" in err, "cannot remove the address codes are sent to"

    path = tmp_path / "answers.csv"
    path.write_text("external_id,dob,postal_code\n1001,1980-01-02,110111\n")
    assert ivr("customers", "import", str(path))[0] == OK
    code, out, _ = ivr("customers", "reset", "1001", "--json")
    assert code == OK and json.loads(out)["answers_removed"] == 2
    code, out, err = ivr("customers", "reset", "9999")
    assert code == BAD_INPUT and "no customer with account 9999" in err
    code, out, _ = ivr("customers", "reset", "9999", "--json")
    assert code == BAD_INPUT and json.loads(out)["error"] == "unknown_account"


def test_opt_out_erases_the_voiceprint_and_shows_in_consent_and_audit(ivr, data_dir: Path) -> None:
    store = open_store(CoreConfig(data_dir=data_dir))
    store.save_voiceprint("1001", "m", unit_vectors(1)[0], EnrolmentMeta(3, 9.0))
    store.close()
    code, out, _ = ivr("consent", "optout", "1001", "--json")
    assert code == OK and json.loads(out) == {
        "account": "1001",
        "opted_out": True,
        "voiceprint_deleted": True,
    }
    store = open_store(CoreConfig(data_dir=data_dir))
    assert store.model_ids_for("1001") == []
    store.close()
    code, out, _ = ivr("consent", "show", "1001", "--json")
    shown = json.loads(out)
    assert shown["opted_out"] and not shown["may_enrol"] and shown["history"][0]["channel"] == "cli"
    code, out, _ = ivr("consent", "show", "1001")
    assert "opted out" in out and "opted_out" in out
    code, out, _ = ivr("audit", "--flow", "optout", "--json")
    assert [(r["identity"], r["reason"]) for r in json.loads(out)] == [
        ("1001", "opted out by an admin; voiceprint erased")
    ]


def test_locks_are_listed_and_lifted_by_an_admin(ivr, db, data_dir: Path) -> None:
    secrets = load_server_secrets(SecretsConfig(), data_dir)
    limits = Limits(db)
    for _ in range(5):
        limits.record_failure("1001", secrets.caller_hash("+573001234567"), "otp")
    code, out, _ = ivr("locks", "list", "--json")
    assert code == OK and [(r["kind"], r["subject"]) for r in json.loads(out)["locks"]] == [
        ("identity", "1001")
    ]
    code, out, _ = ivr("locks", "unlock", "1001")
    assert code == OK and "unlocked 1001" in out and not limits.check("1001", None).locked
    assert "nothing is locked" in ivr("locks", "list")[1]
    assert "was not locked" in ivr("locks", "unlock", "1001")[1]

    for i in range(20):
        limits.begin_attempt(f"a{i}", secrets.caller_hash("+573001234567"))
    assert limits.check(None, secrets.caller_hash("+57 300 123 4567")).locked
    code, out, _ = ivr("locks", "unlock", "--caller", "+57 300 123 4567")
    assert code == OK and not limits.check(None, secrets.caller_hash("+573001234567")).locked
    assert ivr("locks", "unlock")[0] == BAD_INPUT
    assert ivr("locks", "unlock", "--caller", "anonymous")[0] == BAD_INPUT


def test_audit_filters_export_csv_and_summarise(ivr, db, tmp_path: Path) -> None:
    from ivr.audit import AuditEntry, AuditLog
    from ivr.policy import Action, Factor, FactorAttempt, FactorOutcome, PolicyDecision

    log = AuditLog(db, key=audit_key(db))
    day = datetime(2025, 6, 1, 10, tzinfo=timezone.utc)
    for identity, outcome, result in (
        ("1001", "pass", "PASS"),
        ("1002", "fail", "FAIL"),
        ("1002", "inconclusive", "PASS"),
    ):
        factors = [FactorAttempt(Factor.VOICE, FactorOutcome(outcome), 0.5, 0.6)]
        if outcome == "inconclusive":
            factors.append(FactorAttempt(Factor.OTP, FactorOutcome.PASS))
        log.record(
            AuditEntry(
                flow="verify",
                result=result,
                identity=identity,
                factors=factors,
                at=day,
                decision=PolicyDecision(
                    Action.ACCEPT if result == "PASS" else Action.REJECT, None, "some-rule", "why"
                ),
            )
        )
    code, out, _ = ivr(
        "audit",
        "--since",
        "2025-06-01",
        "--until",
        "2025-06-01",
        "--identity",
        "1002",
        "--result",
        "PASS",
        "--json",
    )
    assert code == OK and [r["factors"][1]["factor"] for r in json.loads(out)] == ["otp"]
    target = tmp_path / "audit.csv"
    code, _, err = ivr("audit", "--since", "2025-06-01", "--csv", str(target))
    rows = list(csv.DictReader(target.open()))
    assert code == OK and len(rows) == 3 and "wrote 3 audit entries" in err
    assert rows[2]["factors"] == "voice:inconclusive(0.500/0.600) > otp:pass"
    assert "no audit entries match" in ivr("audit", "--until", "2020-01-01")[1]

    code, out, _ = ivr("audit", "summary", "--day", "2025-06-01", "--json")
    summary = json.loads(out)
    assert (
        code == OK
        and summary["attempts"] == 3
        and summary["voice"] == {"pass": 1, "fail": 1, "inconclusive": 1}
    )
    assert summary["step_up_rate"] == pytest.approx(1 / 3)
    assert "3 verification attempt(s)" in ivr("audit", "summary", "--day", "2025-06-01")[1]

    assert ivr("audit", "--since", "yesterday")[0] == BAD_INPUT
    assert ivr("audit", "summary", "--day", "2025-13-01")[0] == BAD_INPUT
    assert ivr("audit", "--since", "2025-06-02", "--until", "2025-06-01")[0] == BAD_INPUT


def test_purge_reports_and_dry_run_keeps_everything(ivr, db) -> None:
    from ivr.audit import AuditEntry, AuditLog

    AuditLog(db, key=audit_key(db)).record(
        AuditEntry(flow="verify", result="PASS", at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    )
    code, out, _ = ivr("purge", "--dry-run", "--json")
    assert code == OK and json.loads(out)["audit_events"] == 1 and json.loads(out)["dry_run"] is True
    assert len(AuditLog(db).query()) == 1
    code, out, _ = ivr("purge")
    assert code == OK and "deleted" in out and "1 audit row(s)" in out
    [left] = AuditLog(db).query()
    assert (left.flow, left.call_id) == ("purge", "cli"), "the purge itself is audited"


def test_an_unreachable_database_is_one_clear_line_and_exit_7(ivr, monkeypatch) -> None:
    monkeypatch.setenv(
        "VOICEAUTH_STORE__URL", "postgresql+psycopg://postgres@127.0.0.1:1/ivr?connect_timeout=1"
    )
    code, _, err = ivr("locks", "list")
    assert (
        code == ERROR
        and err.startswith("error: cannot open the IVR database")
        and "VOICEAUTH_STORE__URL" in err
    )
    assert "Traceback" not in err


def test_policy_check_lists_the_rules_or_names_the_mistake(ivr, monkeypatch, tmp_path: Path) -> None:
    code, out, _ = ivr("policy", "check")
    assert code == OK and "1. locked" in out and "voice-fail" in out
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: x\nrules:\n  - name: a\n    when: {factor: retina}\n    action: reject\n")
    code, _, err = ivr("policy", "check", str(bad))
    assert code == BAD_INPUT and "rule #1 'a', when.factor" in err and "no default rule" not in err
    monkeypatch.setenv("VOICEAUTH_POLICY__FILE", str(bad))
    code, out, _ = ivr("policy", "check", "--json")
    assert code == BAD_INPUT and json.loads(out)["error"] == "policy_invalid"
    monkeypatch.setenv("VOICEAUTH_POLICY__FILE", str(tmp_path / "missing.yaml"))
    code, _, err = ivr("policy", "check")
    assert code == BAD_INPUT and "does not exist" in err


def test_the_pin_column_is_documented_and_shown(ivr, tmp_path: Path) -> None:
    """Issue 22: the import's pin column was in no help, and show said "knowledge answers on file: none"."""
    code, out, _ = ivr("customers", "import", "--help")
    assert code == OK and "pin" in out
    path = tmp_path / "pins.csv"
    path.write_text("external_id,phone,pin\n4572,+57 300 123 4567,2580\n")
    assert ivr("customers", "import", str(path))[0] == OK
    code, out, _ = ivr("customers", "show", "4572")
    assert code == OK and "PIN on file: yes" in out and "2580" not in out
    code, out, _ = ivr("customers", "show", "4572", "--json")
    assert json.loads(out)["pin_on_file"] is True
