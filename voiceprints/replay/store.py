"""Fingerprints of each account's recent authentication recordings, encrypted, kept for a while.

At most ``keep`` per account (the oldest go first) and none older than the
retention period (:meth:`purge`, run by the daily purge).
"""

from __future__ import annotations

from typing import Any, cast

import datetime as dt

from sqlalchemy import CursorResult, delete, select

from voiceprints.replay.fingerprint import Fingerprint
from voiceprints.replay.match import ReplayReference
from voiceprints.store.crypto import labelled_aad
from voiceprints.store.models import ReplayFingerprintRow, Speaker
from voiceprints.store.sql import SqlVoiceprintStore

__all__ = ["SqlFingerprintStore"]

_LABEL = "replay-fingerprint"
MAX_SOURCE = 32


class SqlFingerprintStore:
    def __init__(self, store: SqlVoiceprintStore, *, keep: int = 10) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self._store = store
        self.keep = keep

    def add(self, speaker_id: str, fingerprint: Fingerprint, source: str,
            at: dt.datetime | None = None) -> None:
        """Remember ``fingerprint`` of a recording of ``speaker_id`` ("enrolment", "verification", ...)."""
        if not source or len(source) > MAX_SOURCE:
            raise ValueError(f"source must be 1-{MAX_SOURCE} characters, got {source!r}")
        key_id, blob = self._store.keyring.encrypt(fingerprint.to_bytes(), labelled_aad(_LABEL, speaker_id, source))
        with self._store.write_session() as session:
            pk = self._store.upsert_speaker(session, speaker_id)
            session.add(ReplayFingerprintRow(speaker_id=pk, source=source, key_id=key_id, ciphertext=blob,
                                             created_at=at or self._store.clock()))
            session.flush()
            # Only the newest ``keep`` are kept.
            old = session.scalars(
                select(ReplayFingerprintRow.id).where(ReplayFingerprintRow.speaker_id == pk)
                .order_by(ReplayFingerprintRow.created_at.desc(), ReplayFingerprintRow.id.desc())
                .offset(self.keep)
            ).all()
            if old:
                session.execute(delete(ReplayFingerprintRow).where(ReplayFingerprintRow.id.in_(old)))

    def references(self, speaker_id: str) -> list[ReplayReference]:
        """The speaker's stored fingerprints, newest first, labelled with source and time."""
        with self._store.read_session() as session:
            rows = session.execute(
                select(ReplayFingerprintRow.source, ReplayFingerprintRow.key_id, ReplayFingerprintRow.ciphertext,
                       ReplayFingerprintRow.created_at)
                .join(Speaker, Speaker.id == ReplayFingerprintRow.speaker_id)
                .where(Speaker.external_id == speaker_id)
                .order_by(ReplayFingerprintRow.created_at.desc(), ReplayFingerprintRow.id.desc())
            ).all()
        decrypt = self._store.keyring.decrypt
        return [
            ReplayReference(Fingerprint.from_bytes(decrypt(key_id, blob, labelled_aad(_LABEL, speaker_id, source))),
                            f"the {source} recording of {at:%Y-%m-%d %H:%M} UTC")
            for source, key_id, blob, at in rows
        ]

    def purge(self, before: dt.datetime) -> int:
        """Delete every fingerprint made before ``before``; returns how many."""
        with self._store.write_session() as session:
            return _rowcount(session.execute(
                delete(ReplayFingerprintRow).where(ReplayFingerprintRow.created_at < before)))


def _rowcount(result: object) -> int:
    """Rows a DELETE removed (``Session.execute`` returns a CursorResult for DML)."""
    return int(cast(CursorResult[Any], result).rowcount)
