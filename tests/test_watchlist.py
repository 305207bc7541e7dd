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
