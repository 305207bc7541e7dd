"""Retention: how long voiceprints, audit rows and one-time-code challenges are kept.

Personal data is kept only while it serves its purpose. ``purge`` is meant to
run daily (cron or a systemd timer calling ``ivr purge``); ``dry_run`` shows
what it would remove.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr.audit.log import AuditLog
from ivr.consent.config import RetentionConfig
from ivr.consent.registry import ConsentRegistry
from ivr.db.engine import Database
from voiceprints.clock import Clock
from voiceprints.redact import mask
from ivr.db.models import OtpSend, OtpChallenge
from ivr.db.models_policy import VoiceprintUse
from ivr.limits.service import Limits
from voiceprints.store.base import VoiceprintStore

log = logging.getLogger(__name__)



def record_voiceprint_use(db: Database, identity: str, *, clock: Clock | None = None) -> None:
    """Note that ``identity``'s voiceprint was just scored (whatever the outcome), for retention."""
    now = (clock or db.clock)()
    with db.transaction() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = insert(VoiceprintUse).values(identity=identity, last_used_at=now)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["identity"], set_={"last_used_at": stmt.excluded.last_used_at}
            )
        )


def last_voiceprint_use(db: Database, identity: str) -> datetime | None:
    with db.sessions() as session:
        return session.scalar(select(VoiceprintUse.last_used_at).where(VoiceprintUse.identity == identity))


@dataclass
class PurgeReport:
    dry_run: bool
    voiceprints_expired: list[str] = field(default_factory=list)  # unused for too long
    voiceprints_opted_out: list[str] = field(default_factory=list)  # opted out, erasure had not happened
    audit_events: int = 0
    otp_challenges: int = 0
    limit_events: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb}: {len(self.voiceprints_expired)} unused voiceprint(s), "
            f"{len(self.voiceprints_opted_out)} voiceprint(s) of opted-out callers, "
            f"{self.audit_events} audit row(s), {self.otp_challenges} one-time-code challenge(s), "
            f"{self.limit_events} attempt-limit event(s)"
        )


def _otp_cutoff_filter(cutoff: datetime):  # type: ignore[no-untyped-def]
    return or_(OtpChallenge.expires_at < cutoff, OtpChallenge.consumed_at < cutoff)


def _purge_otp(session: Session, cutoff: datetime, dry_run: bool) -> int:
    condition = _otp_cutoff_filter(cutoff)
    if dry_run:
        return session.scalar(select(func.count()).select_from(OtpChallenge).where(condition)) or 0
    return session.execute(delete(OtpChallenge).where(condition)).rowcount


def purge(
    db: Database,
    config: RetentionConfig,
    *,
    store: VoiceprintStore | None,
    consent: ConsentRegistry,
    limits: Limits | None = None,
    clock: Clock | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Apply the retention limits; with ``store`` None voiceprints are left alone."""
    clock = clock or db.clock
    now = clock()
    report = PurgeReport(dry_run=dry_run)
    if store is not None:
        opted_out = consent.opted_out_identities()
        last_change: dict[str, datetime] = {}
        for summary in store.list_voiceprints():
            seen = last_change.get(summary.speaker_id)
            last_change[summary.speaker_id] = max(seen, summary.updated_at) if seen else summary.updated_at
        with db.sessions() as session:
            rows = session.execute(select(VoiceprintUse.identity, VoiceprintUse.last_used_at))
            used = {identity: at for identity, at in rows}
        cutoff = (
            now - timedelta(days=config.voiceprint_unused_days) if config.voiceprint_unused_days else None
        )
        for speaker, changed in sorted(last_change.items()):
            last = max(changed, used[speaker]) if speaker in used else changed
            if speaker in opted_out:
                report.voiceprints_opted_out.append(speaker)
            elif cutoff is not None and last < cutoff:
                report.voiceprints_expired.append(speaker)
        if not dry_run:
            for speaker in report.voiceprints_opted_out:
                store.delete_speaker(speaker)
            for speaker in report.voiceprints_expired:
                store.delete_speaker(speaker)
                consent.record_expiry(speaker)
                with db.transaction() as session:
                    session.execute(delete(VoiceprintUse).where(VoiceprintUse.identity == speaker))
                log.info(
                    "voiceprint of %s deleted: unused for more than %d days",
                    mask(speaker),
                    config.voiceprint_unused_days,
                )
    if config.audit_days:
        report.audit_events = AuditLog(db, clock=clock).purge(
            now - timedelta(days=config.audit_days), dry_run=dry_run
        )
    with db.transaction() as session:
        report.otp_challenges = _purge_otp(session, now - timedelta(days=config.otp_challenge_days), dry_run)
        if not dry_run:
            # Send-cap records older than the longest cap window (a day) can never count again.
            session.execute(delete(OtpSend).where(OtpSend.at < now - timedelta(days=1)))
    if limits is not None:
        report.limit_events = limits.purge(dry_run=dry_run)
    return report
