"""The audit log: one database row per authentication attempt or admin action, sealed in a chain.

What is kept is what an admin needs to explain a decision and tune the
thresholds: the claimed identity, a keyed hash of the caller number, every
factor tried with its outcome, score and threshold, the decision and the
policy rule that fired, latency and errors. Audio, one-time codes and
knowledge answers are never passed in; free text (reasons, errors, factor
details) is scrubbed of digit runs as a second line of defence, because a
code or an answer is exactly a run of digits.

Tamper evidence: every row carries an HMAC-SHA256 (``mac``) over its content
and the previous row's MAC (``prev_mac``), with a key that lives with the
server secrets, outside the database (``VOICEAUTH_SECRETS__AUDIT_KEY``). A
database role that can rewrite rows cannot compute a valid MAC, so
:meth:`AuditLog.verify` (``ivr audit verify``) reports a changed row, a row
deleted from the middle, and rows deleted from the end (the chain head kept
in ``audit_chain`` no longer matches). The account a row is about is sealed
as a keyed digest, so erasing a person (``ivr customers erase``) can blank
the account column without breaking the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence, TypeVar

from sqlalchemy import delete, func, select, update

from ivr.db.engine import Database
from voiceprints.clock import Clock
from ivr.db.guard import unavailable_as
from ivr.db.models_policy import GENESIS_MAC, AuditChainHead, AuditEvent
from ivr.policy.model import FactorAttempt, PolicyDecision

T = TypeVar("T")

_HASH = re.compile(r"^[0-9a-f]{64}$")
# Times are kept: an ISO date with a time, "T" or a space between them
# ("locked until 2025-01-01T00:30:00+00:00", "the recording of 2026-12-05
# 18:42 UTC"), and a time of day alone ("18:42:04"): an admin matches log
# lines and audit rows by them, and no code or answer is written with colons.
# Other runs of 4+ digits, also split by spaces, dashes or slashes ("12 34 56",
# "+57 300 123 4567", and a bare date "1987-03-15": a date of birth is a
# knowledge answer), are masked. Decimals (scores) are kept.
_TIME_OF_DAY = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,6})?)?"
_TIMESTAMP = re.compile(
    r"(?<![\d:])(?:\d{4}-[01]\d-[0-3]\d[T ])?" + _TIME_OF_DAY + r"(?:Z|[+-][01]\d:?[0-5]\d)?(?![\d:])"
)
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
    def of(cls, row: AuditEvent) -> "AuditRecord":
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


@dataclass(frozen=True)
class ChainProblem:
    row_id: int | None
    problem: str

    def __str__(self) -> str:
        return f"row {self.row_id}: {self.problem}" if self.row_id is not None else self.problem


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: rows checked, rows from before sealing existed, and every problem."""

    rows: int
    unsealed: int
    first_id: int | None
    head: str
    problems: tuple[ChainProblem, ...]
    # The oldest sealed row follows a row that is gone: retention purged it
    # (each purge writes its own audit row), or it was deleted.
    cut_at_start: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "unsealed": self.unsealed, "first_id": self.first_id, "head": self.head,
                "cut_at_start": self.cut_at_start, "intact": self.intact,
                "problems": [str(p) for p in self.problems]}


def _digest(key: bytes, identity: str | None) -> str | None:
    if identity is None:
        return None
    return hmac.new(key, b"identity:" + identity.encode(), hashlib.sha256).hexdigest()


