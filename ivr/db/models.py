"""ORM tables of the IVR side: customers and their fallback factors.

Later migrations add audit, lockout and consent tables next to these; every
such table refers to ``customers.id`` the same way, with ``ON DELETE CASCADE``
so deleting a customer (right to erasure) removes their factor data too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.db.base import Base, UtcDateTime
from voiceprints.clock import system_clock

OTP_CHANNELS = ("sms", "voice", "email")
LANGUAGES = ("es", "en")
OTP_STATUSES = ("pending", "verified", "locked", "expired", "cancelled")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(_one_of("preferred_otp_channel", OTP_CHANNELS), name="preferred_otp_channel"),
        CheckConstraint(_one_of("language", LANGUAGES), name="language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The account number callers key in or the dialplan passes: the claimed identity.
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    # E.164 is at most 15 digits plus "+".
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    # RFC 5321 limits a forward path to 254 characters.
    email: Mapped[str | None] = mapped_column(String(254))
    preferred_otp_channel: Mapped[str] = mapped_column(String(8), default="sms")
    language: Mapped[str] = mapped_column(String(2), default="es")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=system_clock)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=system_clock, onupdate=system_clock)


class OtpChallenge(Base):
    __tablename__ = "otp_challenges"
    __table_args__ = (
        CheckConstraint(_one_of("channel", OTP_CHANNELS), name="channel"),
        CheckConstraint(_one_of("status", OTP_STATUSES), name="status"),
    )

    # Random and unguessable: the id travels through the call flow and must
    # not let anyone enumerate other callers' challenges.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    # HMAC-SHA256(server secret, challenge id + code): 32 raw bytes. The code
    # itself is never stored.
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    resends: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")


class OtpSend(Base):
    """One code sent to a customer, whatever the backend: the per-customer send caps count these."""

    __tablename__ = "otp_sends"
    __table_args__ = (CheckConstraint(_one_of("channel", OTP_CHANNELS), name="channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class KnowledgeAnswer(Base):
    __tablename__ = "knowledge_answers"
    __table_args__ = (UniqueConstraint("customer_id", "question_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    question_key: Mapped[str] = mapped_column(String(32))
    # argon2id encoded hash ("$argon2id$v=19$m=...$salt$hash"), ~100 characters.
    answer_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=system_clock)
