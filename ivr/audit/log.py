"""The audit log: one database row per authentication attempt or admin action.

What is kept is what an admin needs to explain a decision and tune the
thresholds: the claimed identity, a keyed hash of the caller number, every
factor tried with its outcome, score and threshold, the decision and the
policy rule that fired, latency and errors. Audio, one-time codes and
knowledge answers are never passed in; free text (reasons, errors, factor
details) is scrubbed of digit runs as a second line of defence, because a
code or an answer is exactly a run of digits.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy import delete, func, select

from ivr.db.base import utc_now
from ivr.db.engine import Database
from ivr.db.guard import unavailable_as
from ivr.db.models_policy import AuditEvent
from ivr.policy.model import FactorAttempt, PolicyDecision

Clock = Callable[[], datetime]
T = TypeVar("T")

_HASH = re.compile(r"^[0-9a-f]{64}$")
# ISO timestamps ("locked until 2025-01-01T00:30:00") are kept; other runs of
# 4+ digits, also split by spaces, dashes or slashes ("12 34 56",
# "1987-03-15", "+57 300 123 4567"), are masked. Decimals (scores) are kept.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:[+-]\d{2}:\d{2}|Z)?")
_DIGIT_RUN = re.compile(r"(?<![\d.])\d(?:[ \-/]?\d){3,}(?!\.\d)(?!\d)")
_TEXT_LIMIT = 200


class AuditUnavailableError(Exception):
    """The audit row could not be written or read (database unreachable)."""

    code = "audit_unavailable"


def scrub(text: str | None) -> str | None:
    """Mask anything that could be a code, an answer or a phone number; cut to the column width."""
    if text is None:
        return None
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    protected = _TIMESTAMP.sub(keep, text)
    masked = _DIGIT_RUN.sub(lambda m: "#" * len(m.group(0)), protected)
    restored = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], masked)
    return " ".join(restored.split())[:_TEXT_LIMIT]


@dataclass(frozen=True)
class AuditEntry:
    """What a flow reports at the end of an attempt (or an admin command after an action)."""

    flow: str  # "verify", "enroll", "optout", "unlock"...
    result: str  # VOICEAUTH_RESULT, e.g. PASS, FAIL, LOCKED; or "OK" for admin actions
    call_id: str | None = None
    identity: str | None = None
    # ServerSecrets.caller_hash(number): never the number itself.
    caller_hash: str | None = None
    factors: Sequence[FactorAttempt] = ()
    decision: PolicyDecision | None = None
    reason: str = ""
    error: str | None = None
    latency_ms: float | None = None
    locked_out: bool = False
    policy_version: str | None = None
    at: datetime | None = None  # default: now


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    call_id: str | None
    flow: str
    identity: str | None
    caller_hash: str | None
    factors: list[dict[str, Any]] = field(default_factory=list)
    decision: str | None = None
    rule: str | None = None
    result: str = ""
    reason: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    locked_out: bool = False
    policy_version: str | None = None

    @classmethod
    def of(cls, row: AuditEvent) -> AuditRecord:
        return cls(
            row.id,
            row.at,
            row.call_id,
            row.flow,
            row.identity,
            row.caller_hash,
            list(row.factors or []),
            row.decision,
            row.rule,
            row.result,
            row.reason,
            row.error,
            row.latency_ms,
            bool(row.locked_out),
            row.policy_version,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


_guarded = unavailable_as(AuditUnavailableError, "the audit log cannot be reached")


def _factor_row(attempt: FactorAttempt) -> dict[str, Any]:
    row = attempt.to_dict()
    row["detail"] = scrub(attempt.detail) or ""
    return row


class AuditLog:
    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    @_guarded
    def record(self, entry: AuditEntry) -> int:
        """Store one entry; returns its id. ValueError if a raw caller number is passed as the hash."""
        if entry.caller_hash is not None and not _HASH.match(entry.caller_hash):
            raise ValueError(
                "caller_hash must be ServerSecrets.caller_hash(number) (64 hex digits), never the number"
            )
        decision = entry.decision
        row = AuditEvent(
            at=entry.at or self._clock(),
            call_id=entry.call_id[:64] if entry.call_id else None,
            flow=entry.flow[:16],
            identity=entry.identity,
            caller_hash=entry.caller_hash,
            factors=[_factor_row(f) for f in entry.factors],
            decision=decision.action.value if decision else None,
            rule=decision.rule if decision else None,
            result=entry.result[:16],
            reason=scrub(entry.reason or (decision.reason if decision else "")) or None,
            error=scrub(entry.error),
            latency_ms=entry.latency_ms,
            locked_out=entry.locked_out,
            policy_version=entry.policy_version,
        )
        with self._db.transaction() as session:
            session.add(row)
            session.flush()
            return row.id

    @_guarded
    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        identity: str | None = None,
        result: str | None = None,
        flow: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Entries with since <= at < until, oldest first (the newest ``limit`` when limited)."""
        stmt = select(AuditEvent)
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.at < until)
        if identity is not None:
            stmt = stmt.where(AuditEvent.identity == identity)
        if result is not None:
            stmt = stmt.where(func.upper(AuditEvent.result) == result.upper())
        if flow is not None:
            stmt = stmt.where(AuditEvent.flow == flow)
        if limit is not None:
            stmt = stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
        else:
            stmt = stmt.order_by(AuditEvent.at, AuditEvent.id)
        with self._db.sessions() as session:
            records = [AuditRecord.of(row) for row in session.scalars(stmt)]
        return sorted(records, key=lambda r: (r.at, r.id)) if limit is not None else records

    @_guarded
    def purge(self, older_than: datetime, *, dry_run: bool = False) -> int:
        """Delete entries from before ``older_than``; returns how many (would be) deleted."""
        with self._db.transaction() as session:
            if dry_run:
                return (
                    session.scalar(
                        select(func.count()).select_from(AuditEvent).where(AuditEvent.at < older_than)
                    )
                    or 0
                )
            return session.execute(delete(AuditEvent).where(AuditEvent.at < older_than)).rowcount
