"""ORM tables of the decision policy's memory: attempt limits, consent, audit, voiceprint use.

None of these refer to ``customers.id``: the identity a caller claims need
not be a customer (an attacker walking through account numbers must be
rate-limited and audited all the same), consent and opt-out must outlive a
customer record, and voiceprints are keyed by the same account string in the
voiceprint store. Caller numbers appear only as keyed hashes (see
:mod:`ivr.secrets`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.base import Base, UtcDateTime

LIMIT_KINDS = ("identity", "caller", "withheld", "trunk")
LIMIT_EVENTS = ("attempt", "failure", "success")
CONSENT_KINDS = ("granted", "opted_out", "expired")
# Identities are account numbers (customers.external_id is 64 wide); caller
# hashes are 64 hex characters of HMAC-SHA256.
SUBJECT_LEN = 64


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LimitSubject(Base):
    """One row per claimed identity or caller hash: the row every worker locks before counting."""

    __tablename__ = "limit_subjects"
    __table_args__ = (
        UniqueConstraint("kind", "subject"),
        CheckConstraint(_one_of("kind", LIMIT_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lock_reason: Mapped[str | None] = mapped_column(String(200))
    # Only events with a larger id count: set by a success, a lock or an
    # unlock. An id rather than a time, so events in the same clock tick as
    # the reset are ordered unambiguously (ids grow under the row lock).
    reset_after_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Locks in a row without a success or an admin unlock in between: each
    # one lasts twice as long as the one before (LimitRule.escalate).
    lockouts: Mapped[int] = mapped_column(Integer, default=0)


class AuthLease(Base):
    """At most one authentication in progress per claimed identity, across every worker and line."""

    __tablename__ = "auth_leases"

    identity: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    # The call holding it (its call id), so only that call releases it.
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LimitEvent(Base):
    __tablename__ = "limit_events"
    __table_args__ = (
        CheckConstraint(_one_of("event", LIMIT_EVENTS), name="event"),
        Index("ix_limit_events_subject_id_at", "subject_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("limit_subjects.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(8))
    # Which factor failed ("voice", "otp", "kba"), for the admin's view.
    factor: Mapped[str | None] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConsentEvent(Base):
    """Append-only: consent given, withdrawn (opt-out) or the voiceprint expired by retention."""

    __tablename__ = "consent_events"
    __table_args__ = (CheckConstraint(_one_of("kind", CONSENT_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(SUBJECT_LEN), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Where it happened: "ivr-enroll", "ivr-optout", "cli", "retention"...
    channel: Mapped[str] = mapped_column(String(32))
    # The privacy-notice version the caller agreed to (consent events only).
    policy_version: Mapped[str | None] = mapped_column(String(32))
    voiceprint_deleted: Mapped[bool | None] = mapped_column(Boolean())


class VoiceprintUse(Base):
    """When a voiceprint was last scored: retention deletes voiceprints nobody uses."""

    __tablename__ = "voiceprint_use"

    identity: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEvent(Base):
    """One authentication attempt (or admin action). Never audio, codes or answers."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    call_id: Mapped[str | None] = mapped_column(String(64))
    # "verify", "enroll", "optout", "unlock"...
    flow: Mapped[str] = mapped_column(String(16))
    identity: Mapped[str | None] = mapped_column(String(SUBJECT_LEN), index=True)
    caller_hash: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    # [{"factor", "outcome", "score", "threshold", "latency_ms", "detail"}], in the order tried.
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON())
    decision: Mapped[str | None] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[float | None] = mapped_column(Float())
    locked_out: Mapped[bool] = mapped_column(Boolean(), default=False)
    policy_version: Mapped[str | None] = mapped_column(String(32))
    # Tamper evidence (ivr.audit.log): keyed digest of ``identity`` (kept when
    # an erasure blanks the account), the previous row's MAC and this row's.
    identity_digest: Mapped[str | None] = mapped_column(String(64))
    prev_mac: Mapped[str | None] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64))


# The chain's first row follows this "MAC".
GENESIS_MAC = "0" * 64


class AuditChainHead(Base):
    """One row (id 1): the newest row's MAC. Rows deleted from the end no longer match it."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    head_mac: Mapped[str] = mapped_column(String(64))
    # Rows ever sealed, for the admin's view.
    length: Mapped[int] = mapped_column(Integer, default=0)
