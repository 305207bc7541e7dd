"""Recent calls' embeddings: what ``ivr watchlist add-call CALL_ID`` puts on the watchlist.

A fraud team learns that a call was fraud hours or days later. Keeping each
verification's embedding (never its audio) for ``call_memory_days`` lets
them list the voice then; after that the embedding is purged. Entries made
from a call expire themselves (``WatchlistConfig.call_entry_days``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import delete, select

from voiceprints.errors import StoreError
from voiceprints.store.crypto import labelled_aad, vector_from_bytes, vector_to_bytes
from voiceprints.store.models import RecentCallRow
from voiceprints.store.sql import SqlVoiceprintStore

_LABEL = "call-embedding"


class SqlCallEmbeddings:
    def __init__(self, store: SqlVoiceprintStore) -> None:
        self._store = store

    def add(self, call_id: str, model_id: str, vector: np.ndarray, net_speech_s: float) -> None:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        key_id, blob = self._store.keyring.encrypt(vector_to_bytes(vec), labelled_aad(_LABEL, call_id, model_id))
        with self._store.write_session() as session:
            session.merge(RecentCallRow(call_id=call_id[:64], model_id=model_id, key_id=key_id, ciphertext=blob,
                                           dim=int(vec.size), net_speech_s=float(net_speech_s), at=self._store.clock()))

    def get(self, call_id: str) -> tuple[str, np.ndarray, float]:
        """(model_id, vector, net speech) of the call; StoreError when it is not (or no longer) kept."""
        with self._store.read_session() as session:
            row = session.get(RecentCallRow, call_id[:64])
            if row is None:
                raise StoreError(f"no embedding is kept for call {call_id}: unknown, too old (purged), or the caller "
                                 "never spoke enough")
            data = self._store.keyring.decrypt(row.key_id, row.ciphertext, labelled_aad(_LABEL, call_id, row.model_id))
            return row.model_id, vector_from_bytes(data, row.dim), row.net_speech_s

    def purge(self, before: dt.datetime) -> int:
        with self._store.write_session() as session:
            return int(session.execute(delete(RecentCallRow).where(RecentCallRow.at < before)).rowcount or 0)

    def count(self) -> int:
        with self._store.read_session() as session:
            return len(session.scalars(select(RecentCallRow.call_id)).all())
