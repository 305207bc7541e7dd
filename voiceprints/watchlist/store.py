"""Known fraudsters' voiceprints, encrypted like enrolled voiceprints but kept apart from them.

An entry is a name (a case reference, "fraud-2026-118"), one vector per
model, where it came from (recordings, or a call marked as fraud) and an
optional expiry: entries made from a call's audio may be kept only for a
limited time, and :meth:`purge_expired` deletes them then.
"""

from __future__ import annotations

from typing import Any, cast

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import CursorResult, delete, func, select

from voiceprints.errors import StoreError
from voiceprints.store.crypto import labelled_aad, vector_from_bytes, vector_to_bytes
from voiceprints.store.models import WatchlistEntryRow
from voiceprints.store.sql import SqlVoiceprintStore

__all__ = ["SqlWatchlistStore", "WatchlistEntry"]

_LABEL = "watchlist"
MAX_NAME = 255


@dataclass(frozen=True)
class WatchlistEntry:
    """What listing shows: never the vector."""

    name: str
    model_id: str
    source: str
    note: str
    net_speech_s: float
    created_at: dt.datetime
    expires_at: dt.datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "model_id": self.model_id, "source": self.source, "note": self.note,
                "net_speech_s": round(self.net_speech_s, 2), "created_at": self.created_at.isoformat(),
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat()}


class SqlWatchlistStore:
    def __init__(self, store: SqlVoiceprintStore) -> None:
        self._store = store

    def add(self, name: str, model_id: str, vector: np.ndarray, *, source: str, note: str = "",
            net_speech_s: float, expires_at: dt.datetime | None = None) -> WatchlistEntry:
        """Create or replace the entry ``name`` for ``model_id``."""
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise StoreError(f"watchlist name must be 1-{MAX_NAME} characters; got {str(name)[:40]!r}")
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.size == 0 or not np.all(np.isfinite(vec)):
            raise StoreError(f"watchlist entry {name!r}: the vector is empty or not finite")
        if not math.isfinite(net_speech_s) or net_speech_s < 0:
            raise StoreError(f"watchlist entry {name!r}: invalid speech duration {net_speech_s}")
        key_id, blob = self._store.keyring.encrypt(vector_to_bytes(vec), labelled_aad(_LABEL, name, model_id))
        now = self._store.clock()
        values = dict(name=name, model_id=model_id, key_id=key_id, ciphertext=blob, dim=int(vec.size),
                      source=source, note=note, net_speech_s=float(net_speech_s), created_at=now,
                      expires_at=expires_at)
        with self._store.write_session() as session:
            ins = self._store.insert(WatchlistEntryRow).values(**values)
            session.execute(ins.on_conflict_do_update(
                index_elements=[WatchlistEntryRow.name, WatchlistEntryRow.model_id],
                set_={k: getattr(ins.excluded, k) for k in values if k not in ("name", "model_id")},
            ))
        return WatchlistEntry(name, model_id, source, note, float(net_speech_s), now, expires_at)

    def remove(self, name: str) -> int:
        """Delete every model's entry called ``name``; returns how many were deleted."""
        with self._store.write_session() as session:
            return _rowcount(session.execute(delete(WatchlistEntryRow).where(WatchlistEntryRow.name == name)))

    def entries(self, model_id: str | None = None) -> list[WatchlistEntry]:
        stmt = select(WatchlistEntryRow.name, WatchlistEntryRow.model_id, WatchlistEntryRow.source,
                      WatchlistEntryRow.note, WatchlistEntryRow.net_speech_s, WatchlistEntryRow.created_at,
                      WatchlistEntryRow.expires_at).order_by(WatchlistEntryRow.name, WatchlistEntryRow.model_id)
        if model_id is not None:
            stmt = stmt.where(WatchlistEntryRow.model_id == model_id)
        with self._store.read_session() as session:
            return [WatchlistEntry(*row) for row in session.execute(stmt)]

    def load_matrix(self, model_id: str) -> tuple[list[str], np.ndarray]:
        """Every entry of ``model_id``, decrypted: (names, float32 matrix n x dim)."""
        with self._store.read_session() as session:
            rows = session.execute(
                select(WatchlistEntryRow.name, WatchlistEntryRow.key_id, WatchlistEntryRow.ciphertext,
                       WatchlistEntryRow.dim)
                .where(WatchlistEntryRow.model_id == model_id).order_by(WatchlistEntryRow.name)
            ).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        dims = {dim for *_, dim in rows}
        if len(dims) != 1:
            raise StoreError(f"watchlist entries of model {model_id!r} have different dimensions {sorted(dims)}")
        decrypt = self._store.keyring.decrypt
        matrix = np.stack([vector_from_bytes(decrypt(key_id, blob, labelled_aad(_LABEL, name, model_id)), dim)
                           for name, key_id, blob, dim in rows])
        return [name for name, *_ in rows], matrix

    def version(self, model_id: str) -> tuple[int, int]:
        """(entries, newest id) of ``model_id``: changes whenever an entry is added or removed."""
        with self._store.read_session() as session:
            count, newest = session.execute(
                select(func.count(), func.max(WatchlistEntryRow.id)).where(WatchlistEntryRow.model_id == model_id)
            ).one()
        return int(count or 0), int(newest or 0)

    def count(self) -> int:
        with self._store.read_session() as session:
            return int(session.scalar(select(func.count()).select_from(WatchlistEntryRow)) or 0)

    def purge_expired(self, now: dt.datetime | None = None) -> int:
        """Delete entries past their expiry (call-derived entries' retention limit)."""
        now = now or self._store.clock()
        with self._store.write_session() as session:
            return _rowcount(session.execute(delete(WatchlistEntryRow).where(WatchlistEntryRow.expires_at < now)))


def _rowcount(result: object) -> int:
    """Rows a DELETE removed (``Session.execute`` returns a CursorResult for DML)."""
    return int(cast(CursorResult[Any], result).rowcount)
