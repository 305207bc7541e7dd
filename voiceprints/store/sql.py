"""The voiceprint store on SQLite (default, one file in the data directory) or PostgreSQL.

Every write is one transaction, and create-or-replace is a native upsert
(``INSERT ... ON CONFLICT DO UPDATE``) on the unique constraints: two writers
enrolling the same speaker at once cannot produce duplicates or lose the
record, and a save that fails half-way leaves the previous record as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from pathlib import Path
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from voiceprints.clock import Clock, system_clock
from voiceprints.config import CoreConfig
from voiceprints.errors import (
    EncryptionKeyError,
    StoreError,
    StoreUnavailableError,
    UnknownSpeakerError,
    VoiceprintError,
)
from voiceprints.store.base import (
    CHANGE_MEMORY_S,
    Calibration,
    EnrolmentMeta,
    StoreChanges,
    Voiceprint,
    VoiceprintSummary,
)
from voiceprints.private_files import ensure_private_dir, ensure_private_file
from voiceprints.store.crypto import (
    KeyRing,
    labelled_aad,
    record_aad,
    utterance_aad,
    vector_from_bytes,
    vector_to_bytes,
)
from voiceprints.store.migrate import upgrade
from voiceprints.store.models import (
    CalibrationRow,
    DigitTemplateRow,
    EnrolmentUtteranceRow,
    VoiceprintChange,
    LivenessChallengeRow,
    ReplayFingerprintRow,
    Speaker,
    VoiceprintRow,
    WatchlistEntryRow,
)
from voiceprints.store.engines import normalise_url, open_engine, sqlite_file

log = logging.getLogger(__name__)

# Rows per transaction when re-encrypting: small enough to keep locks short,
# large enough that rotating 100k voiceprints is a few hundred transactions.
ROTATE_BATCH = 500
# Rows fetched per round trip when loading a whole model for identification.
STREAM_BATCH = 2_000
MAX_SPEAKER_ID = 255
MAX_MODEL_ID = 128
# Columns a re-enrolment overwrites; created_at stays from the first enrolment.
_REPLACED_ON_SAVE = (
    "key_id", "ciphertext", "dim", "utterance_count", "net_speech_s", "quality", "updated_at",
)
_WRITE = "voiceprints_write"  # execution option: this connection is about to write


class SqlVoiceprintStore:
    """:class:`~voiceprints.store.base.VoiceprintStore` over SQLAlchemy; thread-safe, one per process."""

    def __init__(self, url: str, keyring: KeyRing, *, migrate: bool = True, clock: Clock = system_clock) -> None:
        try:
            self._url = normalise_url(url)
        except ArgumentError:
            raise StoreError(
                "database URL is not valid; expected e.g. sqlite:////path/voiceprints.db "
                "or postgresql+psycopg://user:password@host:5432/db"
            ) from None
        self.display_url = _display_url(self._url)
        self._keyring = keyring
        self.clock = clock
        """The wall clock of this store and of every defence store built on it (tests pin it here)."""
        self._dialect = self._url.get_backend_name()
        if self._dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"database {self.display_url}: only SQLite and PostgreSQL are supported")
        self._sqlite_file = sqlite_file(self._url)
        self._engine = _create_engine(self._url)
        # Same pool; connections taken through it announce that they write
        # (SQLite then takes the write lock up front, see _configure_sqlite).
        self._writer = self._engine.execution_options(**{_WRITE: True})
        self._read_session = sessionmaker(self._engine, expire_on_commit=False)
        self._write_session = sessionmaker(self._writer, expire_on_commit=False)
        if migrate:
            with self._guard(writing=True):
                with self._writer.begin() as conn:
                    upgrade(conn)

    # --- lifecycle -------------------------------------------------------
    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SqlVoiceprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    @property
    def engine(self) -> Engine:
        """For migrations tooling and tests; callers should use the store's methods."""
        return self._engine

    # --- voiceprints -----------------------------------------------------
    def save_voiceprint(
        self, speaker_id: str, model_id: str, vector: np.ndarray, meta: EnrolmentMeta,
        utterances: np.ndarray | None = None,
    ) -> Voiceprint:
        """Create or replace the voiceprint, and with it the per-utterance embeddings (``utterances``, k x dim).

        The utterance embeddings of an earlier enrolment are always removed: they
        belong to the voiceprint being replaced.
        """
        _check_ids(speaker_id, model_id)
        vec = np.array(vector, dtype=np.float32).reshape(-1) if np.ndim(vector) == 1 else None
        if vec is None or vec.size == 0:
            raise StoreError(
                f"voiceprint for {speaker_id!r} must be a non-empty 1-D vector; got shape {np.shape(vector)}"
            )
        if not np.all(np.isfinite(vec)):
            raise StoreError(f"voiceprint for {speaker_id!r} contains NaN or infinity; refusing to store it")
        if meta.utterance_count < 1 or not math.isfinite(meta.net_speech_s) or meta.net_speech_s < 0:
            raise StoreError(
                f"enrolment metadata for {speaker_id!r} is invalid: {meta.utterance_count} utterances, "
                f"{meta.net_speech_s} s of speech"
            )
        utt = _utterance_matrix(speaker_id, utterances, vec.size)
        # Encrypt before the transaction: it needs no database state and keeps locks short.
        key_id, blob = self._keyring.encrypt(vector_to_bytes(vec), record_aad(speaker_id, model_id))
        utt_blobs = [self._keyring.encrypt(vector_to_bytes(u), utterance_aad(speaker_id, model_id, i))
                     for i, u in enumerate(utt)]
        quality = _jsonable(dict(meta.quality))
        now = self.clock()
        with self._writing() as session:
            speaker_pk = self._upsert_speaker(session, speaker_id, now)
            ins = self._insert(VoiceprintRow).values(
                speaker_id=speaker_pk,
                model_id=model_id,
                key_id=key_id,
                ciphertext=blob,
                dim=int(vec.size),
                utterance_count=int(meta.utterance_count),
                net_speech_s=float(meta.net_speech_s),
                quality=quality,
                created_at=now,
                updated_at=now,
            )
            replaced = {col: getattr(ins.excluded, col) for col in _REPLACED_ON_SAVE}
            stmt = ins.on_conflict_do_update(
                index_elements=[VoiceprintRow.speaker_id, VoiceprintRow.model_id], set_=replaced
            ).returning(VoiceprintRow.id, VoiceprintRow.created_at)
            voiceprint_pk, created_at = session.execute(stmt).one()
            session.execute(delete(EnrolmentUtteranceRow).where(EnrolmentUtteranceRow.voiceprint_id == voiceprint_pk))
            if utt_blobs:
                session.execute(self._insert(EnrolmentUtteranceRow), [
                    {"voiceprint_id": voiceprint_pk, "position": i, "key_id": k, "ciphertext": b,
                     "dim": int(vec.size), "created_at": now} for i, (k, b) in enumerate(utt_blobs)])
            _note_change(session, speaker_id, "enrolled", now)
        return Voiceprint(
            speaker_id=speaker_id,
            model_id=model_id,
            vector=vec,
            meta=EnrolmentMeta(int(meta.utterance_count), float(meta.net_speech_s), quality),
            key_id=key_id,
            created_at=created_at,
            updated_at=now,
        )

    def get_voiceprint(self, speaker_id: str, model_id: str) -> Voiceprint | None:
        with self._guard(), self._read_session.begin() as session:
            row = session.execute(
                select(VoiceprintRow)
                .join(Speaker)
                .where(Speaker.external_id == speaker_id, VoiceprintRow.model_id == model_id)
            ).scalar_one_or_none()
        return None if row is None else self._voiceprint(speaker_id, row)

    def model_ids_for(self, speaker_id: str) -> list[str]:
        with self._guard(), self._read_session.begin() as session:
            return list(
                session.scalars(
                    select(VoiceprintRow.model_id)
                    .join(Speaker)
                    .where(Speaker.external_id == speaker_id)
                    .order_by(VoiceprintRow.model_id)
                )
            )

    def list_voiceprints(self, model_id: str | None = None) -> list[VoiceprintSummary]:
        # Selects metadata columns only: listing never even fetches the ciphertext.
        stmt = (
            select(
                Speaker.external_id,
                VoiceprintRow.model_id,
                VoiceprintRow.utterance_count,
                VoiceprintRow.net_speech_s,
                VoiceprintRow.key_id,
                VoiceprintRow.created_at,
                VoiceprintRow.updated_at,
            )
            .join(Speaker)
            .order_by(Speaker.external_id, VoiceprintRow.model_id)
        )
        if model_id is not None:
            stmt = stmt.where(VoiceprintRow.model_id == model_id)
        with self._guard(), self._read_session.begin() as session:
            return [VoiceprintSummary(*row) for row in session.execute(stmt)]

    def load_matrix(self, model_id: str) -> tuple[list[str], np.ndarray]:
        """All voiceprints of ``model_id`` decrypted into one (n, dim) float32 matrix, ordered by speaker id.

        Rows are streamed (server-side cursor on PostgreSQL) into a matrix
        allocated once from a count taken in the same snapshot, so 100k
        voiceprints cost one pass and no per-row arrays.
        """
        with self._guard(), self._snapshot() as conn:
            n, dim_min, dim_max = conn.execute(
                select(func.count(), func.min(VoiceprintRow.dim), func.max(VoiceprintRow.dim)).where(
                    VoiceprintRow.model_id == model_id
                )
            ).one()
            if n == 0:
                return [], np.zeros((0, 0), dtype=np.float32)
            if dim_min != dim_max:
                raise StoreError(
                    f"voiceprints of model {model_id!r} have different dimensions ({dim_min}..{dim_max}); "
                    "the store is inconsistent, re-enrol the affected speakers"
                )
            matrix = np.empty((n, dim_max), dtype=np.float32)
            ids: list[str] = []
            rows = conn.execute(
                select(Speaker.external_id, VoiceprintRow.key_id, VoiceprintRow.ciphertext)
                .join(Speaker)
                .where(VoiceprintRow.model_id == model_id)
                .order_by(Speaker.external_id)
                .execution_options(yield_per=STREAM_BATCH)
            )
            decrypt = self._keyring.decrypt
            row_bytes = dim_max * 4
            for i, (speaker_id, key_id, blob) in enumerate(rows):
                if i == len(matrix):  # only if the snapshot was not one after all
                    matrix = np.concatenate([matrix, np.empty_like(matrix)])
                plain = decrypt(key_id, blob, record_aad(speaker_id, model_id))
                if len(plain) != row_bytes:
                    raise StoreError(
                        f"voiceprint of {speaker_id!r} for {model_id!r} does not have dim {dim_max}"
                    )
                matrix[i] = np.frombuffer(plain, dtype="<f4")
                ids.append(speaker_id)
        return ids, matrix[: len(ids)]

    def load_utterances(self, model_id: str, speakers: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Stored enrolment-utterance embeddings of ``model_id`` (of ``speakers`` only, when given):
        (speaker id per row, float32 matrix). Voiceprints enrolled before these were kept have no rows here.
        """
        stmt = (
            select(Speaker.external_id, EnrolmentUtteranceRow.position, EnrolmentUtteranceRow.dim,
                   EnrolmentUtteranceRow.key_id, EnrolmentUtteranceRow.ciphertext)
            .select_from(EnrolmentUtteranceRow)
            .join(VoiceprintRow, EnrolmentUtteranceRow.voiceprint_id == VoiceprintRow.id)
            .join(Speaker, VoiceprintRow.speaker_id == Speaker.id)
            .where(VoiceprintRow.model_id == model_id)
            .order_by(Speaker.external_id, EnrolmentUtteranceRow.position)
        )
        if speakers is not None:
            stmt = stmt.where(Speaker.external_id.in_(list(speakers)))
        with self._guard(), self._snapshot() as conn:
            rows = conn.execute(stmt.execution_options(yield_per=STREAM_BATCH)).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        dims = {r.dim for r in rows}
        if len(dims) != 1:
            raise StoreError(f"enrolment utterances of model {model_id!r} have different dimensions {sorted(dims)}; "
                             "the store is inconsistent, re-enrol the affected speakers")
        decrypt = self._keyring.decrypt
        matrix = np.stack([
            vector_from_bytes(decrypt(key_id, blob, utterance_aad(speaker, model_id, position)), dim)
            for speaker, position, dim, key_id, blob in rows])
        return [r.external_id for r in rows], matrix

    def delete_speaker(self, speaker_id: str) -> bool:
        """Erase the speaker and every voiceprint, for real.

        On SQLite, ``secure_delete`` zeroes the freed cells and the WAL is
        checkpointed and truncated afterwards, so the ciphertext does not
        linger in free pages or old WAL frames of the file.
        """
        with self._writing() as session:
            stmt = select(Speaker.id).where(Speaker.external_id == speaker_id)
            if self._dialect == "postgresql":
                stmt = stmt.with_for_update()
            pk = session.execute(stmt).scalar_one_or_none()
            if pk is None:
                return False
            # Explicit, not only ON DELETE CASCADE: erasure must not depend on a
            # connection having PRAGMA foreign_keys switched on.
            session.execute(delete(EnrolmentUtteranceRow).where(EnrolmentUtteranceRow.voiceprint_id.in_(
                select(VoiceprintRow.id).where(VoiceprintRow.speaker_id == pk))))
            session.execute(delete(VoiceprintRow).where(VoiceprintRow.speaker_id == pk))
            session.execute(delete(DigitTemplateRow).where(DigitTemplateRow.speaker_id == pk))
            session.execute(delete(ReplayFingerprintRow).where(ReplayFingerprintRow.speaker_id == pk))
            session.execute(delete(LivenessChallengeRow).where(LivenessChallengeRow.account == speaker_id))
            session.execute(delete(Speaker).where(Speaker.id == pk))
            _note_change(session, speaker_id, "erased", self.clock())
        self._checkpoint()
        return True

    def changes_since(self, mark: int) -> StoreChanges:
        """Enrolments and erasures after ``mark`` (by any process); one small query on a short table."""
        with self._guard(), self._read_session() as session:
            rows = session.execute(select(VoiceprintChange.id, VoiceprintChange.speaker_id, VoiceprintChange.kind)
                                   .where(VoiceprintChange.id > mark)).all()
        return StoreChanges(max((r.id for r in rows), default=mark),
                            frozenset(r.speaker_id for r in rows if r.kind == "erased"),
                            frozenset(r.speaker_id for r in rows if r.kind == "enrolled"))

    def export_speaker(self, speaker_id: str) -> dict[str, object]:
        """Everything held about the speaker, vectors decrypted (it is the subject's own data).

        Raises :class:`UnknownSpeakerError` when nothing is held.
        """
        with self._guard(), self._read_session.begin() as session:
            speaker = session.scalars(select(Speaker).where(Speaker.external_id == speaker_id)).one_or_none()
            if speaker is None:
                raise UnknownSpeakerError(f"no data is held about speaker {speaker_id!r}")
            rows = session.scalars(
                select(VoiceprintRow)
                .where(VoiceprintRow.speaker_id == speaker.id)
                .order_by(VoiceprintRow.model_id)
            ).all()
            templates = session.execute(
                select(DigitTemplateRow.feature_version, DigitTemplateRow.template_count, DigitTemplateRow.created_at)
                .where(DigitTemplateRow.speaker_id == speaker.id)
            ).all()
            fingerprints = session.execute(
                select(ReplayFingerprintRow.source, ReplayFingerprintRow.created_at)
                .where(ReplayFingerprintRow.speaker_id == speaker.id)
                .order_by(ReplayFingerprintRow.created_at)
            ).all()
            utterance_rows = session.execute(
                select(EnrolmentUtteranceRow.voiceprint_id, EnrolmentUtteranceRow.position,
                       EnrolmentUtteranceRow.dim, EnrolmentUtteranceRow.key_id, EnrolmentUtteranceRow.ciphertext)
                .where(EnrolmentUtteranceRow.voiceprint_id.in_([r.id for r in rows]))
                .order_by(EnrolmentUtteranceRow.voiceprint_id, EnrolmentUtteranceRow.position)
            ).all()
        voiceprints = []
        for row in rows:
            vp = self._voiceprint(speaker_id, row)
            utterance_vectors = [
                [float(x) for x in vector_from_bytes(self._keyring.decrypt(
                    key_id, blob, utterance_aad(speaker_id, row.model_id, position)), dim)]
                for vp_id, position, dim, key_id, blob in utterance_rows if vp_id == row.id]
            voiceprints.append(
                {
                    "model_id": vp.model_id,
                    "dim": int(vp.vector.size),
                    "vector": [float(x) for x in vp.vector],
                    "enrolment_utterance_vectors": utterance_vectors,
                    "utterance_count": vp.meta.utterance_count,
                    "net_speech_s": vp.meta.net_speech_s,
                    "quality": vp.meta.quality,
                    "encryption_key_id": vp.key_id,
                    "created_at": vp.created_at.isoformat(),
                    "updated_at": vp.updated_at.isoformat(),
                }
            )
        return {
            "speaker_id": speaker_id,
            "created_at": speaker.created_at.isoformat(),
            "updated_at": speaker.updated_at.isoformat(),
            "voiceprints": voiceprints,
            # Derived from audio, not audio: listed so the subject knows they exist.
            "digit_templates": [{"feature_version": v, "templates": n, "created_at": at.isoformat()}
                                for v, n, at in templates],
            "replay_fingerprints": [{"source": src, "created_at": at.isoformat()} for src, at in fingerprints],
            "audio": "not retained",
        }

    # --- calibration -----------------------------------------------------
    def save_calibration(self, calibration: Calibration) -> None:
        values = {
            "model_id": calibration.model_id,
            "normalisation": calibration.normalisation,
            "accept_threshold": float(calibration.accept_threshold),
            "reject_threshold": float(calibration.reject_threshold),
            "target_far": float(calibration.target_far),
            "target_frr": float(calibration.target_frr),
            "n_target": int(calibration.n_target),
            "n_nontarget": int(calibration.n_nontarget),
            "source": calibration.source,
            "created_at": calibration.created_at or self.clock(),
        }
        ins = self._insert(CalibrationRow).values(**values)
        stmt = ins.on_conflict_do_update(
            index_elements=[CalibrationRow.model_id, CalibrationRow.normalisation],
            set_={k: getattr(ins.excluded, k) for k in values if k not in ("model_id", "normalisation")},
        )
        with self._writing() as session:
            session.execute(stmt)

    def get_calibration(self, model_id: str, normalisation: str) -> Calibration | None:
        with self._guard(), self._read_session.begin() as session:
            row = session.execute(
                select(CalibrationRow).where(
                    CalibrationRow.model_id == model_id, CalibrationRow.normalisation == normalisation
                )
            ).scalar_one_or_none()
        if row is None:
            return None
        return Calibration(
            model_id=row.model_id,
            normalisation=row.normalisation,
            accept_threshold=row.accept_threshold,
            reject_threshold=row.reject_threshold,
            target_far=row.target_far,
            target_frr=row.target_frr,
            n_target=row.n_target,
            n_nontarget=row.n_nontarget,
            source=row.source,
            created_at=row.created_at,
        )

    # --- for the stores of the attack defences (same database, same keys) -------
    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """One write transaction with the store's locking and error translation."""
        with self._writing() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._guard(), self._read_session.begin() as session:
            yield session

    def insert(self, table: Any) -> Any:
        """A dialect INSERT (with ON CONFLICT support) for ``table``."""
        return self._insert(table)

    def upsert_speaker(self, session: Session, speaker_id: str) -> int:
        """The speaker's row id, creating the row if needed (inside ``session``)."""
        _check_ids(speaker_id, "-")
        return self._upsert_speaker(session, speaker_id, self.clock())

    def speaker_pk(self, session: Session, speaker_id: str) -> int | None:
        return session.execute(select(Speaker.id).where(Speaker.external_id == speaker_id)).scalar_one_or_none()

    # --- keys ------------------------------------------------------------
    def rotate_keys(self, batch_size: int = ROTATE_BATCH) -> int:
        """Re-encrypt every record not under the primary key, ``batch_size`` per transaction.

        Returns how many voiceprints were re-encrypted; their enrolment-utterance
        embeddings are re-encrypted too.

        Safe to interrupt and re-run: each batch commits on its own, records
        not yet re-encrypted stay readable through their old key (which stays
        in the ring until rotation is done), and a second run finds nothing.
        """
        primary = self._keyring.primary_id
        total = 0
        while True:
            with self._writing() as session:
                stmt = (
                    select(
                        VoiceprintRow.id,
                        Speaker.external_id,
                        VoiceprintRow.model_id,
                        VoiceprintRow.key_id,
                        VoiceprintRow.ciphertext,
                    )
                    .join(Speaker)
                    .where(VoiceprintRow.key_id != primary)
                    .order_by(VoiceprintRow.id)
                    .limit(batch_size)
                )
                if self._dialect == "postgresql":
                    stmt = stmt.with_for_update(of=VoiceprintRow)
                rows = session.execute(stmt).all()
                if not rows:
                    break
                updates = []
                for pk, speaker_id, model_id, key_id, blob in rows:
                    aad = record_aad(speaker_id, model_id)
                    plain = self._keyring.decrypt(key_id, blob, aad)
                    new_key_id, new_blob = self._keyring.encrypt(plain, aad)
                    updates.append({"id": pk, "key_id": new_key_id, "ciphertext": new_blob})
                session.execute(update(VoiceprintRow), updates)
                total += len(updates)
            log.info("re-encrypted %d voiceprints under key %r", total, primary)
        utterances = self._rotate_utterances(batch_size)
        if utterances:
            log.info("re-encrypted %d enrolment-utterance embeddings under key %r", utterances, primary)
        others = self._rotate_other(batch_size)
        if total or utterances or others:
            self._checkpoint()  # old ciphertexts out of the WAL too
        return total + others

    def check_keys(self) -> None:
        """Decrypt one stored record per configured key id: a host whose key differs fails here, at start.

        Two hosts configured with different bytes under the same id (``k1``)
        would each write records the other cannot read; finding it when the
        worker starts beats finding it in a caller's verification.
        """
        for key_id in self._keyring:
            with self._guard(), self._read_session.begin() as session:
                row = session.execute(
                    select(Speaker.external_id, VoiceprintRow.model_id, VoiceprintRow.ciphertext)
                    .join(Speaker)
                    .where(VoiceprintRow.key_id == key_id)
                    .limit(1)
                ).first()
            if row is None:
                continue
            try:
                self._keyring.decrypt(key_id, row.ciphertext, record_aad(row.external_id, row.model_id))
            except EncryptionKeyError:
                raise EncryptionKeyError(
                    f"key {key_id!r} configured on this host does not decrypt the voiceprints stored under "
                    f"{key_id!r} in {self.display_url}: another host wrote them with different key bytes. "
                    f"Every worker must have the same {self._keyring.env_name} or key file (docs/deploy.md)"
                ) from None

    def _rotate_other(self, batch_size: int) -> int:
        """Re-encrypt digit templates, replay fingerprints and watchlist entries not under the primary key."""
        primary = self._keyring.primary_id
        tables: list[tuple[Any, Any, Any]] = [
            (DigitTemplateRow, select(DigitTemplateRow.id, Speaker.external_id, DigitTemplateRow.feature_version,
                                      DigitTemplateRow.key_id, DigitTemplateRow.ciphertext).join(
                Speaker, Speaker.id == DigitTemplateRow.speaker_id), "digit-templates"),
            (ReplayFingerprintRow, select(ReplayFingerprintRow.id, Speaker.external_id, ReplayFingerprintRow.source,
                                          ReplayFingerprintRow.key_id, ReplayFingerprintRow.ciphertext).join(
                Speaker, Speaker.id == ReplayFingerprintRow.speaker_id), "replay-fingerprint"),
            (WatchlistEntryRow, select(WatchlistEntryRow.id, WatchlistEntryRow.name, WatchlistEntryRow.model_id,
                                       WatchlistEntryRow.key_id, WatchlistEntryRow.ciphertext), "watchlist"),
        ]
        total = 0
        for table, stmt, label in tables:
            while True:
                with self._writing() as session:
                    batch = stmt.where(table.key_id != primary).order_by(table.id).limit(batch_size)
                    if self._dialect == "postgresql":
                        batch = batch.with_for_update(of=table)
                    rows = session.execute(batch).all()
                    if not rows:
                        break
                    updates = []
                    for pk, owner, part, key_id, blob in rows:
                        aad = labelled_aad(label, owner, part)
                        new_key_id, new_blob = self._keyring.encrypt(self._keyring.decrypt(key_id, blob, aad), aad)
                        updates.append({"id": pk, "key_id": new_key_id, "ciphertext": new_blob})
                    session.execute(update(table), updates)
                    total += len(updates)
        return total

    def _rotate_utterances(self, batch_size: int) -> int:
        """``rotate_keys`` for the enrolment-utterance embeddings; returns how many were re-encrypted."""
        primary = self._keyring.primary_id
        total = 0
        while True:
            with self._writing() as session:
                stmt = (
                    select(EnrolmentUtteranceRow.id, Speaker.external_id, VoiceprintRow.model_id,
                           EnrolmentUtteranceRow.position, EnrolmentUtteranceRow.key_id,
                           EnrolmentUtteranceRow.ciphertext)
                    .select_from(EnrolmentUtteranceRow)
                    .join(VoiceprintRow, EnrolmentUtteranceRow.voiceprint_id == VoiceprintRow.id)
                    .join(Speaker, VoiceprintRow.speaker_id == Speaker.id)
                    .where(EnrolmentUtteranceRow.key_id != primary)
                    .order_by(EnrolmentUtteranceRow.id)
                    .limit(batch_size)
                )
                if self._dialect == "postgresql":
                    stmt = stmt.with_for_update(of=EnrolmentUtteranceRow)
                rows = session.execute(stmt).all()
                if not rows:
                    return total
                updates = []
                for pk, speaker_id, model_id, position, key_id, blob in rows:
                    aad = utterance_aad(speaker_id, model_id, position)
                    new_key_id, new_blob = self._keyring.encrypt(self._keyring.decrypt(key_id, blob, aad), aad)
                    updates.append({"id": pk, "key_id": new_key_id, "ciphertext": new_blob})
                session.execute(update(EnrolmentUtteranceRow), updates)
                total += len(updates)

    def speakers(self) -> Sequence[str]:
        with self._guard(), self._read_session.begin() as session:
            return list(session.scalars(select(Speaker.external_id).order_by(Speaker.external_id)))

    # --- internals -------------------------------------------------------
    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    def _upsert_speaker(self, session: Session, speaker_id: str, now: dt.datetime) -> int:
        # DO UPDATE (not DO NOTHING) so RETURNING always yields the id, and the
        # speaker row is locked for the rest of the transaction on PostgreSQL.
        ins = self._insert(Speaker).values(external_id=speaker_id, created_at=now, updated_at=now)
        stmt = ins.on_conflict_do_update(
            index_elements=[Speaker.external_id], set_={"updated_at": ins.excluded.updated_at}
        ).returning(Speaker.id)
        return int(session.execute(stmt).scalar_one())

    def _voiceprint(self, speaker_id: str, row: VoiceprintRow) -> Voiceprint:
        plain = self._keyring.decrypt(row.key_id, row.ciphertext, record_aad(speaker_id, row.model_id))
        return Voiceprint(
            speaker_id=speaker_id,
            model_id=row.model_id,
            vector=vector_from_bytes(plain, row.dim),
            meta=EnrolmentMeta(row.utterance_count, row.net_speech_s, dict(row.quality or {})),
            key_id=row.key_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """One write transaction, with failures translated (and "nothing was written" meant)."""
        with self._guard(writing=True), self._write_session.begin() as session:
            if self._sqlite_file is not None:
                self._check_sqlite_file(session)
            yield session

    def _check_sqlite_file(self, session: Session) -> None:
        """Refuse to write into a database file that was deleted or replaced under us.

        SQLite keeps writing happily to an open file whose name was unlinked
        (data dir removed, file restored from backup): every later write would
        be lost silently. One stat per write transaction is cheap insurance.
        """
        fairy = session.connection().connection
        opened = fairy.info.get("file_identity")
        try:
            st = os.stat(self._sqlite_file)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if opened is not None and current != opened:
            fairy.invalidate()
            raise StoreUnavailableError(
                f"database file {self.display_url} was deleted or replaced while in use; nothing was written"
            )

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent state across several statements."""
        with self._engine.connect() as conn:
            if self._dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            # SQLite: one BEGIN DEFERRED transaction already reads one snapshot.
            with conn.begin():
                yield conn

    def _checkpoint(self) -> None:
        if self._dialect != "sqlite":
            return
        with self._guard(), self._engine.connect() as conn:
            # On the raw connection: a checkpoint cannot run inside the BEGIN
            # that SQLAlchemy would otherwise open first.
            raw = conn.connection.dbapi_connection
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.info("WAL checkpoint deferred: a reader is active; SQLite finishes it on a later write")

    @contextmanager
    def _guard(self, writing: bool = False) -> Iterator[None]:
        """Translate database failures into the store's typed errors, never leaking the password."""
        try:
            yield
        except VoiceprintError:
            raise
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailableError(self._unavailable(exc, writing)) from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailableError(self._unavailable(exc, writing)) from None
            raise StoreError(
                f"database at {self.display_url} rejected the operation: {self._reason(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database at {self.display_url} failed: {self._reason(exc)}") from exc

    def _unavailable(self, exc: Exception, writing: bool) -> str:
        suffix = "; nothing was written" if writing else ""
        if self._dialect == "sqlite":
            return f"database file {self.display_url} cannot be used: {self._reason(exc)}{suffix}"
        return f"database at {self.display_url} is unreachable: {self._reason(exc)}{suffix}"

    def _reason(self, exc: Exception) -> str:
        orig = getattr(exc, "orig", None) or exc
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        # SQLAlchemy appends the statement and a help link; the driver's words come first.
        lines = [line for line in lines if not line.startswith(("[SQL:", "[parameters:", "(Background on"))]
        reason = "; ".join(lines) or type(orig).__name__
        if self._url.password:
            reason = reason.replace(str(self._url.password), "***")
        return reason


def open_store(config: CoreConfig) -> SqlVoiceprintStore:
    """The store configured in ``config``: creates the data directory and (first run) the key file."""
    try:
        ensure_private_dir(config.data_dir)
        path = sqlite_file(normalise_url(config.database_url()))
        if path is not None:
            ensure_private_file(Path(path))
    except OSError as exc:
        raise StoreError(f"data directory {config.data_dir} cannot be created: {exc.strerror}") from None
    shared = shared_store(config.database_url())
    keyring = KeyRing.from_env_or_file(config.store.key_env, config.store.key_file, config.data_dir,
                                       shared_store=shared)
    store = SqlVoiceprintStore(config.database_url(), keyring)
    if shared is not None:
        try:
            store.check_keys()
        except BaseException:
            store.close()
            raise
    return store


def shared_store(url: str) -> str | None:
    """The display URL when ``url`` is a database several hosts can share (PostgreSQL), else None.

    An SQLite file belongs to one host, whose data directory may hold
    generated keys and secrets; a database server is what several workers
    on several hosts use at once, and they must all hold the same keys.
    """
    try:
        parsed = normalise_url(url)
    except ArgumentError:
        return None  # SqlVoiceprintStore reports the malformed URL
    return None if parsed.get_backend_name() == "sqlite" else _display_url(parsed)


# --- helpers -----------------------------------------------------------------
def _display_url(url: URL) -> str:
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def _create_engine(url: URL) -> Engine:
    engine = open_engine(url)
    if url.get_backend_name() == "sqlite":
        _explicit_transactions(engine)
    return engine


def _explicit_transactions(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # We issue BEGIN ourselves (below); pysqlite's implicit BEGIN would be DEFERRED always.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock at BEGIN: a deferred transaction that
        # reads first and writes later fails with SQLITE_BUSY immediately (no
        # busy wait) when another writer committed in between.
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def _check_ids(speaker_id: str, model_id: str) -> None:
    if not isinstance(speaker_id, str) or not speaker_id.strip() or len(speaker_id) > MAX_SPEAKER_ID:
        raise StoreError(f"speaker id must be 1-{MAX_SPEAKER_ID} characters; got {str(speaker_id)[:40]!r}")
    if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > MAX_MODEL_ID:
        raise StoreError(f"model id must be 1-{MAX_MODEL_ID} characters; got {str(model_id)[:40]!r}")


def _utterance_matrix(speaker_id: str, utterances: np.ndarray | None, dim: int) -> np.ndarray:
    """The per-utterance embeddings to store with a voiceprint, checked (k x dim, finite)."""
    if utterances is None:
        return np.zeros((0, dim), dtype=np.float32)
    utt = np.asarray(utterances, dtype=np.float32)
    if utt.ndim != 2 or utt.shape[1] != dim:
        raise StoreError(f"enrolment utterances of {speaker_id!r} must be a matrix of k x {dim}; "
                         f"got shape {utt.shape}")
    if not np.all(np.isfinite(utt)):
        raise StoreError(f"enrolment utterances of {speaker_id!r} contain NaN or infinity; refusing to store them")
    return utt


def _jsonable(value: Any) -> Any:
    """Quality summaries come from numpy: plain Python types, and no NaN (PostgreSQL JSON rejects it)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _note_change(session: Session, speaker_id: str, kind: str, now: dt.datetime) -> None:
    """Journal a change for other processes' caches, in the transaction that makes it; prune old entries."""
    session.execute(delete(VoiceprintChange).where(VoiceprintChange.at < now - dt.timedelta(seconds=CHANGE_MEMORY_S)))
    session.add(VoiceprintChange(speaker_id=speaker_id, kind=kind, at=now))
