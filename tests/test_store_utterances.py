"""Per-utterance enrolment embeddings: kept encrypted with their voiceprint, replaced, exported and erased with it."""

from __future__ import annotations

import numpy as np
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from tests.store_support import db_url, pg_database, unit_vectors  # noqa: F401 (fixtures)
from voiceprints.errors import EncryptionKeyError, StoreError
from voiceprints.store import EnrolmentMeta, KeyRing, SqlVoiceprintStore
from voiceprints.store.crypto import vector_to_bytes
from voiceprints.store.migrate import alembic_config, upgrade

META = EnrolmentMeta(utterance_count=3, net_speech_s=9.0)
K1, K2 = bytes(range(32)), bytes(range(60, 92))


@pytest.fixture
def store(db_url):  # noqa: F811
    s = SqlVoiceprintStore(db_url, KeyRing([("k1", K1)]))
    yield s
    s.close()


def count(store: SqlVoiceprintStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM enrolment_utterances")).scalar_one())


def test_utterances_are_stored_with_the_voiceprint_and_read_back_per_speaker(store):
    a, b = unit_vectors(3, seed=1), unit_vectors(3, seed=2)
    store.save_voiceprint("bob", "m1", b.mean(axis=0), META, utterances=b)
    store.save_voiceprint("alice", "m1", a.mean(axis=0), META, utterances=a)
    store.save_voiceprint("carol", "m2", a[0], META, utterances=a)
    ids, matrix = store.load_utterances("m1")
    assert ids == ["alice"] * 3 + ["bob"] * 3
    np.testing.assert_array_equal(matrix, np.concatenate([a, b]).astype(np.float32))
    assert store.load_utterances("absent") == ([], pytest.approx(np.zeros((0, 0))))
    ids, matrix = store.load_utterances("m1", speakers=["bob", "nobody"])
    assert ids == ["bob"] * 3
    np.testing.assert_array_equal(matrix, b)


def test_re_enrolment_replaces_the_utterances_and_a_save_without_them_drops_the_old_ones(store):
    store.save_voiceprint("alice", "m1", unit_vectors(1)[0], META, utterances=unit_vectors(3, seed=1))
    newer = unit_vectors(4, seed=5)
    store.save_voiceprint("alice", "m1", newer[0], META, utterances=newer)
    np.testing.assert_array_equal(store.load_utterances("m1")[1], newer)
    store.save_voiceprint("alice", "m1", newer[0], META)
    assert store.load_utterances("m1")[0] == [] and count(store) == 0


def test_erasure_removes_the_utterances_and_export_includes_them(store):
    utterances = unit_vectors(3, seed=3)
    store.save_voiceprint("alice", "m1", utterances.mean(axis=0), META, utterances=utterances)
    exported = store.export_speaker("alice")["voiceprints"][0]["enrolment_utterance_vectors"]
    np.testing.assert_allclose(np.array(exported), utterances, atol=1e-7)
    assert store.delete_speaker("alice")
    assert count(store) == 0


def test_utterance_vectors_are_never_written_in_plaintext(store):
    utterances = unit_vectors(3, seed=4)
    store.save_voiceprint("alice", "m1", utterances.mean(axis=0), META, utterances=utterances)
    with store.engine.connect() as conn:
        blobs = [bytes(r[0]) for r in conn.execute(text("SELECT ciphertext FROM enrolment_utterances"))]
    assert len(blobs) == 3
    for u in utterances:
        assert all(vector_to_bytes(u)[:64] not in blob for blob in blobs)


def test_an_utterance_ciphertext_moved_to_another_position_is_refused(store):
    store.save_voiceprint("alice", "m1", unit_vectors(1)[0], META, utterances=unit_vectors(2, seed=6))
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, ciphertext FROM enrolment_utterances ORDER BY position")).all()
        conn.execute(text("UPDATE enrolment_utterances SET ciphertext = :c WHERE id = :i"),
                     {"c": rows[1][1], "i": rows[0][0]})
    with pytest.raises(EncryptionKeyError, match="does not authenticate"):
        store.load_utterances("m1")


def test_key_rotation_re_encrypts_the_utterances_too(db_url):  # noqa: F811
    utterances = unit_vectors(3, seed=7)
    with SqlVoiceprintStore(db_url, KeyRing([("k1", K1)])) as s:
        s.save_voiceprint("alice", "m1", utterances.mean(axis=0), META, utterances=utterances)
    with SqlVoiceprintStore(db_url, KeyRing([("k2", K2), ("k1", K1)])) as s:
        assert s.rotate_keys() == 1  # one voiceprint (its three utterances along with it)
    with SqlVoiceprintStore(db_url, KeyRing([("k2", K2)])) as s:
        np.testing.assert_array_equal(s.load_utterances("m1")[1], utterances)


@pytest.mark.parametrize("bad", [np.ones((3, 5), np.float32), np.full((2, 192), np.nan, np.float32),
                                 np.ones(16, np.float32)])
def test_malformed_utterances_are_refused_and_nothing_is_written(store, bad):
    with pytest.raises(StoreError, match="enrolment utterances"):
        store.save_voiceprint("alice", "m1", unit_vectors(1)[0], META, utterances=bad)
    assert store.get_voiceprint("alice", "m1") is None


def test_a_database_of_the_first_schema_upgrades_and_keeps_its_voiceprints(db_url):  # noqa: F811
    import datetime as dt

    from voiceprints.store.crypto import record_aad

    keys = KeyRing([("k1", K1)])
    old_vector = unit_vectors(1, seed=9)[0]
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            upgrade(conn, "0001")
            now = dt.datetime.now(dt.timezone.utc)
            conn.execute(text("INSERT INTO speakers (external_id, created_at, updated_at) VALUES ('old', :t, :t)"),
                         {"t": now})
            key_id, blob = keys.encrypt(vector_to_bytes(old_vector), record_aad("old", "m1"))
            conn.execute(text(
                "INSERT INTO voiceprints (speaker_id, model_id, key_id, ciphertext, dim, utterance_count, net_speech_s,"
                " quality, created_at, updated_at) SELECT id, 'm1', :k, :c, 192, 3, 9.0, '{}', :t, :t FROM speakers"),
                {"k": key_id, "c": blob, "t": now})
        with SqlVoiceprintStore(db_url, keys) as s:  # opening upgrades to head
            np.testing.assert_array_equal(s.get_voiceprint("old", "m1").vector, old_vector)
            assert s.load_utterances("m1")[0] == []  # its utterances are gone: it counts once re-enrolled
            s.save_voiceprint("new", "m1", unit_vectors(1)[0], META, utterances=unit_vectors(3))
            assert s.load_utterances("m1")[0] == ["new"] * 3
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM voiceprints")).scalar_one() == 2
            with pytest.raises(Exception):
                conn.execute(text("SELECT count(*) FROM enrolment_utterances"))
    finally:
        engine.dispose()
