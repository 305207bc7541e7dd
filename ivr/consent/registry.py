"""Consent before enrolment, opt-out at any time, and who may be enrolled.

Consent events are append-only: the latest event per identity is its state
and the history is the proof of what was agreed when. They are deliberately
not purged with the audit log: an opt-out must be remembered for as long as
the system runs, or a passive enrolment could bring the voiceprint back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ivr.db.engine import Database
from voiceprints.clock import Clock
from ivr.db.models_policy import SUBJECT_LEN, ConsentEvent
from voiceprints.redact import mask
from voiceprints.store.base import VoiceprintStore

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ConsentRecord:
    kind: str  # "granted", "opted_out" or "expired"
    at: datetime
    channel: str
    policy_version: str | None = None
    voiceprint_deleted: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "channel": self.channel,
            "policy_version": self.policy_version,
            "voiceprint_deleted": self.voiceprint_deleted,
        }


@dataclass(frozen=True)
class ConsentState:
    identity: str
    # Consent given and not withdrawn since.
    consented: bool
    consent: ConsentRecord | None  # the latest consent
    opted_out: bool  # the latest event is an opt-out
    opt_out: ConsentRecord | None  # the latest opt-out, even if consent was given again later
    history: tuple[ConsentRecord, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "identity": self.identity,
            "consented": self.consented,
            "opted_out": self.opted_out,
            "consent": self.consent.to_dict() if self.consent else None,
            "opt_out": self.opt_out.to_dict() if self.opt_out else None,
            "history": [r.to_dict() for r in self.history],
        }


@dataclass(frozen=True)
class EnrolPermission:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class OptOutResult:
    identity: str
    voiceprint_deleted: bool  # a voiceprint existed and was erased
    state: ConsentState


def _check(identity: str, channel: str) -> None:
    if not 0 < len(identity) <= SUBJECT_LEN:
        raise ValueError(f"identity must be 1-{SUBJECT_LEN} characters long")
    if not 0 < len(channel) <= 32:
        raise ValueError("channel must be 1-32 characters long, e.g. 'ivr-enroll' or 'cli'")


class ConsentRegistry:
    def __init__(
        self,
        db: Database,
        *,
        policy_version: str,
        store: VoiceprintStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self.policy_version = policy_version
        self._store = store
        self._clock = clock or db.clock

    def record_consent(self, identity: str, channel: str) -> ConsentState:
        """The caller agreed (prompt + key press) to a voiceprint under the current privacy notice."""
        _check(identity, channel)
        self._add(identity, "granted", channel, policy_version=self.policy_version)
        return self.state(identity)

    def opt_out(self, identity: str, channel: str) -> OptOutResult:
        """Withdraw consent and erase the voiceprint.

        The opt-out is recorded first: should the erasure then fail, passive
        enrolment is already blocked and the next ``purge`` erases the
        voiceprint of every opted-out identity it still finds.
        """
        _check(identity, channel)
        with self._db.transaction() as session:
            event = ConsentEvent(identity=identity, kind="opted_out", at=self._clock(), channel=channel)
            session.add(event)
            session.flush()
            event_id = event.id
        deleted = False
        if self._store is not None:
            deleted = self._store.delete_speaker(identity)
            with self._db.transaction() as session:
                row = session.get(ConsentEvent, event_id)
                if row is not None:
                    row.voiceprint_deleted = deleted
        else:
            log.warning(
                "opt-out of %s recorded without a voiceprint store; the next purge erases the voiceprint",
                mask(identity),
            )
        return OptOutResult(identity, deleted, self.state(identity))

    def record_expiry(self, identity: str, channel: str = "retention") -> None:
        """Retention erased the voiceprint; a new enrolment needs consent again."""
        self._add(identity, "expired", channel, voiceprint_deleted=True)

    def state(self, identity: str) -> ConsentState:
        with self._db.sessions() as session:
            rows = session.scalars(
                select(ConsentEvent).where(ConsentEvent.identity == identity).order_by(ConsentEvent.id)
            ).all()
            history = tuple(
                ConsentRecord(r.kind, r.at, r.channel, r.policy_version, r.voiceprint_deleted) for r in rows
            )
        latest = history[-1] if history else None
        consent = next((r for r in reversed(history) if r.kind == "granted"), None)
        opt_out = next((r for r in reversed(history) if r.kind == "opted_out"), None)
        return ConsentState(
            identity=identity,
            consented=latest is not None and latest.kind == "granted",
            consent=consent,
            opted_out=latest is not None and latest.kind == "opted_out",
            opt_out=opt_out,
            history=history,
        )

    def may_enrol(self, identity: str, *, passive: bool = False) -> EnrolPermission:
        """May a voiceprint be created (or updated) for ``identity`` now?

        Explicit enrolment (the enrolment line) needs consent recorded and not
        withdrawn since. Passive enrolment (from ordinary calls, without the
        caller taking part) additionally needs that the caller never opted
        out: consent given again after an opt-out covers the enrolment line
        only.
        """
        state = self.state(identity)
        if state.opted_out:
            when = state.opt_out.at.isoformat(timespec="seconds") if state.opt_out else "?"
            return EnrolPermission(
                False, f"{identity} opted out on {when} ({state.opt_out.channel if state.opt_out else '?'})"
            )
        if not state.consented:
            if state.history and state.history[-1].kind == "expired":
                return EnrolPermission(False, f"the voiceprint of {identity} expired; ask for consent again")
            return EnrolPermission(False, f"no consent recorded for {identity}; ask for it before enrolling")
        if passive and state.opt_out is not None:
            return EnrolPermission(
                False,
                f"{identity} opted out once ({state.opt_out.at.isoformat(timespec='seconds')}); "
                "never enrolled passively again",
            )
        assert state.consent is not None
        return EnrolPermission(
            True,
            f"consent given on {state.consent.at.isoformat(timespec='seconds')} via {state.consent.channel} "
            f"(notice {state.consent.policy_version})",
        )

    def opted_out_identities(self) -> set[str]:
        """Identities whose latest consent event is an opt-out."""
        with self._db.sessions() as session:
            rows = session.execute(
                select(ConsentEvent.identity, ConsentEvent.kind).order_by(ConsentEvent.id)
            ).all()
        latest: dict[str, str] = {}
        for identity, kind in rows:
            latest[identity] = kind
        return {identity for identity, kind in latest.items() if kind == "opted_out"}

    def _add(
        self,
        identity: str,
        kind: str,
        channel: str,
        *,
        policy_version: str | None = None,
        voiceprint_deleted: bool | None = None,
    ) -> None:
        with self._db.transaction() as session:
            session.add(
                ConsentEvent(
                    identity=identity,
                    kind=kind,
                    at=self._clock(),
                    channel=channel,
                    policy_version=policy_version,
                    voiceprint_deleted=voiceprint_deleted,
                )
            )
