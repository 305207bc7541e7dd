"""Database schema of the voiceprint store (SQLAlchemy ORM).

There is deliberately no plaintext vector column and no audio table: vectors
only exist here as AES-GCM ciphertext, and raw audio is not retained. The
Alembic migrations in ``migrations/versions`` must produce exactly this schema
(tests compare them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from voiceprints.clock import system_clock



class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and would hand
    back naive datetimes, which compare wrongly against aware ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the voiceprint store; use timezone-aware UTC")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


# Explicit constraint names keep migrations, autogenerate and both backends in agreement.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime(), dict[str, Any]: JSON()}


class Speaker(Base):
    __tablename__ = "speakers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The caller's identifier (account number, customer id); the integer id never leaves the store.
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)
    updated_at: Mapped[dt.datetime] = mapped_column(default=system_clock)

    voiceprints: Mapped[list[VoiceprintRow]] = relationship(
        back_populates="speaker", cascade="all, delete-orphan", passive_deletes=True
    )


class VoiceprintRow(Base):
    __tablename__ = "voiceprints"
    __table_args__ = (UniqueConstraint("speaker_id", "model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"))
    # Indexed: identification and cohorts load all voiceprints of one model.
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(float32 LE vector) + tag
    dim: Mapped[int] = mapped_column(Integer)
    utterance_count: Mapped[int] = mapped_column(Integer)
    net_speech_s: Mapped[float] = mapped_column(Float)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)
    updated_at: Mapped[dt.datetime] = mapped_column(default=system_clock)

    speaker: Mapped[Speaker] = relationship(back_populates="voiceprints")
    utterances: Mapped[list[EnrolmentUtteranceRow]] = relationship(
        back_populates="voiceprint", cascade="all, delete-orphan", passive_deletes=True
    )


class EnrolmentUtteranceRow(Base):
    """One enrolment utterance's embedding, encrypted like the voiceprint it was averaged into.

    Kept so that ``ivr calibrate --from-enrolments`` can measure genuine
    (leave-one-out) and impostor trials on the deployment's own callers, and so
    that score normalisation measures impostor statistics on single utterances,
    as a verification sees them. Replaced with the voiceprint on re-enrolment,
    erased with it.
    """

    __tablename__ = "enrolment_utterances"
    __table_args__ = (UniqueConstraint("voiceprint_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    voiceprint_id: Mapped[int] = mapped_column(ForeignKey("voiceprints.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # order of the utterance in the enrolment
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(float32 LE vector) + tag
    dim: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)

    voiceprint: Mapped[VoiceprintRow] = relationship(back_populates="utterances")


class CalibrationRow(Base):
    __tablename__ = "calibrations"
    __table_args__ = (UniqueConstraint("model_id", "normalisation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(128))
    normalisation: Mapped[str] = mapped_column(String(32))
    accept_threshold: Mapped[float] = mapped_column(Float)
    reject_threshold: Mapped[float] = mapped_column(Float)
    target_far: Mapped[float] = mapped_column(Float)
    target_frr: Mapped[float] = mapped_column(Float)
    n_target: Mapped[int] = mapped_column(Integer)
    n_nontarget: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)


class VoiceprintChange(Base):
    """A voiceprint enrolled or erased a moment ago, by any process: the journal other workers' caches follow.

    An erasure makes every worker drop its cached copies at once; an
    enrolment makes them rebuild in the background. Kept only for
    ``CHANGE_MEMORY_S`` (older rows are pruned at each change): long enough
    for every worker's next look, short enough that it is not a list of
    people who left.
    """

    __tablename__ = "voiceprint_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    speaker_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # "enrolled" | "erased"
    at: Mapped[dt.datetime] = mapped_column(default=system_clock)


# --- defences against replayed, synthetic and known-fraudster voices (issue 8) ---
class DigitTemplateRow(Base):
    """A speaker's digit templates for the liveness challenge: encrypted MFCC sequences, never audio."""

    __tablename__ = "digit_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), unique=True)
    # Which feature definition made them (voiceprints.liveness.features.FEATURE_VERSION).
    feature_version: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(serialised templates) + tag
    template_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)
    updated_at: Mapped[dt.datetime] = mapped_column(default=system_clock)


class ReplayFingerprintRow(Base):
    """Fingerprint of one earlier authentication recording of a speaker, for replay detection."""

    __tablename__ = "replay_fingerprints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Indexed: every verification loads the speaker's recent fingerprints.
    speaker_id: Mapped[int] = mapped_column(ForeignKey("speakers.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # "enrolment" | "verification" | ...
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(fingerprint bytes) + tag
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock, index=True)


class WatchlistEntryRow(Base):
    """A known fraudster's voiceprint: encrypted like voiceprints, kept apart from enrolled speakers."""

    __tablename__ = "watchlist_entries"
    __table_args__ = (UniqueConstraint("name", "model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(float32 LE vector) + tag
    dim: Mapped[int] = mapped_column(Integer)
    # Where it came from: "files: a.wav, b.wav" or "call: <call id>", and why it was added.
    source: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    net_speech_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=system_clock)
    # Optional: when the entry must be deleted (e.g. the retention limit for call-derived entries).
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True, index=True)


class LivenessChallengeRow(Base):
    """A digit string asked of an account, so the same string is not asked again within the reuse period.

    Plain digits: a challenge is read out loud in the call and worthless once
    used; what matters is only that it is not asked again soon.
    """

    __tablename__ = "liveness_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(255), index=True)
    digits: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[dt.datetime] = mapped_column(default=system_clock, index=True)


class RecentCallRow(Base):
    """The caller's embedding from one verification call, kept a few days so a call found to be fraud
    can be put on the watchlist (``ivr watchlist add-call``). Never audio; encrypted; purged."""

    __tablename__ = "recent_calls"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM(float32 LE vector) + tag
    dim: Mapped[int] = mapped_column(Integer)
    net_speech_s: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(default=system_clock, index=True)
