"""Replay detection: a recording of an earlier call played into the phone is recognised as that
call; the same caller saying something new is not."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from voiceprints.audio.replay_sim import simulate_replay
from voiceprints.audio.telephone import telephone_channel
from voiceprints.replay import Fingerprint, ReplayReference, check_replay, fingerprint, match_score
from voiceprints.replay.store import SqlFingerprintStore
from voiceprints.store import EnrolmentMeta, KeyRing, SqlVoiceprintStore

THRESHOLD = 0.42  # ReplayConfig's default, measured in scripts/bench_attacks.py


@pytest.fixture(scope="module")
def calls(utterances_of):
    """Alice's earlier call (as the IVR heard it), a replay of its recording, and her new call."""
    earlier, new = utterances_of("alice", 2)
    rng = np.random.default_rng(1)
    return telephone_channel(earlier), simulate_replay(earlier, rng), telephone_channel(new)


def test_a_replayed_recording_is_flagged_and_a_new_utterance_is_not(calls):
    earlier, replayed, new = calls
    stored = [ReplayReference(fingerprint(earlier), "the verification recording of 2026-11-02")]
    replay = check_replay(fingerprint(replayed), stored, THRESHOLD)
    assert replay.replay and replay.matched == stored[0].label and "matches" in replay.reason
    genuine = check_replay(fingerprint(new), stored, THRESHOLD)
    assert not genuine.replay and genuine.score < THRESHOLD / 2


def test_the_same_sentence_from_another_voice_is_not_a_replay(calls, utterances_of):
    earlier, _, _ = calls
    other = telephone_channel(utterances_of("bob", 1)[0])  # bob reads alice's first sentence
    assert match_score(fingerprint(other), fingerprint(earlier)) < THRESHOLD / 2


def test_a_replay_of_part_of_a_call_is_still_found(calls):
    earlier, replayed, _ = calls
    half = type(replayed)(replayed.samples[len(replayed.samples) // 3:], replayed.sample_rate)
    assert match_score(fingerprint(half), fingerprint(earlier)) >= THRESHOLD


def test_nothing_to_compare_with_is_not_a_replay(calls):
    result = check_replay(fingerprint(calls[1]), [], THRESHOLD)
    assert not result.replay and result.compared == 0


def test_fingerprints_are_compact_and_survive_serialisation(calls):
    fp = fingerprint(calls[0])
    data = fp.to_bytes()
    assert len(data) / fp.duration_s < 500  # bytes per second of audio (8 kHz G.711 is 8000)
    again = Fingerprint.from_bytes(data)
    assert np.array_equal(again.bits, fp.bits) and np.array_equal(again.active, fp.active)
    with pytest.raises(ValueError):
        Fingerprint.from_bytes(data[:-1])


@pytest.fixture
def store(tmp_path):
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'vp.db'}", KeyRing([("k1", bytes(range(32)))])) as s:
        yield s


def test_stored_fingerprints_are_encrypted_capped_purged_and_erased(store, calls):
    earlier, replayed, new = calls
    fps = SqlFingerprintStore(store, keep=2)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    fps.add("4572", fingerprint(new), "enrolment", at=t0)
    fps.add("4572", fingerprint(earlier), "verification", at=t0 + dt.timedelta(days=10))
    fps.add("4572", fingerprint(new), "verification", at=t0 + dt.timedelta(days=20))
    refs = fps.references("4572")
    assert [r.label for r in refs] == ["the verification recording of 2026-11-21 00:00 UTC",
                                       "the verification recording of 2026-11-11 00:00 UTC"]  # newest 2 kept
    assert check_replay(fingerprint(replayed), refs, THRESHOLD).replay
    raw = store.engine.raw_connection()
    try:
        blobs = [bytes(b) for (b,) in raw.execute("SELECT ciphertext FROM replay_fingerprints").fetchall()]
    finally:
        raw.close()
    assert all(b"VAFP" not in b for b in blobs)
    assert fps.purge(t0 + dt.timedelta(days=15)) == 1
    assert len(fps.references("4572")) == 1
    store.save_voiceprint("4572", "m", np.ones(4, np.float32), EnrolmentMeta(3, 9.0))
    assert len(store.export_speaker("4572")["replay_fingerprints"]) == 1
    store.delete_speaker("4572")
    assert fps.references("4572") == []


def test_key_rotation_reencrypts_fingerprints(tmp_path, calls):
    url = f"sqlite:///{tmp_path / 'vp.db'}"
    old = KeyRing([("k1", bytes(range(32)))])
    with SqlVoiceprintStore(url, old) as s:
        SqlFingerprintStore(s).add("4572", fingerprint(calls[0]), "enrolment")
    rotated = old.with_primary("k2", bytes(range(1, 33)))
    with SqlVoiceprintStore(url, rotated) as s:
        assert s.rotate_keys() == 1
    with SqlVoiceprintStore(url, rotated.without("k1")) as s:
        assert len(SqlFingerprintStore(s).references("4572")) == 1
