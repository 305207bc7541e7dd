"""Watchlist store and screen: entries encrypted apart from enrolled speakers, expiring call-derived
entries, and scores centred on the enrolled population."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.store_support import unit_vectors
from voiceprints.errors import StoreError
from voiceprints.store import KeyRing, SqlVoiceprintStore
from voiceprints.watchlist import SqlWatchlistStore, WatchlistScreen
from voiceprints.watchlist.screen import MIN_CENTRE_SPEAKERS


@pytest.fixture
def store(tmp_path):
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'vp.db'}", KeyRing([("k1", bytes(range(32)))])) as s:
        yield s


def test_entries_are_encrypted_listed_without_vectors_and_expire(store):
    wl = SqlWatchlistStore(store)
    v = unit_vectors(2, 16)
    now = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    wl.add("case-1", "m", v[0], source="files: a.wav", net_speech_s=9.0)
    wl.add("case-2", "m", v[1], source="call: 1701", net_speech_s=5.0, expires_at=now + dt.timedelta(days=365))
    names, matrix = wl.load_matrix("m")
    assert names == ["case-1", "case-2"] and np.allclose(matrix, v)
    assert [e.name for e in wl.entries()] == ["case-1", "case-2"] and not hasattr(wl.entries()[0], "vector")
    assert store.speakers() == []  # fraudsters are not enrolled speakers
    assert wl.purge_expired(now) == 0
    assert wl.purge_expired(now + dt.timedelta(days=366)) == 1
    assert wl.load_matrix("m")[0] == ["case-1"]
    with pytest.raises(StoreError):
        wl.add("bad", "m", np.array([np.nan, 1.0]), source="x", net_speech_s=3.0)


def test_key_rotation_reencrypts_watchlist_entries(tmp_path):
    url = f"sqlite:///{tmp_path / 'vp.db'}"
    old = KeyRing([("k1", bytes(range(32)))])
    with SqlVoiceprintStore(url, old) as s:
        SqlWatchlistStore(s).add("case-1", "m", unit_vectors(1, 8)[0], source="x", net_speech_s=4.0)
    new = old.with_primary("k2", bytes(range(1, 33)))
    with SqlVoiceprintStore(url, new) as s:
        assert s.rotate_keys() == 1
    with SqlVoiceprintStore(url, new.without("k1")) as s:
        assert SqlWatchlistStore(s).load_matrix("m")[0] == ["case-1"]


def test_screen_centres_scores_on_the_enrolled_population():
    rng = np.random.default_rng(0)
    offset = np.ones(16, np.float32) * 2  # a shared channel offset: every raw cosine is high
    population = unit_vectors(40, 16, seed=1) + offset
    fraudster = unit_vectors(1, 16, seed=2)[0] + offset
    listed = np.vstack([fraudster, unit_vectors(5, 16, seed=3) + offset])
    names = ["fraud", "a", "b", "c", "d", "e"]
    centred = WatchlistScreen("m", names, listed, threshold=0.8, uncentred_threshold=0.99, population=population)
    again = fraudster + 0.1 * rng.standard_normal(16).astype(np.float32)
    other = unit_vectors(1, 16, seed=4)[0] + offset
    assert centred.screen(again).hit and centred.screen(again).name == "fraud"
    assert not centred.screen(other).hit
    # The same list without a population: plain cosine, its own threshold, and the reason says so.
    plain = WatchlistScreen("m", names, listed, threshold=0.8, uncentred_threshold=0.99,
                            population=population[: MIN_CENTRE_SPEAKERS - 1])
    result = plain.screen(other)
    assert plain.threshold == 0.99 and "plain cosine" in result.reason
    assert WatchlistScreen("m", [], np.zeros((0, 16)), threshold=0.8, uncentred_threshold=0.9).screen(other).reason \
        == "the watchlist is empty"


def test_retention_purges_old_fingerprints_spent_challenges_and_expired_entries(tmp_path):
    """Every row is stamped by the store's clock and the purge reads the same clock: no real day leaks in."""
    from voiceprints.config import CoreConfig
    from voiceprints.liveness.store import SqlChallengeHistory
    from voiceprints.replay import Fingerprint
    from voiceprints.replay.store import SqlFingerprintStore
    from voiceprints.store.defence_purge import purge_defence_data
    from voiceprints.watchlist.calls import SqlCallEmbeddings

    now = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    clock = [now]
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'vp.db'}", KeyRing([("k1", bytes(range(32)))]),
                            clock=lambda: clock[0]) as store:
        fp = Fingerprint(np.zeros((10, 22), bool), np.ones(10, bool), 0.08)
        SqlFingerprintStore(store).add("4572", fp, "verification", at=now - dt.timedelta(days=100))
        SqlFingerprintStore(store).add("4572", fp, "verification", at=now - dt.timedelta(days=1))
        SqlChallengeHistory(store).record("4572", "4729", now - dt.timedelta(days=31))
        SqlChallengeHistory(store).record("4572", "1385", now)
        SqlWatchlistStore(store).add("call-1", "m", unit_vectors(1, 8)[0], source="call: 1", net_speech_s=4.0,
                                     expires_at=now - dt.timedelta(days=1))
        calls = SqlCallEmbeddings(store)
        clock[0] = now - dt.timedelta(days=8)
        calls.add("call-old", "m", unit_vectors(1, 8)[0], 4.0)  # past the 7 days of call memory
        clock[0] = now
        calls.add("call-new", "m", unit_vectors(1, 8)[0], 4.0)
        report = purge_defence_data(store, CoreConfig())  # at the store's clock; defaults: 90, 30, 7 days
        assert report.to_dict() == {"replay_fingerprints": 1, "liveness_challenges": 1, "watchlist_entries": 1,
                                    "recent_calls": 1}
        assert len(SqlFingerprintStore(store).references("4572")) == 1
        assert calls.get("call-new")[0] == "m"
        with pytest.raises(StoreError, match="too old"):
            calls.get("call-old")
        # A week on, the newer call has aged out too.
        assert purge_defence_data(store, CoreConfig(), now + dt.timedelta(days=8)).recent_calls == 1


