"""The audit log: every attempt recorded with its factors and the rule that fired, never a secret."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.audit import AuditEntry, AuditLog, AuditUnavailableError, daily_summary, scrub, write_csv, write_json
from ivr.db import open_database
from ivr.db.customers import CustomerDirectory
from ivr.knowledge import KnowledgeService
from ivr.otp.service import OtpService
from ivr.policy import Action, Factor, FactorAttempt, FactorOutcome, PolicyDecision
from ivr.secrets import caller_hash

DAY = datetime(2025, 6, 1, tzinfo=timezone.utc)
KEY = b"k" * 32
NUMBER = "+573001234567"


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


@pytest.fixture
def log(db) -> AuditLog:
    return AuditLog(db, key=KEY)


def attempt(
    identity: str,
    result: str,
    *steps: tuple,
    at: datetime,
    rule: str,
    action: Action,
    locked_out: bool = False,
    latency_ms: float = 900.0,
) -> AuditEntry:
    factors = [FactorAttempt(Factor(s[0]), FactorOutcome(s[1]), *s[2:]) for s in steps]
    return AuditEntry(
        flow="verify",
        result=result,
        call_id=f"call-{identity}-{at.timestamp():.0f}",
        identity=identity,
        caller_hash=caller_hash(KEY, NUMBER),
        factors=factors,
        decision=PolicyDecision(action, None, rule, f"decided by {rule}"),
        latency_ms=latency_ms,
        locked_out=locked_out,
        policy_version="2025.1",
        at=at,
    )


def test_an_attempt_is_stored_with_its_factors_in_order_and_the_rule_that_fired(log: AuditLog) -> None:
    log.record(
        attempt(
            "1001",
            "PASS",
            ("voice", "inconclusive", 0.55, 0.62, 410.0),
            ("otp", "pass"),
            at=DAY,
            rule="second-factor-pass",
            action=Action.ACCEPT,
        )
    )
    (record,) = log.query()
    assert (record.identity, record.result, record.decision, record.rule) == (
        "1001",
        "PASS",
        "accept",
        "second-factor-pass",
    )
    assert [(f["factor"], f["outcome"], f["score"], f["threshold"]) for f in record.factors] == [
        ("voice", "inconclusive", 0.55, 0.62),
        ("otp", "pass", None, None),
    ]
    assert record.caller_hash == caller_hash(KEY, NUMBER) and NUMBER not in json.dumps(record.to_dict())
    assert record.at == DAY and record.latency_ms == 900.0 and record.policy_version == "2025.1"


def test_filters_select_by_date_identity_result_and_flow(log: AuditLog) -> None:
    log.record(attempt("1001", "PASS", ("voice", "pass"), at=DAY, rule="voice-pass", action=Action.ACCEPT))
    log.record(
        attempt(
            "1002", "FAIL", ("voice", "fail"), at=DAY + timedelta(hours=5), rule="r", action=Action.REJECT
        )
    )
    log.record(
        attempt("1001", "FAIL", ("voice", "fail"), at=DAY + timedelta(days=1), rule="r", action=Action.REJECT)
    )
    log.record(AuditEntry(flow="optout", result="OK", identity="1001", at=DAY + timedelta(days=1, hours=1)))
    assert [r.identity for r in log.query(since=DAY, until=DAY + timedelta(days=1))] == ["1001", "1002"]
    assert [r.at for r in log.query(identity="1001", result="fail")] == [DAY + timedelta(days=1)]
    assert [r.flow for r in log.query(flow="optout")] == ["optout"]
    assert [r.identity for r in log.query(limit=2)] == ["1001", "1001"]  # the newest two, oldest first
    assert log.query(identity="nobody") == []


def test_exports_are_readable_csv_and_json(log: AuditLog) -> None:
    log.record(
        attempt(
            "1001",
            "PASS",
            ("voice", "fail", 0.21, 0.45),
            ("otp", "pass"),
            at=DAY,
            rule="second-factor-pass",
            action=Action.ACCEPT,
        )
    )
    records = log.query()
    out = io.StringIO()
    assert write_csv(records, out) == 1
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["identity"] == "1001" and row["rule"] == "second-factor-pass"
    assert row["factors"] == "voice:fail(0.210/0.450) > otp:pass"
    out = io.StringIO()
    write_json(records, out)
    (item,) = json.loads(out.getvalue())
    assert item["factors"][0]["score"] == 0.21 and item["at"].startswith("2025-06-01T00:00:00")


def test_the_daily_summary_gives_the_rates_admins_tune_thresholds_with(log: AuditLog) -> None:
    at = DAY + timedelta(hours=9)
    log.record(
        attempt(
            "1",
            "PASS",
            ("voice", "pass", 0.8),
            at=at,
            rule="voice-pass",
            action=Action.ACCEPT,
            latency_ms=800,
        )
    )
    log.record(
        attempt(
            "2",
            "PASS",
            ("voice", "pass", 0.7),
            at=at,
            rule="voice-pass",
            action=Action.ACCEPT,
            latency_ms=1000,
        )
    )
    log.record(
        attempt(
            "3",
            "PASS",
            ("voice", "inconclusive", 0.5),
            ("otp", "pass"),
            at=at,
            rule="second-factor-pass",
            action=Action.ACCEPT,
            latency_ms=30000,
        )
    )
    log.record(
        attempt(
            "4",
            "PASS",
            ("voice", "fail", 0.2),
            ("otp", "pass"),
            at=at,
            rule="second-factor-pass",
            action=Action.ACCEPT,
            latency_ms=32000,
        )
    )
    log.record(
        attempt(
            "5",
            "LOCKED",
            ("voice", "fail", 0.1),
            ("otp", "fail"),
            at=at,
            rule="locked",
            action=Action.REJECT,
            locked_out=True,
            latency_ms=40000,
        )
    )
    log.record(
        attempt(
            "6",
            "PASS",
            ("voice", "pass"),
            at=DAY - timedelta(minutes=1),
            rule="voice-pass",
            action=Action.ACCEPT,
        )
    )  # the day before: not counted
    log.record(AuditEntry(flow="optout", result="OK", identity="7", at=at))  # not an attempt
    summary = daily_summary(log, date(2025, 6, 1))
    assert summary.attempts == 5 and summary.lockouts == 1
    assert summary.voice == {"pass": 2, "inconclusive": 1, "fail": 2}
    assert summary.voice_rates["pass"] == pytest.approx(0.4) and summary.voice_rates["fail"] == pytest.approx(
        0.4
    )
    assert summary.step_up_rate == pytest.approx(0.6)
    assert (summary.step_ups_passed, summary.voice_fail_then_passed) == (2, 1)
    assert summary.results == {"PASS": 4, "LOCKED": 1} and summary.rules["voice-pass"] == 2
    assert summary.latency_ms_p50 == 30000
    text_report = summary.text()
    assert "5 verification attempt(s), 1 lockout(s)" in text_report and "step-up rate 60.0 %" in text_report
    assert daily_summary(log, date(2025, 6, 3)).attempts == 0


def test_no_code_answer_or_phone_number_ever_reaches_the_audit_table(db, log: AuditLog) -> None:
    customer = CustomerDirectory(db).add("700123", phone_e164=NUMBER)
    issued = OtpService(db, b"s" * 32).issue(customer.id, "sms")
    knowledge = KnowledgeService(db)
    knowledge.set_answers(customer, {"dob": "15/03/1987", "doc_last4": "3318"})
    assert knowledge.check(customer, "doc_last4", "3318")
    # A careless flow writing what the caller typed into the free-text fields:
    log.record(
        AuditEntry(
            flow="verify",
            result="PASS",
            identity="700123",
            caller_hash=caller_hash(KEY, NUMBER),
            factors=[
                FactorAttempt(Factor.OTP, FactorOutcome.FAIL, detail=f"caller typed {issued.code}"),
                FactorAttempt(
                    Factor.KBA, FactorOutcome.PASS, detail="answers 3318 and 1987-03-15 (15031987)"
                ),
            ],
            reason=f"code {issued.code} accepted for +57 300 123 4567",
            error=f"sms to {NUMBER} slow",
        )
    )
    with db.engine.connect() as connection:
        # Every column but the timestamp and the caller hash, whose random-looking
        # digits could contain a 4-digit answer by chance.
        dump = " ".join(
            str(v)
            for row in connection.execute(
                text(
                    "SELECT call_id, flow, identity, factors, decision, rule, result, reason, error, "
                    "latency_ms, policy_version FROM audit_events"
                )
            )
            for v in row
        )
    for secret in (issued.code, "3318", "1987", "15031987", "3001234567", "4567"):
        assert secret not in dump, f"{secret!r} leaked into the audit log"
    assert "700123" in dump, "the claimed identity itself is kept in its own column"


def test_scrubbing_keeps_scores_times_and_short_counts() -> None:
    assert scrub("score 0.7134 below 0.8000 after 3 tries") == "score 0.7134 below 0.8000 after 3 tries"
    assert scrub("locked until 2025-06-01T12:30:00+00:00") == "locked until 2025-06-01T12:30:00+00:00"
    assert scrub("typed 12 34 56") == "typed ########"
    assert len(scrub("x" * 500) or "") == 200


@pytest.mark.parametrize("text, kept", [
    ("the caller recording of 2026-12-05 18:42 UTC", "2026-12-05 18:42 UTC"),
    ("replayed: heard at 2026-12-05 18:42:04 UTC", "2026-12-05 18:42:04 UTC"),
    ("locked until 2026-12-05T18:42:04.250+00:00", "2026-12-05T18:42:04.250+00:00"),
    ("locked until 2026-12-05T18:42:04Z", "2026-12-05T18:42:04Z"),
    ("tried again at 18:42:04", "18:42:04"),
    ("tried again at 9:05", "9:05"),
])
def test_scrubbing_keeps_dates_and_times_readable(text: str, kept: str) -> None:
    """A log line once read '#############:04 UTC': the time is what the admin needs to match events."""
    assert scrub(text) == text and kept in (scrub(text) or "")


def test_scrubbing_masks_identifiers_next_to_a_timestamp() -> None:
    text = "account 700123 from +573001234567 (+57 300 123 4567) locked at 2026-12-05 18:42:04 UTC, born 1987-03-15"
    scrubbed = scrub(text) or ""
    for identifier in ("700123", "573001234567", "300 123 4567", "1987-03-15", "1987"):
        assert identifier not in scrubbed, scrubbed
    assert "2026-12-05 18:42:04 UTC" in scrubbed
    assert scrubbed.startswith("account ###### from +############ (+")


def test_a_raw_caller_number_is_refused_as_the_caller_hash(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="never the number"):
        log.record(AuditEntry(flow="verify", result="PASS", caller_hash=NUMBER))
    assert log.query() == []


def test_old_entries_are_purged(log: AuditLog) -> None:
    log.record(
        attempt("1", "PASS", ("voice", "pass"), at=DAY - timedelta(days=400), rule="v", action=Action.ACCEPT)
    )
    log.record(attempt("2", "PASS", ("voice", "pass"), at=DAY, rule="v", action=Action.ACCEPT))
    assert log.purge(DAY - timedelta(days=365), dry_run=True) == 1 and len(log.query()) == 2
    assert log.purge(DAY - timedelta(days=365)) == 1
    assert [r.identity for r in log.query()] == ["2"]


def test_an_unreachable_database_is_a_clear_error() -> None:
    gone = open_database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1", migrate=False)
    try:
        with pytest.raises(AuditUnavailableError, match="cannot be reached"):
            AuditLog(gone, key=KEY).record(AuditEntry(flow="verify", result="PASS"))
    finally:
        gone.dispose()