def _sealed_content(row: AuditEvent) -> bytes:
    """Everything a row says, in one canonical byte string (what the MAC covers)."""
    at = row.at.astimezone(timezone.utc).isoformat(timespec="microseconds")
    content = {
        "id": row.id, "at": at, "call_id": row.call_id, "flow": row.flow, "identity": row.identity_digest,
        "caller_hash": row.caller_hash, "factors": row.factors, "decision": row.decision, "rule": row.rule,
        "result": row.result, "reason": row.reason, "error": row.error, "latency_ms": row.latency_ms,
        "locked_out": bool(row.locked_out), "policy_version": row.policy_version, "prev": row.prev_mac,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(key: bytes, row: AuditEvent) -> str:
    return hmac.new(key, b"audit:" + _sealed_content(row), hashlib.sha256).hexdigest()


def _factor_row(attempt: FactorAttempt) -> dict[str, Any]:
    row = attempt.to_dict()
    row["detail"] = scrub(attempt.detail) or ""
    return row


class AuditLog:
    """Writing needs the audit key (``ServerSecrets.audit_key``); reading and purging do not."""

    def __init__(self, db: Database, *, key: bytes | None = None, clock: Clock | None = None) -> None:
        self._db = db
        self._key = key
        self._clock = clock or db.clock

    def now(self) -> datetime:
        """The time on this log's clock (the database's)."""
        return self._clock()

    def _require_key(self) -> bytes:
        if not self._key:
            raise ValueError("the audit log needs the audit key to write or verify (ServerSecrets.audit_key)")
        return self._key

    @_guarded
    def record(self, entry: AuditEntry) -> int:
        """Store and seal one entry; returns its id. ValueError if a raw caller number is passed as the hash."""
        key = self._require_key()
        if entry.caller_hash is not None and not _HASH.match(entry.caller_hash):
            raise ValueError(
                "caller_hash must be ServerSecrets.caller_hash(number) (64 hex digits), never the number"
            )
        decision = entry.decision
        row = AuditEvent(
            at=(entry.at or self._clock()).astimezone(timezone.utc),
            call_id=entry.call_id[:64] if entry.call_id else None,
            flow=entry.flow[:16],
            identity=entry.identity,
            identity_digest=_digest(key, entry.identity),
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
            # The first statement writes the chain head: it takes the row lock
            # (PostgreSQL) or the write lock (SQLite) that orders every writer.
            head = session.execute(
                update(AuditChainHead).where(AuditChainHead.id == 1)
                .values(length=AuditChainHead.length + 1).returning(AuditChainHead.head_mac)
            ).scalar_one()
            row.prev_mac = head
            session.add(row)
            session.flush()
            row.mac = _mac(key, row)
            session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(head_mac=row.mac))
            return row.id

    @_guarded
    def verify(self) -> ChainReport:
        """Re-compute every seal and link; report changed, missing and truncated rows."""
        key = self._require_key()
        problems: list[ChainProblem] = []
        rows = unsealed = 0
        first_id: int | None = None
        cut = False
        previous: AuditEvent | None = None
        with self._db.sessions() as session:
            head = session.scalar(select(AuditChainHead.head_mac).where(AuditChainHead.id == 1)) or GENESIS_MAC
            for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)):
                rows += 1
                if row.mac is None:
                    unsealed += 1  # written before the chain existed (migration 0003)
                    continue
                if first_id is None:
                    first_id, cut = row.id, row.prev_mac != GENESIS_MAC
                elif previous is not None and row.prev_mac != previous.mac:
                    problems.append(ChainProblem(row.id, f"does not follow row {previous.id}: rows between them "
                                                 "were deleted or reordered"))
                if not hmac.compare_digest(_mac(key, row), row.mac):
                    problems.append(ChainProblem(row.id, "its content was changed after it was written"))
                if row.identity is not None and _digest(key, row.identity) != row.identity_digest:
                    problems.append(ChainProblem(row.id, "its account was changed after it was written"))
                previous = row
            last = previous.mac if previous is not None else GENESIS_MAC
            if head != last:
                problems.append(ChainProblem(None, "the newest rows were deleted: the chain head does not match "
                                             f"the last row ({previous.id if previous else 'none'})"))
        return ChainReport(rows, unsealed, first_id, head, tuple(problems), cut)

    @_guarded
    def pseudonymise(self, identity: str) -> int:
        """Blank ``identity`` in every row (erasure); the sealed digest keeps the chain verifiable."""
        with self._db.transaction() as session:
            return session.execute(
                update(AuditEvent).where(AuditEvent.identity == identity).values(identity=None)
            ).rowcount

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
