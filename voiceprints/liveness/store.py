"""Digit templates and recently asked strings in the voiceprint store's database.

Templates are encrypted with the store's key ring (AES-256-GCM, bound to the
speaker and the feature version) and deleted with the speaker.
"""

from __future__ import annotations

from typing import Any, cast

import datetime as dt

from sqlalchemy import CursorResult, delete, select

from voiceprints.liveness.templates import DigitTemplates
from voiceprints.store.crypto import labelled_aad
from voiceprints.store.models import DigitTemplateRow, LivenessChallengeRow, Speaker
from voiceprints.store.sql import SqlVoiceprintStore

__all__ = ["SqlChallengeHistory", "SqlDigitTemplateStore"]

_LABEL = "digit-templates"


class SqlDigitTemplateStore:
    def __init__(self, store: SqlVoiceprintStore) -> None:
        self._store = store

    def save(self, speaker_id: str, templates: DigitTemplates) -> None:
        """Create or replace the speaker's templates (the speaker record is created if needed)."""
        aad = labelled_aad(_LABEL, speaker_id, templates.feature_version)
        key_id, blob = self._store.keyring.encrypt(templates.to_bytes(), aad)
        now = self._store.clock()
        with self._store.write_session() as session:
            pk = self._store.upsert_speaker(session, speaker_id)
            ins = self._store.insert(DigitTemplateRow).values(
                speaker_id=pk, feature_version=templates.feature_version, key_id=key_id, ciphertext=blob,
                template_count=len(templates), created_at=now, updated_at=now,
            )
            session.execute(ins.on_conflict_do_update(
                index_elements=[DigitTemplateRow.speaker_id],
                set_={c: getattr(ins.excluded, c)
                      for c in ("feature_version", "key_id", "ciphertext", "template_count", "updated_at")},
            ))

    def get(self, speaker_id: str) -> DigitTemplates | None:
        with self._store.read_session() as session:
            row = session.execute(
                select(DigitTemplateRow.feature_version, DigitTemplateRow.key_id, DigitTemplateRow.ciphertext)
                .join(Speaker, Speaker.id == DigitTemplateRow.speaker_id)
                .where(Speaker.external_id == speaker_id)
            ).one_or_none()
        if row is None:
            return None
        version, key_id, blob = row
        plain = self._store.keyring.decrypt(key_id, blob, labelled_aad(_LABEL, speaker_id, version))
        return DigitTemplates.from_bytes(plain)

    def delete(self, speaker_id: str) -> bool:
        with self._store.write_session() as session:
            pk = self._store.speaker_pk(session, speaker_id)
            if pk is None:
                return False
            return bool(_rowcount(session.execute(delete(DigitTemplateRow).where(DigitTemplateRow.speaker_id == pk))))


class SqlChallengeHistory:
    """:class:`~voiceprints.liveness.challenge.ChallengeHistory` in the store's database."""

    def __init__(self, store: SqlVoiceprintStore) -> None:
        self._store = store

    def recent(self, account: str, since: dt.datetime) -> set[str]:
        with self._store.read_session() as session:
            return set(session.scalars(
                select(LivenessChallengeRow.digits)
                .where(LivenessChallengeRow.account == account, LivenessChallengeRow.issued_at >= since)
            ))

    def record(self, account: str, digits: str, at: dt.datetime) -> None:
        with self._store.write_session() as session:
            session.add(LivenessChallengeRow(account=account, digits=digits, issued_at=at))

    def purge(self, before: dt.datetime) -> int:
        """Forget strings asked before ``before`` (the reuse period has passed; nothing needs them)."""
        with self._store.write_session() as session:
            return _rowcount(session.execute(
                delete(LivenessChallengeRow).where(LivenessChallengeRow.issued_at < before)))


def _rowcount(result: object) -> int:
    """Rows a DELETE removed (``Session.execute`` returns a CursorResult for DML)."""
    return int(cast(CursorResult[Any], result).rowcount)
