"""Behaviour of the SQL voiceprint store, on SQLite and on PostgreSQL.

Every test that takes ``store`` (or ``db_url``) runs against both backends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing
import socket
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from tests.store_support import db_url, pg_admin_connect, pg_database, unit_vectors  # noqa: F401 (fixtures)
from voiceprints.config import CoreConfig, StoreConfig
from voiceprints.errors import (
    EncryptionKeyError,
    StoreError,
    StoreUnavailableError,
    UnknownSpeakerError,
)
from voiceprints.store import (
    Calibration,
    EnrolmentMeta,
    KeyRing,
    SqlVoiceprintStore,
    VoiceprintSummary,
    open_store,
)
from voiceprints.store.crypto import vector_to_bytes

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(50, 82))
META = EnrolmentMeta(utterance_count=3, net_speech_s=9.25, quality={"mean_snr_db": 24.5, "consistency": 0.81})


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing([("k1", KEY_1)])


@pytest.fixture
def store(db_url, keyring):  # noqa: F811
    s = SqlVoiceprintStore(db_url, keyring)
    yield s
    s.close()


def is_sqlite(store: SqlVoiceprintStore) -> bool:
    return store.engine.dialect.name == "sqlite"


def count(store: SqlVoiceprintStore, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def raw_ciphertext(store: SqlVoiceprintStore, speaker_id: str, model_id: str) -> bytes:
    with store.engine.connect() as conn:
        return bytes(
            conn.execute(
                text(
                    "SELECT v.ciphertext FROM voiceprints v JOIN speakers s ON s.id = v.speaker_id "
                    "WHERE s.external_id = :s AND v.model_id = :m"
                ),
                {"s": speaker_id, "m": model_id},
            ).scalar_one()
        )


def set_ciphertext(store: SqlVoiceprintStore, speaker_id: str, model_id: str, blob: bytes) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE voiceprints SET ciphertext = :c WHERE model_id = :m "
                "AND speaker_id = (SELECT id FROM speakers WHERE external_id = :s)"
            ),
            {"c": blob, "s": speaker_id, "m": model_id},
        )


def sqlite_files_bytes(store: SqlVoiceprintStore) -> bytes:
    path = Path(store.engine.url.database)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# --- round trip ------------------------------------------------------------------
def test_saved_voiceprint_reads_back_bit_exact_with_its_metadata(store):
    vector = unit_vectors(1, 256)[0]
    saved = store.save_voiceprint("alice", "ge2e-v1", vector, META)
    loaded = store.get_voiceprint("alice", "ge2e-v1")
    assert loaded is not None
    assert loaded.vector.dtype == np.float32 and np.array_equal(loaded.vector, vector)
    assert loaded.meta == META
    assert loaded.key_id == "k1"
    assert loaded.created_at == saved.created_at and loaded.updated_at == saved.updated_at
    assert loaded.created_at.tzinfo is not None and loaded.created_at.utcoffset() == dt.timedelta(0)
    assert abs(loaded.created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_unknown_speaker_or_model_reads_as_none(store):
    store.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], META)
    assert store.get_voiceprint("bob", "ge2e-v1") is None
    assert store.get_voiceprint("alice", "ecapa-v1") is None


def test_saving_again_replaces_the_record_and_moves_updated_at(store):
    first, second = unit_vectors(2)
    original = store.save_voiceprint("alice", "ge2e-v1", first, META)
    time.sleep(0.01)
    new_meta = EnrolmentMeta(utterance_count=5, net_speech_s=15.0, quality={"mean_snr_db": 30.0})
    store.save_voiceprint("alice", "ge2e-v1", second, new_meta)
    assert count(store, "voiceprints") == 1 and count(store, "speakers") == 1
    loaded = store.get_voiceprint("alice", "ge2e-v1")
    assert np.array_equal(loaded.vector, second) and loaded.meta == new_meta
    assert loaded.created_at == original.created_at
    assert loaded.updated_at > original.updated_at


def test_models_of_a_speaker_are_listed_once_each(store):
    v = unit_vectors(3)
    store.save_voiceprint("alice", "ge2e-v1", v[0], META)
    store.save_voiceprint("alice", "ecapa-v1", v[1], META)
    store.save_voiceprint("alice", "ge2e-v1", v[2], META)
    store.save_voiceprint("bob", "ge2e-v1", v[2], META)
    assert store.model_ids_for("alice") == ["ecapa-v1", "ge2e-v1"]
    assert store.model_ids_for("carol") == []
    assert list(store.speakers()) == ["alice", "bob"]


def test_listing_shows_metadata_but_never_vectors(store):
    v = unit_vectors(3)
    store.save_voiceprint("bob", "ge2e-v1", v[0], META)
    store.save_voiceprint("alice", "ge2e-v1", v[1], META)
    store.save_voiceprint("alice", "ecapa-v1", v[2], EnrolmentMeta(4, 12.0))
    listed = store.list_voiceprints()
    assert [(s.speaker_id, s.model_id) for s in listed] == [
        ("alice", "ecapa-v1"),
        ("alice", "ge2e-v1"),
        ("bob", "ge2e-v1"),
    ]
    assert listed[0].utterance_count == 4 and listed[0].net_speech_s == 12.0 and listed[0].key_id == "k1"
    assert all(isinstance(s, VoiceprintSummary) for s in listed)
    assert not {"vector", "ciphertext"} & {f.name for f in dataclasses.fields(VoiceprintSummary)}
    assert [s.speaker_id for s in store.list_voiceprints("ge2e-v1")] == ["alice", "bob"]
    assert store.list_voiceprints("unknown-model") == []


def test_matrix_of_a_model_has_rows_in_the_order_of_its_ids(store):
    vectors = unit_vectors(30, 192, seed=3)
    names = [f"spk{i:03d}" for i in range(30)]
    for i in np.random.default_rng(0).permutation(30):  # insertion order differs from id order
        store.save_voiceprint(names[i], "ge2e-v1", vectors[i], META)
    store.save_voiceprint("spk000", "ecapa-v1", unit_vectors(1, 64)[0], META)  # another model: excluded
    ids, matrix = store.load_matrix("ge2e-v1")
    assert ids == sorted(names)
    assert matrix.shape == (30, 192) and matrix.dtype == np.float32
    for row, speaker in zip(matrix, ids):
        assert np.array_equal(row, vectors[names.index(speaker)])
    ids, matrix = store.load_matrix("ecapa-v1")
    assert ids == ["spk000"] and matrix.shape == (1, 64)
    ids, matrix = store.load_matrix("no-such-model")
    assert ids == [] and matrix.shape[0] == 0


def test_deleting_a_speaker_erases_every_trace_of_them(store):
    v = unit_vectors(3)
    store.save_voiceprint("alice", "ge2e-v1", v[0], META)
    store.save_voiceprint("alice", "ecapa-v1", v[1], META)
    store.save_voiceprint("bob", "ge2e-v1", v[2], META)
    old_blobs = [raw_ciphertext(store, "alice", m) for m in ("ge2e-v1", "ecapa-v1")]
    if is_sqlite(store):
        assert all(blob in sqlite_files_bytes(store) for blob in old_blobs)  # the scan below can see them

    assert store.delete_speaker("alice") is True

    assert store.get_voiceprint("alice", "ge2e-v1") is None
    assert store.model_ids_for("alice") == [] and list(store.speakers()) == ["bob"]
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT count(*) FROM voiceprints v JOIN speakers s ON s.id = v.speaker_id "
                "WHERE s.external_id = 'alice'"
            )
        ).scalar_one()
        speakers = conn.execute(text("SELECT count(*) FROM speakers WHERE external_id='alice'")).scalar_one()
    assert rows == 0 and speakers == 0
    assert count(store, "voiceprints") == 1  # bob untouched
    assert np.array_equal(store.get_voiceprint("bob", "ge2e-v1").vector, v[2])
    if is_sqlite(store):
        content = sqlite_files_bytes(store)
        assert not any(blob in content for blob in old_blobs)
    assert store.delete_speaker("alice") is False


def test_export_returns_everything_held_as_json(store):
    v = unit_vectors(2, 128)
    store.save_voiceprint("alice", "ge2e-v1", v[0], META)
    store.save_voiceprint("alice", "ecapa-v1", v[1], EnrolmentMeta(4, 11.0))
    exported = json.loads(json.dumps(store.export_speaker("alice")))
    assert exported["speaker_id"] == "alice"
    assert dt.datetime.fromisoformat(exported["created_at"]).tzinfo is not None
    by_model = {vp["model_id"]: vp for vp in exported["voiceprints"]}
    assert set(by_model) == {"ge2e-v1", "ecapa-v1"}
    ge2e = by_model["ge2e-v1"]
    assert np.array_equal(np.array(ge2e["vector"], dtype=np.float32), v[0])
    assert ge2e["utterance_count"] == 3 and ge2e["net_speech_s"] == 9.25 and ge2e["quality"] == META.quality
    assert ge2e["dim"] == 128 and ge2e["created_at"] and ge2e["updated_at"]
    with pytest.raises(UnknownSpeakerError, match="'carol'"):
        store.export_speaker("carol")


def test_no_plaintext_vector_is_ever_written_to_the_database(store):
    vectors = unit_vectors(5, 192, seed=11)
    for i, v in enumerate(vectors):
        store.save_voiceprint(f"s{i}", "ge2e-v1", v, META)
    plains = [vector_to_bytes(v) for v in vectors]
    # Any 16-byte window of a plaintext would give it away.
    windows = [p[j : j + 16] for p in plains for j in (0, 200, len(p) - 16)]
    if is_sqlite(store):
        content = sqlite_files_bytes(store)
        assert raw_ciphertext(store, "s0", "ge2e-v1") in content  # the scan does see stored bytes
    else:
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT ciphertext, t::text FROM voiceprints t")).all()
        content = b"".join(bytes(blob) + txt.encode() for blob, txt in rows)
        windows += [w.hex().encode() for w in windows]  # bytea text form is hex
        assert rows and all(len(bytes(blob)) == 12 + 192 * 4 + 16 for blob, _ in rows)
    assert not any(w in content for w in windows)


# --- integrity and keys ----------------------------------------------------------
def test_tampered_ciphertext_is_refused(store):
    store.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], META)
    blob = bytearray(raw_ciphertext(store, "alice", "ge2e-v1"))
    blob[40] ^= 0x80
    set_ciphertext(store, "alice", "ge2e-v1", bytes(blob))
    with pytest.raises(EncryptionKeyError, match="altered"):
        store.get_voiceprint("alice", "ge2e-v1")
    with pytest.raises(EncryptionKeyError):
        store.load_matrix("ge2e-v1")


def test_ciphertexts_swapped_between_speakers_are_refused(store):
    a, b = unit_vectors(2)
    store.save_voiceprint("alice", "ge2e-v1", a, META)
    store.save_voiceprint("mallory", "ge2e-v1", b, META)
    blob_a, blob_m = raw_ciphertext(store, "alice", "ge2e-v1"), raw_ciphertext(store, "mallory", "ge2e-v1")
    set_ciphertext(store, "alice", "ge2e-v1", blob_m)
    set_ciphertext(store, "mallory", "ge2e-v1", blob_a)
    for speaker in ("alice", "mallory"):
        with pytest.raises(EncryptionKeyError):
            store.get_voiceprint(speaker, "ge2e-v1")


def test_records_under_a_key_that_is_not_configured_say_which_key_is_missing(store, db_url):  # noqa: F811
    store.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], META)
    with SqlVoiceprintStore(db_url, KeyRing([("k2", KEY_2)])) as other:
        with pytest.raises(EncryptionKeyError) as info:
            other.get_voiceprint("alice", "ge2e-v1")
        expected = "record encrypted with key 'k1' which is not configured; add it to VOICEAUTH_KEYS"
        assert expected in str(info.value)
    with SqlVoiceprintStore(db_url, KeyRing([("k1", KEY_2)])) as wrong:
        with pytest.raises(EncryptionKeyError, match="does not authenticate under key 'k1'"):
            wrong.get_voiceprint("alice", "ge2e-v1")
        with pytest.raises(EncryptionKeyError):
            wrong.export_speaker("alice")


def test_key_rotation_re_encrypts_everything_and_survives_removing_the_old_key(store, db_url):  # noqa: F811
    vectors = unit_vectors(7, seed=5)
    for i in range(5):
        store.save_voiceprint(f"s{i}", "ge2e-v1", vectors[i], META)
    new_ring = store.keyring.with_primary("k2", KEY_2)
    with SqlVoiceprintStore(db_url, new_ring) as rotating:
        # New enrolments already use k2 while old ones are still k1: both readable.
        for i in (5, 6):
            rotating.save_voiceprint(f"s{i}", "ge2e-v1", vectors[i], META)
        assert sorted(s.key_id for s in rotating.list_voiceprints()) == ["k1"] * 5 + ["k2"] * 2
        assert np.array_equal(rotating.load_matrix("ge2e-v1")[1], vectors)
        before = {s.speaker_id: s.updated_at for s in rotating.list_voiceprints()}

        assert rotating.rotate_keys(batch_size=2) == 5
        assert {s.key_id for s in rotating.list_voiceprints()} == {"k2"}
        assert rotating.rotate_keys() == 0  # idempotent
        assert {s.speaker_id: s.updated_at for s in rotating.list_voiceprints()} == before

    with SqlVoiceprintStore(db_url, new_ring.without("k1")) as rotated:
        ids, matrix = rotated.load_matrix("ge2e-v1")
        assert ids == [f"s{i}" for i in range(7)] and np.array_equal(matrix, vectors)
    with SqlVoiceprintStore(db_url, KeyRing([("k1", KEY_1)])) as old_only:
        with pytest.raises(EncryptionKeyError, match="'k2' which is not configured"):
            old_only.get_voiceprint("s0", "ge2e-v1")


# --- calibration ------------------------------------------------------------------
def test_calibration_round_trip_and_replacement(store):
    cal = Calibration(
        model_id="ge2e-v1",
        normalisation="asnorm",
        accept_threshold=2.5,
        reject_threshold=1.25,
        target_far=0.01,
        target_frr=0.02,
        n_target=400,
        n_nontarget=16000,
        source="manifests/dev.csv",
    )
    store.save_calibration(cal)
    loaded = store.get_calibration("ge2e-v1", "asnorm")
    assert dataclasses.replace(loaded, created_at=None) == cal
    assert loaded.created_at.tzinfo is not None
    store.save_calibration(dataclasses.replace(cal, accept_threshold=2.75, source="manifests/dev2.csv"))
    assert store.get_calibration("ge2e-v1", "asnorm").accept_threshold == 2.75
    assert count(store, "calibrations") == 1
    assert store.get_calibration("ge2e-v1", "none") is None
    assert store.get_calibration("ecapa-v1", "asnorm") is None


# --- bad input --------------------------------------------------------------------
@pytest.mark.parametrize(
    "speaker, model, vector, meta, expected",
    [
        ("", "ge2e-v1", np.ones(8, np.float32), META, "speaker id must be"),
        ("x" * 256, "ge2e-v1", np.ones(8, np.float32), META, "speaker id must be"),
        ("alice", "", np.ones(8, np.float32), META, "model id must be"),
        ("alice", "ge2e-v1", np.array([1.0, np.nan], np.float32), META, "NaN"),
        ("alice", "ge2e-v1", np.ones((2, 4), np.float32), META, "1-D"),
        ("alice", "ge2e-v1", np.ones(0, np.float32), META, "non-empty"),
        ("alice", "ge2e-v1", np.ones(8, np.float32), EnrolmentMeta(0, 9.0), "0 utterances"),
        ("alice", "ge2e-v1", np.ones(8, np.float32), EnrolmentMeta(3, float("nan")), "invalid"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(store, speaker, model, vector, meta, expected):
    with pytest.raises(StoreError, match=expected):
        store.save_voiceprint(speaker, model, vector, meta)
    assert count(store, "voiceprints") == 0 and count(store, "speakers") == 0


def test_quality_summaries_from_numpy_are_stored_as_plain_json(store):
    quality = {"mean_snr_db": np.float32(21.5), "per_utt": np.array([1.0, 2.0]), "worst": float("inf")}
    saved = store.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], EnrolmentMeta(3, 9.0, quality))
    loaded = store.get_voiceprint("alice", "ge2e-v1")
    expected = {"mean_snr_db": 21.5, "per_utt": [1.0, 2.0], "worst": None}
    assert loaded.meta.quality == saved.meta.quality == expected


# --- concurrency ------------------------------------------------------------------
SPEAKERS = [f"spk{i}" for i in range(6)]
MODELS = ["ge2e-v1", "ecapa-v1"]


def write_many(url: str, key: bytes, worker: int, n: int = 50) -> None:
    """Save ``n`` voiceprints over overlapping (speaker, model) pairs; vector encodes (worker, i)."""
    with SqlVoiceprintStore(url, KeyRing([("k1", key)])) as s:
        for i in range(n):
            vector = np.full(16, worker * 1000 + i, dtype=np.float32)
            s.save_voiceprint(SPEAKERS[(worker + i) % len(SPEAKERS)], MODELS[i % 2], vector, META)


def assert_consistent_after(store: SqlVoiceprintStore, workers: int, n: int = 50) -> None:
    written: dict[tuple[str, str], set[float]] = {}
    for w in range(workers):
        for i in range(n):
            written.setdefault((SPEAKERS[(w + i) % len(SPEAKERS)], MODELS[i % 2]), set()).add(w * 1000 + i)
    listed = [(s.speaker_id, s.model_id) for s in store.list_voiceprints()]
    assert sorted(listed) == sorted(written)  # each pair exactly once
    for speaker, model in written:
        vector = store.get_voiceprint(speaker, model).vector
        # One whole write won: all elements from the same (worker, i), and one that was written.
        assert len(set(vector.tolist())) == 1 and vector[0] in written[(speaker, model)]
    assert count(store, "speakers") == len({s for s, _ in written})


def test_concurrent_writers_in_threads_leave_one_consistent_record_per_pair(db_url):  # noqa: F811
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            write_many(db_url, KEY_1, worker)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    # Each thread opens its own store on the fresh database: start-up migrations race too.
    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with SqlVoiceprintStore(db_url, KeyRing([("k1", KEY_1)])) as s:
        assert_consistent_after(s, 4)


def test_two_processes_writing_one_sqlite_file_do_not_conflict(tmp_path):
    url = f"sqlite:///{tmp_path / 'voiceprints.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_many, args=(url, KEY_1, w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with SqlVoiceprintStore(url, KeyRing([("k1", KEY_1)])) as s:
        assert_consistent_after(s, 2)


# --- database unavailable -----------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgresql_is_reported_with_the_password_masked():
    port = closed_port()
    url = f"postgresql+psycopg://voice:s3cretpw@127.0.0.1:{port}/voiceauth"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        SqlVoiceprintStore(url, KeyRing([("k1", KEY_1)]))
    message = str(info.value)
    masked = f"postgresql://voice:***@127.0.0.1:{port}/voiceauth"
    assert message.startswith(f"database at {masked} is unreachable: ")
    assert message.endswith("nothing was written")
    assert "s3cretpw" not in message and "s3cretpw" not in repr(info.value.__cause__)
    assert info.value.code == "store_unavailable"
    assert time.monotonic() - started < 10


@pytest.mark.postgres
def test_postgresql_going_away_mid_save_keeps_the_previous_record(pg_database):  # noqa: F811
    import psycopg

    from tests.store_support import pg_url, reset_pg_schema

    reset_pg_schema(pg_database)
    url = pg_url(pg_database)
    old, new = unit_vectors(2)
    with SqlVoiceprintStore(url, KeyRing([("k1", KEY_1)])) as s, pg_admin_connect() as admin:
        s.save_voiceprint("alice", "ge2e-v1", old, META)
        # Hold alice's row so the next save blocks inside its transaction, then kill its connection.
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{pg_database}") as holder:
            holder.execute("SELECT id FROM speakers WHERE external_id = 'alice' FOR UPDATE")
            outcome: list[BaseException | None] = []

            def save() -> None:
                try:
                    s.save_voiceprint("alice", "ge2e-v1", new, EnrolmentMeta(5, 20.0))
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            saver = threading.Thread(target=save)
            saver.start()
            deadline = time.monotonic() + 10
            killed = False
            while time.monotonic() < deadline and not killed:
                pids = [
                    r[0]
                    for r in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                        (pg_database,),
                    ).fetchall()
                ]
                for pid in pids:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    killed = True
                time.sleep(0.05)
            saver.join(timeout=15)
            holder.rollback()
        assert killed and len(outcome) == 1
        error = outcome[0]
        assert isinstance(error, StoreUnavailableError), error
        assert f"database at postgresql://postgres@127.0.0.1:5432/{pg_database} is unreachable" in str(error)
        assert str(error).endswith("nothing was written")
        # The failed save changed nothing, and the store recovers on its own (pre-ping).
        kept = s.get_voiceprint("alice", "ge2e-v1")
        assert np.array_equal(kept.vector, old) and kept.meta == META
        s.save_voiceprint("bob", "ge2e-v1", new, META)
        assert list(s.speakers()) == ["alice", "bob"]


def test_sqlite_database_in_a_missing_directory_is_a_store_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'gone' / 'voiceprints.db'}"
    with pytest.raises(StoreUnavailableError, match=r"cannot be used: unable to open database file"):
        SqlVoiceprintStore(url, KeyRing([("k1", KEY_1)]))


def test_sqlite_file_deleted_while_in_use_refuses_writes_instead_of_losing_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with SqlVoiceprintStore(f"sqlite:///{data / 'voiceprints.db'}", KeyRing([("k1", KEY_1)])) as s:
        s.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], META)
        for p in data.iterdir():
            p.unlink()
        data.rmdir()
        for _ in range(2):  # the connection that noticed, then a fresh one
            with pytest.raises(StoreError, match="nothing was written"):
                s.save_voiceprint("bob", "ge2e-v1", unit_vectors(1)[0], META)


def test_invalid_or_unsupported_urls_are_store_errors():
    with pytest.raises(StoreError, match="not valid"):
        SqlVoiceprintStore("not a url", KeyRing([("k1", KEY_1)]))
    with pytest.raises(StoreError, match="only SQLite and PostgreSQL") as info:
        SqlVoiceprintStore("mysql://root:hunter2@localhost/x", KeyRing([("k1", KEY_1)]))
    assert "hunter2" not in str(info.value)


# --- opening from configuration --------------------------------------------------------
def test_open_store_creates_data_dir_key_file_and_database_and_reopens_them(tmp_path, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    config = CoreConfig(data_dir=tmp_path / "new" / "data")
    vector = unit_vectors(1)[0]
    with open_store(config) as s:
        s.save_voiceprint("alice", "ge2e-v1", vector, META)
    key_file = config.data_dir / "voiceprint.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (config.data_dir / "voiceprints.db").exists()
    with open_store(config) as s:  # same key found again
        assert np.array_equal(s.get_voiceprint("alice", "ge2e-v1").vector, vector)


def test_open_store_takes_keys_from_the_configured_environment_variable(tmp_path, monkeypatch):
    import base64

    monkeypatch.setenv("MY_VOICE_KEYS", f"prod1:{base64.b64encode(KEY_2).decode()}")
    config = CoreConfig(data_dir=tmp_path, store=StoreConfig(key_env="MY_VOICE_KEYS"))
    with open_store(config) as s:
        assert s.save_voiceprint("alice", "ge2e-v1", unit_vectors(1)[0], META).key_id == "prod1"
    assert not (tmp_path / "voiceprint.keys").exists()


def test_open_store_reports_a_data_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="data directory .* cannot be created"):
        open_store(CoreConfig(data_dir=blocker / "data"))
