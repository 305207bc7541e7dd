"""Lockout and rate limits per claimed identity, caller number and trunk, shared through the database.

Every worker process counts in the same tables, so two workers on one
PostgreSQL enforce one limit. A factor is counted as failed *when it starts*
(:meth:`Limits.start_factor`) and the count is taken back only if it passes
(:meth:`Limits.finish_factor`): a caller who stays silent, hangs up mid-code
or whose worker dies gets no free try. Exactness under concurrency comes from the
first statement of every writing transaction: an upsert of the subject's row
(``INSERT ... ON CONFLICT DO UPDATE``). On PostgreSQL it takes the row lock
that ``SELECT ... FOR UPDATE`` would, and holds it to the commit; on SQLite
it is a write, so it takes the database's single write lock before anything
is read (a read first would let two writers count the same snapshot). Rows
are always locked identity first, then caller, so two transactions never
wait on each other in a cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterator, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr.db.engine import Database
from voiceprints.clock import Clock
from ivr.db.guard import unavailable_as
from ivr.db.models_policy import SUBJECT_LEN, AuthLease, LimitEvent, LimitSubject
from ivr.limits.config import LimitRule, LimitsConfig
from ivr.limits.errors import LimitsUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
IDENTITY, CALLER, WITHHELD, TRUNK = "identity", "caller", "withheld", "trunk"


@dataclass(frozen=True)
class CallOrigin:
    """Where a call comes from, as the limits count it (never a phone number).

    ``caller``: the keyed hash of a presented number. ``withheld``: the
    shared bucket of the trunk's callers whose number is withheld or invalid
    (also a keyed hash). ``trunk``: the trunk (or PBX endpoint) name.
    """

    caller: str | None = None
    withheld: str | None = None
    trunk: str | None = None


Origin = CallOrigin | str | None


def _origin(origin: Origin) -> CallOrigin:
    # A bare string is a caller hash (the form every caller before trunks used).
    if isinstance(origin, CallOrigin):
        return origin
    return CallOrigin(caller=origin)


@dataclass(frozen=True)
class FactorTicket:
    """A factor being tried: the failure already counted for it, taken back if it passes."""

    identity: str | None
    origin: CallOrigin
    factor: str
    event_ids: tuple[int, ...]


@dataclass(frozen=True)
class LimitState:
    """Where a caller stands against the limits.

    ``locked``: refuse this caller now. ``scope``: which limit ("identity" or
    "caller") locked. ``newly_locked``: the event just recorded reached a
    limit (audit it as a lockout); from ``begin_attempt`` it means this
    attempt was the last one allowed. ``recent_failures``: the identity's
    failed factors that count toward its lock right now.
    """

    locked: bool
    until: datetime | None = None
    reason: str = ""
    scope: str | None = None
    recent_failures: int = 0
    newly_locked: bool = False


@dataclass(frozen=True)
class LockInfo:
    kind: str  # "identity" or "caller"
    subject: str  # the account number, or the caller number's hash
    until: datetime
    reason: str


@dataclass
class _Row:
    kind: str
    id: int
    locked_until: datetime | None
    lock_reason: str | None
    reset_after_id: int
    lockouts: int = 0


_guarded = unavailable_as(
    LimitsUnavailableError,
    "attempt limits cannot be checked or recorded; refuse the attempt until the database is back",
)


def _check_identity(identity: str | None) -> None:
    if identity is not None and not 0 < len(identity) <= SUBJECT_LEN:
        raise ValueError(f"claimed identity must be 1-{SUBJECT_LEN} characters long")


class Limits:
    def __init__(self, db: Database, config: LimitsConfig | None = None, *, clock: Clock | None = None) -> None:
        self._db = db
        self.config = config or LimitsConfig()
        self._clock = clock or db.clock

    def _rule(self, kind: str) -> LimitRule:
        rule: LimitRule = getattr(self.config, kind)
        return rule

    # --- reading ---------------------------------------------------------
    @_guarded
    def check(self, identity: str | None, caller: Origin) -> LimitState:
        """Is this identity, number or trunk locked now? Reads only."""
        _check_identity(identity)
        now = self._clock()
        with self._db.sessions() as session:
            rows = [
                _Row(kind, r.id, r.locked_until, r.lock_reason, r.reset_after_id, r.lockouts)
                for kind, subject in self._subjects(identity, _origin(caller))
                if (
                    r := session.scalars(
                        select(LimitSubject).where(LimitSubject.kind == kind, LimitSubject.subject == subject)
                    ).one_or_none()
                )
                is not None
            ]
            failures = self._failures(session, rows, now)
        return self._state(rows, now, failures)

    @_guarded
    def locks(self) -> list[LockInfo]:
        """Every identity and caller locked right now, soonest release first."""
        now = self._clock()
        with self._db.sessions() as session:
            rows = session.scalars(
                select(LimitSubject)
                .where(LimitSubject.locked_until > now)
                .order_by(LimitSubject.locked_until)
            ).all()
            return [
                LockInfo(r.kind, r.subject, r.locked_until, r.lock_reason or "")
                for r in rows
                if r.locked_until
            ]

    # --- writing ---------------------------------------------------------
    @_guarded
    def begin_attempt(self, identity: str | None, caller: Origin) -> LimitState:
        """Admit (and count) one call's attempt, or refuse it because a limit is reached.

        Refused attempts are not counted: a locked-out caller hammering the
        line does not extend their own lock.
        """
        _check_identity(identity)
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, identity, _origin(caller), now)
            newly = self._lock_if_full(session, rows, "failure", now)
            failures = self._failures(session, rows, now)
            state = self._state(rows, now, failures)
            if state.locked:
                return replace(state, newly_locked=newly is not None)
            newly = self._record(session, rows, "attempt", None, now)
            return LimitState(
                False,
                newly.until if newly else None,
                newly.reason if newly else "",
                newly.scope if newly else None,
                failures,
                newly_locked=newly is not None,
            )

    @_guarded
    def record_failure(self, identity: str | None, caller: Origin, factor: str | None = None) -> LimitState:
        """Count a failed factor (voice, otp, kba, pin); locks the identity when it reaches its limit."""
        _check_identity(identity)
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, identity, _origin(caller), now)
            newly = self._record(session, rows, "failure", factor, now)
            return self._after(session, rows, now, newly)

    @_guarded
    def start_factor(self, identity: str | None, caller: Origin, factor: str) -> tuple[LimitState, FactorTicket]:
        """About to ask for ``factor``: refused when locked; otherwise counted as a failure already.

        The count is taken back by ``finish_factor(ticket, passed=True)``. If
        the call never gets there (hang-up, crash), the failure stands and the
        next attempt locks when the limit is full.
        """
        _check_identity(identity)
        origin = _origin(caller)
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, identity, origin, now)
            newly = self._lock_if_full(session, rows, "failure", now)
            state = self._state(rows, now, self._failures(session, rows, now))
            if state.locked:
                return replace(state, newly_locked=newly is not None), FactorTicket(identity, origin, factor, ())
            ids = self._insert_events(session, rows, "failure", factor, now)
            return state, FactorTicket(identity, origin, factor, tuple(ids.values()))

    @_guarded
    def finish_factor(self, ticket: FactorTicket, *, passed: bool, wrong_tries: int = 0) -> LimitState:
        """The factor ended: a pass takes its failure back; anything else may lock.

        ``wrong_tries``: wrong entries inside the factor that each count (a
        PIN); a failed factor already counted one of them.
        """
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, ticket.identity, ticket.origin, now)
            if passed and ticket.event_ids:
                session.execute(delete(LimitEvent).where(LimitEvent.id.in_(ticket.event_ids)))
            extra = wrong_tries if passed else max(0, wrong_tries - 1)
            last = ticket.event_ids
            for _ in range(extra):
                last = tuple(self._insert_events(session, rows, "failure", ticket.factor, now).values())
            if passed and not extra:
                return self._state(rows, now, self._failures(session, rows, now))
            newly = self._lock_if_full(session, rows, "failure", now, last_ids=last)
            return self._after(session, rows, now, newly)

    @_guarded
    def accept(self, identity: str | None, caller: Origin, factor: str | None = None) -> LimitState:
        """The moment of accepting: re-checks the locks (another call may have locked meanwhile).

        Returns the lock when there is one (the accept must not happen);
        otherwise records the success: the identity's earlier failures stop
        counting and its next lock starts again at the shortest duration.
        """
        _check_identity(identity)
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, identity, _origin(caller), now)
            state = self._state(rows, now, self._failures(session, rows, now))
            if state.locked:
                return state
            self._succeed(session, rows, factor, now)
            return self._state(rows, now, self._failures(session, rows, now))

    @_guarded
    def record_success(self, identity: str | None, caller: Origin, factor: str | None = None) -> LimitState:
        """The caller was authenticated: the identity's earlier failures stop counting."""
        _check_identity(identity)
        now = self._clock()
        with self._db.transaction() as session:
            rows = self._lock_rows(session, identity, _origin(caller), now)
            self._succeed(session, rows, factor, now)
            return self._state(rows, now, self._failures(session, rows, now))

    # --- leases: one authentication at a time per claimed identity ----------
    @_guarded
    def acquire_lease(self, identity: str, holder: str) -> bool:
        """Take (or renew) the identity's lease for ``holder``; False while another call holds it."""
        _check_identity(identity)
        now = self._clock()
        expires = now + timedelta(seconds=self.config.lease_s)
        with self._db.transaction() as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            new = insert(AuthLease).values(identity=identity, holder=holder[:64], expires_at=expires)
            stmt = new.on_conflict_do_update(
                index_elements=["identity"],
                set_={"holder": new.excluded.holder, "expires_at": new.excluded.expires_at},
                where=or_(AuthLease.expires_at <= now, AuthLease.holder == new.excluded.holder),
            ).returning(AuthLease.holder)
            taken = session.execute(stmt).one_or_none()
            return taken is not None and taken.holder == holder[:64]

    @_guarded
    def release_lease(self, identity: str, holder: str) -> None:
        with self._db.transaction() as session:
            session.execute(
                delete(AuthLease).where(AuthLease.identity == identity, AuthLease.holder == holder[:64])
            )

    @_guarded
    def unlock(self, identity: str) -> bool:
        """Admin unlock of an identity; True if it was locked. Its earlier failures stop counting."""
        _check_identity(identity)
        return self._unlock(IDENTITY, identity)

    @_guarded
    def unlock_caller(self, caller_hash: str) -> bool:
        return self._unlock(CALLER, caller_hash)

    @_guarded
    def purge(self, *, dry_run: bool = False) -> int:
        """Forget events older than every window, and idle unlocked subjects; returns events removed.

        Old events can never count again, and a caller hash kept without a
        purpose is personal data kept without a purpose.
        """
        now = self._clock()
        rules = [self._rule(kind) for kind in (IDENTITY, CALLER, WITHHELD, TRUNK)]
        horizon = now - timedelta(seconds=max(max(r.window_s, r.lock_s) for r in rules))
        # A subject's count of locks in a row must outlive its longest escalated lock.
        kept = now - timedelta(seconds=max(max(r.window_s, r.max_lock_s if r.escalate else r.lock_s) for r in rules))
        with self._db.transaction() as session:
            session.execute(delete(AuthLease).where(AuthLease.expires_at < now))
            old_events = LimitEvent.at < horizon
            count = session.scalar(select(func.count()).select_from(LimitEvent).where(old_events)) or 0
            if dry_run:
                return count
            session.execute(delete(LimitEvent).where(old_events))
            idle = and_(
                LimitSubject.updated_at < kept,
                or_(LimitSubject.locked_until.is_(None), LimitSubject.locked_until < now),
            )
            session.execute(delete(LimitSubject).where(idle))
            return count

    # --- internals -------------------------------------------------------
    @staticmethod
    def _subjects(identity: str | None, origin: CallOrigin) -> Iterator[tuple[str, str]]:
        # Fixed order (identity, caller, withheld, trunk): the lock order of every transaction.
        if identity is not None:
            yield IDENTITY, identity
        if origin.caller is not None:
            yield CALLER, origin.caller
        if origin.withheld is not None:
            yield WITHHELD, origin.withheld
        if origin.trunk is not None:
            yield TRUNK, origin.trunk[:SUBJECT_LEN]

    def _lock_rows(self, session: Session, identity: str | None, origin: CallOrigin, now: datetime) -> list[_Row]:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        rows = []
        for kind, subject in self._subjects(identity, origin):
            new = insert(LimitSubject).values(
                kind=kind, subject=subject, updated_at=now, reset_after_id=0, lockouts=0
            )
            stmt = new.on_conflict_do_update(
                index_elements=["kind", "subject"], set_={"updated_at": new.excluded.updated_at}
            ).returning(
                LimitSubject.id,
                LimitSubject.locked_until,
                LimitSubject.lock_reason,
                LimitSubject.reset_after_id,
                LimitSubject.lockouts,
            )
            row = session.execute(stmt).one()
            rows.append(_Row(kind, row.id, row.locked_until, row.lock_reason, row.reset_after_id, row.lockouts or 0))
        return rows

    def _insert_events(
        self, session: Session, rows: list[_Row], event: str, factor: str | None, now: datetime
    ) -> dict[int, int]:
        ids = {}
        for row in rows:
            added = LimitEvent(subject_id=row.id, event=event, factor=factor, at=now)
            session.add(added)
            session.flush()
            ids[row.id] = added.id
        return ids

    def _count(self, session: Session, row: _Row, now: datetime) -> int:
        rule = self._rule(row.kind)
        event = "failure" if rule.counts == "failures" else "attempt"
        return (
            session.scalar(
                select(func.count())
                .select_from(LimitEvent)
                .where(
                    LimitEvent.subject_id == row.id,
                    LimitEvent.event == event,
                    LimitEvent.id > row.reset_after_id,
                    LimitEvent.at > now - timedelta(seconds=rule.window_s),
                )
            )
            or 0
        )

    def _record(
        self, session: Session, rows: list[_Row], event: str, factor: str | None, now: datetime
    ) -> LimitState | None:
        """Insert the event for every subject and lock those that reach their limit; the first new lock."""
        event_ids = self._insert_events(session, rows, event, factor, now)
        return self._lock_if_full(session, rows, event, now, last_ids=tuple(event_ids.values()))

    def _lock_if_full(
        self, session: Session, rows: list[_Row], event: str, now: datetime, *, last_ids: tuple[int, ...] = ()
    ) -> LimitState | None:
        """Lock every subject whose ``event`` count reached its limit; the first new lock, if any.

        ``last_ids``: the events just recorded (one per subject); without
        them (a check before a new attempt), the newest event counted is
        where the next count starts.
        """
        newly: LimitState | None = None
        for row in rows:
            rule = self._rule(row.kind)
            counted = "failure" if rule.counts == "failures" else "attempt"
            if event != counted or _locked(row, now):
                continue  # a lock already running is not extended by events inside it
            count = self._count(session, row, now)
            if count < rule.max_events:
                continue
            what = "failed attempts" if counted == "failure" else "attempts"
            lock_s = min(rule.lock_s * 2 ** row.lockouts, rule.max_lock_s) if rule.escalate else rule.lock_s
            row.locked_until = now + timedelta(seconds=lock_s)
            row.lock_reason = f"{count} {what} within {_minutes(rule.window_s)} (limit {rule.max_events})"
            if rule.escalate and row.lockouts:
                row.lock_reason += f"; lock {row.lockouts + 1} in a row lasts {_minutes(lock_s)}"
            row.reset_after_id = max(
                [i for i in last_ids if i > row.reset_after_id] or [self._newest_event(session, row)]
            )
            row.lockouts += 1
            session.execute(
                update(LimitSubject)
                .where(LimitSubject.id == row.id)
                .values(
                    locked_until=row.locked_until,
                    lock_reason=row.lock_reason,
                    reset_after_id=row.reset_after_id,
                    lockouts=row.lockouts,
                )
            )
            log.warning(
                "%s %s locked until %s: %s",
                row.kind,
                "subject" if row.kind == TRUNK else "(masked)",
                row.locked_until.isoformat(timespec="seconds"),
                row.lock_reason,
            )
            if newly is None:
                newly = LimitState(True, row.locked_until, _lock_message(row), row.kind, newly_locked=True)
        return newly

    @staticmethod
    def _newest_event(session: Session, row: _Row) -> int:
        newest = session.scalar(select(func.max(LimitEvent.id)).where(LimitEvent.subject_id == row.id))
        return int(newest or row.reset_after_id)

    def _after(self, session: Session, rows: list[_Row], now: datetime, newly: LimitState | None) -> LimitState:
        state = self._state(rows, now, self._failures(session, rows, now))
        if newly is not None:
            return LimitState(True, newly.until, newly.reason, newly.scope, state.recent_failures, True)
        return state

    def _succeed(self, session: Session, rows: list[_Row], factor: str | None, now: datetime) -> None:
        event_ids = self._insert_events(session, rows, "success", factor, now)
        for row in rows:
            if row.kind == IDENTITY and self._rule(IDENTITY).counts == "failures":
                row.reset_after_id = event_ids[row.id]
                row.lockouts = 0
                session.execute(
                    update(LimitSubject)
                    .where(LimitSubject.id == row.id)
                    .values(reset_after_id=row.reset_after_id, lockouts=0)
                )

    def _failures(self, session: Session, rows: list[_Row], now: datetime) -> int:
        identity = next((r for r in rows if r.kind == IDENTITY), None)
        if identity is None or self._rule(IDENTITY).counts != "failures":
            return 0
        return self._count(session, identity, now)

    @staticmethod
    def _state(rows: list[_Row], now: datetime, failures: int) -> LimitState:
        for row in rows:  # identity first: its lock is the one to tell the caller about
            if _locked(row, now):
                return LimitState(True, row.locked_until, _lock_message(row), row.kind, failures)
        return LimitState(False, recent_failures=failures)

    def _unlock(self, kind: str, subject: str) -> bool:
        now = self._clock()
        with self._db.transaction() as session:
            row = session.scalars(
                select(LimitSubject)
                .where(LimitSubject.kind == kind, LimitSubject.subject == subject)
                .with_for_update()
            ).one_or_none()
            if row is None:
                return False
            was_locked = row.locked_until is not None and row.locked_until > now
            last_event = session.scalar(
                select(func.max(LimitEvent.id)).where(LimitEvent.subject_id == row.id)
            )
            row.locked_until = None
            row.lock_reason = None
            row.reset_after_id = max(row.reset_after_id, last_event or 0)
            row.lockouts = 0
            row.updated_at = now
            return was_locked


def _locked(row: _Row, now: datetime) -> bool:
    return row.locked_until is not None and row.locked_until > now


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


_WHO = {IDENTITY: "this account", CALLER: "this caller number", WITHHELD: "callers without a number on this trunk",
        TRUNK: "this trunk"}


def _lock_message(row: _Row) -> str:
    who = _WHO[row.kind]
    until = row.locked_until.isoformat(timespec="seconds") if row.locked_until else "?"
    return f"{who} is locked until {until}: {row.lock_reason or 'too many attempts'}"
