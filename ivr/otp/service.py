"""Locally generated one-time codes: issue, resend, verify.

The database row is the single source of truth, and every state change is a
conditional UPDATE whose WHERE clause re-checks the state it depends on, so
two calls racing on the same challenge (a double-submitted entry, two
workers) cannot both succeed: the second one's UPDATE matches no row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ivr.db.engine import Database
from voiceprints.clock import Clock
from ivr.db.models import OTP_CHANNELS, Customer, OtpChallenge
from ivr.otp.codes import check_secret, code_matches, generate_code, hash_code, normalise_entry
from ivr.otp.config import OtpConfig
from ivr.otp.errors import ResendRefused



class OtpResult(str, Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OtpVerification:
    result: OtpResult
    # None where the backend does not say (Twilio Verify).
    remaining_attempts: int | None = None

    @property
    def ok(self) -> bool:
        return self.result is OtpResult.OK


class IssuedCode(NamedTuple):
    challenge_id: str
    # Goes to the sender and nowhere else: never log it, never store it.
    code: str


class OtpService:
    def __init__(
        self, db: Database, secret: bytes, config: OtpConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        self._db = db
        self._secret = check_secret(secret)
        self.config = config or OtpConfig()
        self._clock = clock or db.clock

    def now(self) -> datetime:
        """The time on this service's clock (the database's)."""
        return self._clock()

    def issue(self, customer_id: int, channel: str) -> IssuedCode:
        if channel not in OTP_CHANNELS:
            raise ValueError(f"unknown one-time-code channel {channel!r}; use one of {', '.join(OTP_CHANNELS)}")
        now = self._clock()
        # 128 random bits: challenge ids are bearer handles within a call.
        challenge_id = secrets.token_hex(16)
        code = generate_code(self.config.length)
        with self._db.transaction() as session:
            if session.get(Customer, customer_id) is None:
                raise LookupError(f"no customer with id {customer_id}")
            session.add(
                OtpChallenge(
                    id=challenge_id,
                    customer_id=customer_id,
                    channel=channel,
                    code_hash=hash_code(self._secret, challenge_id, code),
                    created_at=now,
                    last_sent_at=now,
                    expires_at=now + timedelta(seconds=self.config.ttl_s),
                    attempts=0,
                    max_attempts=self.config.max_attempts,
                    resends=0,
                    status="pending",
                )
            )
        return IssuedCode(challenge_id, code)

    def resend(self, challenge_id: str) -> IssuedCode:
        """A fresh code (and a fresh expiry) for the same challenge; the previous code stops working.

        Attempts are counted per challenge, not per code: a resend does not
        buy an attacker more guesses.
        """
        now = self._clock()
        with self._db.sessions() as session:
            row = session.get(OtpChallenge, challenge_id)
            if row is None:
                raise ResendRefused("no such one-time-code challenge", reason="unknown")
            if row.consumed_at is not None or row.status not in ("pending", "expired"):
                raise ResendRefused(f"the challenge is {row.status}; start a new one", reason="closed")
            if row.attempts >= row.max_attempts:
                raise ResendRefused("all attempts for this challenge are used", reason="closed")
            if row.resends >= self.config.max_resends:
                raise ResendRefused(
                    f"already resent {row.resends} times (limit {self.config.max_resends})",
                    reason="too_many_resends",
                )
            waited = (now - row.last_sent_at).total_seconds()
            if waited < self.config.resend_cooldown_s:
                retry_after = self.config.resend_cooldown_s - waited
                raise ResendRefused(
                    f"last code sent {waited:.0f} s ago; wait {retry_after:.0f} s before resending",
                    reason="cooldown",
                    retry_after_s=retry_after,
                )
            seen_resends = row.resends
        code = generate_code(self.config.length)
        with self._db.transaction() as session:
            changed = session.execute(
                update(OtpChallenge)
                .where(
                    OtpChallenge.id == challenge_id,
                    OtpChallenge.resends == seen_resends,
                    OtpChallenge.consumed_at.is_(None),
                    OtpChallenge.status.in_(("pending", "expired")),
                    OtpChallenge.attempts < OtpChallenge.max_attempts,
                )
                .values(
                    code_hash=hash_code(self._secret, challenge_id, code),
                    last_sent_at=now,
                    expires_at=now + timedelta(seconds=self.config.ttl_s),
                    resends=OtpChallenge.resends + 1,
                    status="pending",
                )
            ).rowcount
        if changed != 1:
            raise ResendRefused("the challenge changed while resending; start a new one", reason="closed")
        return IssuedCode(challenge_id, code)

    def cancel(self, challenge_id: str) -> None:
        """Close a challenge whose code never reached the caller (delivery failed)."""
        with self._db.transaction() as session:
            session.execute(
                update(OtpChallenge)
                .where(OtpChallenge.id == challenge_id, OtpChallenge.consumed_at.is_(None))
                .values(status="cancelled")
            )

    def purge(self, older_than_s: float = 86400) -> int:
        """Delete challenges that expired more than ``older_than_s`` ago; returns how many.

        Challenge rows are only useful while a call is in progress (and for a
        day of troubleshooting by default); keeping them longer is keeping
        personal data without a purpose.
        """
        cutoff = self._clock() - timedelta(seconds=older_than_s)
        with self._db.transaction() as session:
            return session.execute(delete(OtpChallenge).where(OtpChallenge.expires_at < cutoff)).rowcount

    def verify(self, challenge_id: str, entered: str) -> OtpVerification:
        now = self._clock()
        digits = normalise_entry(entered)
        with self._db.transaction() as session:
            # Count the attempt first, atomically and only while the challenge
            # is open: parallel guesses cannot exceed max_attempts.
            claimed = session.execute(
                update(OtpChallenge)
                .where(
                    OtpChallenge.id == challenge_id,
                    OtpChallenge.consumed_at.is_(None),
                    OtpChallenge.status == "pending",
                    OtpChallenge.attempts < OtpChallenge.max_attempts,
                    OtpChallenge.expires_at > now,
                )
                .values(attempts=OtpChallenge.attempts + 1)
                .returning(OtpChallenge.code_hash, OtpChallenge.attempts, OtpChallenge.max_attempts)
            ).one_or_none()
            if claimed is None:
                return self._closed(session, challenge_id, now)
            code_hash, attempts, max_attempts = claimed
            if code_matches(self._secret, challenge_id, digits, code_hash):
                consumed = session.execute(
                    update(OtpChallenge)
                    .where(OtpChallenge.id == challenge_id, OtpChallenge.consumed_at.is_(None))
                    .values(consumed_at=now, status="verified")
                ).rowcount
                if consumed == 1:
                    return OtpVerification(OtpResult.OK, max_attempts - attempts)
                return OtpVerification(OtpResult.USED, 0)
            remaining = max_attempts - attempts
            if remaining <= 0:
                session.execute(
                    update(OtpChallenge)
                    .where(OtpChallenge.id == challenge_id, OtpChallenge.consumed_at.is_(None))
                    .values(status="locked")
                )
                return OtpVerification(OtpResult.TOO_MANY_ATTEMPTS, 0)
            return OtpVerification(OtpResult.WRONG, remaining)

    def _closed(self, session: Session, challenge_id: str, now: datetime) -> OtpVerification:
        row = session.scalars(select(OtpChallenge).where(OtpChallenge.id == challenge_id)).one_or_none()
        if row is None:
            return OtpVerification(OtpResult.UNKNOWN, 0)
        if row.consumed_at is not None:
            return OtpVerification(OtpResult.USED, 0)
        if row.status == "locked" or row.attempts >= row.max_attempts:
            return OtpVerification(OtpResult.TOO_MANY_ATTEMPTS, 0)
        if row.status == "pending" and row.expires_at <= now:
            row.status = "expired"
        # Expired, or cancelled because the code never arrived: either way this
        # code can no longer be used.
        return OtpVerification(OtpResult.EXPIRED, 0)
