"""Consent before enrolment, opt-out that erases the voiceprint, and retention limits with a purge."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.audit import AuditEntry, AuditLog
from ivr.consent import ConsentRegistry, RetentionConfig, last_voiceprint_use, purge, record_voiceprint_use
from ivr.db import OtpChallenge, open_database
from ivr.db.customers import CustomerDirectory
from ivr.limits import Limits
from ivr.otp.service import OtpService
from tests.fakes.postgres import temporary_database
from tests.store_support import unit_vectors
from voiceprints.errors import StoreUnavailableError
from voiceprints.store.base import EnrolmentMeta
from voiceprints.store.crypto import KeyRing
from voiceprints.store.sql import SqlVoiceprintStore

MODEL = "test-model"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path):
    """One database for the voiceprint store and the IVR tables, as deployed by default."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voiceprints.db'}"
        return
    with temporary_database("ivr_consent_test") as pg:
        yield pg


@pytest.fixture
def store(url: str):
    with SqlVoiceprintStore(url, KeyRing.generate()) as opened:
        yield opened


@pytest.fixture
def db(url: str, store):
    database = open_database(url)
    yield database
    database.dispose()


def enrol(store, speaker: str, seed: int = 0) -> None:
    store.save_voiceprint(speaker, MODEL, unit_vectors(1, seed=seed)[0], EnrolmentMeta(3, 9.0))


def test_enrolment_needs_consent_recorded_with_time_channel_and_notice_version(db) -> None:
    registry = ConsentRegistry(db, policy_version="2025-01")
    refused = registry.may_enrol("1001")
    assert not refused and "no consent recorded" in refused.reason
    state = registry.record_consent("1001", "ivr-enroll")
    assert state.consented and not state.opted_out
    assert (state.consent.channel, state.consent.policy_version) == ("ivr-enroll", "2025-01")
    assert state.consent.at.tzinfo is not None
    allowed = registry.may_enrol("1001")
    assert allowed and "ivr-enroll" in allowed.reason and "2025-01" in allowed.reason
    assert registry.may_enrol("1001", passive=True)


def test_opting_out_erases_the_voiceprint_and_blocks_enrolment(db, store) -> None:
    enrol(store, "1001")
    enrol(store, "1002", seed=1)
    registry = ConsentRegistry(db, policy_version="2025-01", store=store)
    registry.record_consent("1001", "ivr-enroll")
    result = registry.opt_out("1001", "ivr-optout")
    assert result.voiceprint_deleted and store.model_ids_for("1001") == []
    assert store.model_ids_for("1002") == [MODEL], "nobody else's voiceprint is touched"
    assert result.state.opted_out and not result.state.consented
    assert [r.kind for r in result.state.history] == ["granted", "opted_out"]
    assert result.state.history[-1].voiceprint_deleted is True
    for passive in (False, True):
        permission = registry.may_enrol("1001", passive=passive)
        assert not permission and "opted out" in permission.reason


def test_after_an_opt_out_only_fresh_explicit_consent_allows_enrolment_never_passive(db, store) -> None:
    registry = ConsentRegistry(db, policy_version="2025-02", store=store)
    registry.opt_out("1001", "cli")
    registry.record_consent("1001", "ivr-enroll")
    assert registry.may_enrol("1001")
    passive = registry.may_enrol("1001", passive=True)
    assert not passive and "never enrolled passively again" in passive.reason


def test_an_opt_out_is_kept_even_when_the_store_cannot_erase_and_purge_finishes_the_job(db, store) -> None:
    class Unreachable:
        def delete_speaker(self, speaker_id: str) -> bool:
            raise StoreUnavailableError("the voiceprint store is down")

    enrol(store, "1001")
    with pytest.raises(StoreUnavailableError):
        ConsentRegistry(db, policy_version="v", store=Unreachable()).opt_out("1001", "ivr-optout")  # type: ignore[arg-type]
    registry = ConsentRegistry(db, policy_version="v", store=store)
    assert registry.state("1001").opted_out and not registry.may_enrol("1001", passive=True)
    report = purge(db, RetentionConfig(), store=store, consent=registry)
    assert report.voiceprints_opted_out == ["1001"] and store.model_ids_for("1001") == []


def test_bad_identities_and_channels_are_refused(db) -> None:
    registry = ConsentRegistry(db, policy_version="v")
    with pytest.raises(ValueError, match="identity"):
        registry.record_consent("", "ivr-enroll")
    with pytest.raises(ValueError, match="channel"):
        registry.opt_out("1001", "x" * 40)


def test_purge_applies_every_retention_limit_and_dry_run_changes_nothing(db, store) -> None:
    now = datetime.now(timezone.utc)
    later = now + timedelta(days=400)
    registry = ConsentRegistry(db, policy_version="v", store=store)
    for speaker, seed in (("unused", 0), ("in-use", 1), ("left-over", 2)):
        enrol(store, speaker, seed)
        registry.record_consent(speaker, "ivr-enroll")
    record_voiceprint_use(db, "in-use", clock=lambda: later - timedelta(days=10))
    assert last_voiceprint_use(db, "in-use") == later - timedelta(days=10)
    with db.transaction() as session:  # the opt-out was recorded but the erasure never happened
        from ivr.db import ConsentEvent

        session.add(ConsentEvent(identity="left-over", kind="opted_out", at=now, channel="ivr-optout"))
    audit = AuditLog(db, key=b"a" * 32)
    audit.record(AuditEntry(flow="verify", result="PASS", identity="in-use", at=now))
    audit.record(AuditEntry(flow="verify", result="PASS", identity="in-use", at=later - timedelta(days=1)))
    customer = CustomerDirectory(db).add("in-use", phone_e164="+573001234567")
    otp = OtpService(db, b"s" * 32, clock=lambda: now)
    otp.issue(customer.id, "sms")
    limits = Limits(db, clock=lambda: now)
    limits.record_failure("in-use", "c" * 64)

    config = RetentionConfig(voiceprint_unused_days=365, audit_days=365)
    dry = purge(
        db,
        config,
        store=store,
        consent=registry,
        limits=Limits(db, clock=lambda: later),
        clock=lambda: later,
        dry_run=True,
    )
    assert (dry.voiceprints_expired, dry.voiceprints_opted_out) == (["unused"], ["left-over"])
    assert (dry.audit_events, dry.otp_challenges, dry.limit_events) == (1, 1, 2)
    assert sorted(store.speakers()) == ["in-use", "left-over", "unused"] and len(audit.query()) == 2

    done = purge(
        db, config, store=store, consent=registry, limits=Limits(db, clock=lambda: later), clock=lambda: later
    )
    assert done.to_dict() | {"dry_run": True} == dry.to_dict()
    assert list(store.speakers()) == ["in-use"]
    assert [r.at for r in audit.query()] == [later - timedelta(days=1)]
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OtpChallenge)) == 0
    expired = registry.may_enrol("unused")
    assert not expired and "expired" in expired.reason, "a new voiceprint needs consent again"
    assert "unused voiceprint" in done.text() and "deleted" in done.text()


def test_retention_can_keep_voiceprints_forever(db, store) -> None:
    enrol(store, "1001")
    report = purge(
        db,
        RetentionConfig(voiceprint_unused_days=None),
        store=store,
        consent=ConsentRegistry(db, policy_version="v"),
        clock=lambda: datetime.now(timezone.utc) + timedelta(days=5000),
    )
    assert report.voiceprints_expired == [] and list(store.speakers()) == ["1001"]