def test_a_verification_hands_over_its_embedding_for_the_screen(tmp_path, utterances_of):
    from voiceprints.audio.telephone import telephone_channel
    from voiceprints.config import CoreConfig
    from voiceprints.embedding.ge2e import Ge2eEmbedder
    from voiceprints.engine import VoiceprintEngine

    config = CoreConfig(data_dir=tmp_path)
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'e.db'}", KeyRing([("k1", bytes(32))])) as s:
        engine = VoiceprintEngine(Ge2eEmbedder(), s, config)
        try:
            engine.enroll("4572", [telephone_channel(c) for c in utterances_of("frank", 3)])
            clip = telephone_channel(utterances_of("frank", 1, offset=4)[0])
            decision = engine.verify("4572", clip)
            assert decision.embedding is not None
            again = engine.embedder.embed(engine.detector.speech_only(clip))
            assert float(decision.embedding @ again) == pytest.approx(1.0, abs=1e-5)
            assert "embedding" not in decision.to_dict()
        finally:
            engine.close()


def test_screening_a_call_never_decrypts_the_enrolled_population(tmp_path, utterances_of, monkeypatch):
    """The screen centres on the engine's in-memory index: a rebuild inside a call would decrypt every
    voiceprint (seconds at 100,000) while the caller waits, and every concurrent caller would do it too."""
    from voiceprints.audio.telephone import telephone_channel
    from voiceprints.config import CoreConfig
    from voiceprints.defences import AttackDefences
    from voiceprints.embedding.ge2e import Ge2eEmbedder
    from voiceprints.engine import VoiceprintEngine

    config = CoreConfig(data_dir=tmp_path)
    with SqlVoiceprintStore(f"sqlite:///{tmp_path / 'e.db'}", KeyRing([("k1", bytes(32))])) as s:
        engine = VoiceprintEngine(Ge2eEmbedder(), s, config)
        try:
            for n, vector in enumerate(unit_vectors(MIN_CENTRE_SPEAKERS + 5, dim=256, seed=3)):
                s.save_voiceprint(f"other{n}", engine.model_id, np.abs(vector), _meta())
            clip = telephone_channel(utterances_of("frank", 1, offset=4)[0])
            fraud = engine.embedder.embed(engine.detector.speech_only(clip))
            SqlWatchlistStore(s).add("fraud-1", engine.model_id, fraud, source="test", net_speech_s=4.0)
            engine.warm_caches()
            defences = AttackDefences(engine)

            def decrypting(model_id):  # type: ignore[no-untyped-def]
                raise AssertionError("the enrolled population was decrypted inside a call")

            monkeypatch.setattr(s, "load_matrix", decrypting)
            report = defences.screen_call(None, clip, fraud)
            assert "watchlist" in report.risks
        finally:
            engine.close()


def _meta():  # type: ignore[no-untyped-def]
    from voiceprints.store.base import EnrolmentMeta

    return EnrolmentMeta(3, 10.0)
