"""Two workers on one store: what one enrols or erases, the other follows, and no caller pays a rebuild.

Each "worker" is its own engine with its own store connection on the same
database (SQLite file and PostgreSQL), as two ``ivr serve`` processes are.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

from tests.store_support import db_url, pg_database  # noqa: F401 - fixtures
from tests.test_engine import phone
from voiceprints.config import CoreConfig, StoreConfig
from voiceprints.derived import DerivedValue
from voiceprints.engine import CHANGE_MEMORY_S, VoiceprintEngine
from voiceprints.store.sql import open_store


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest.fixture
def workers(db_url, tmp_path, ge2e, monkeypatch):  # noqa: F811
    monkeypatch.setenv("VOICEAUTH_KEYS", "k1:" + base64.b64encode(bytes(range(32))).decode())
    config = CoreConfig(data_dir=tmp_path, store=StoreConfig(url=db_url))
    engines = [VoiceprintEngine(ge2e, open_store(config), config) for _ in range(2)]
    yield engines
    for engine in engines:
        engine.close()
        engine.store.close()


def until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)


def test_an_enrolment_on_one_worker_is_identified_on_the_other_at_once_without_a_rebuild(workers, utterances_of):
    a, b = workers
    for name in ("alice", "bob"):
        a.enroll(name, phone(utterances_of(name, 3)))
    carol = phone(utterances_of("carol", 1, offset=5))[0]
    assert b.identify(carol)[1][0].speaker_id in ("alice", "bob")
    assert b.cache_builds["index"] == 1
    a.enroll("carol", phone(utterances_of("carol", 3)))
    assert b.identify(carol)[1][0].speaker_id == "carol"
    assert b.cache_builds["index"] == 1  # absorbed: one voiceprint read, nothing rebuilt


def test_another_workers_enrolment_rebuilds_the_cohort_in_the_background_not_in_a_call(workers, utterances_of,
                                                                                         monkeypatch):
    a, b = workers
    for name in ("alice", "bob", "carol", "dave"):
        a.enroll(name, phone(utterances_of(name, 3)))
    probe = phone(utterances_of("alice", 1, offset=5))[0]
    b.verify("alice", probe)
    assert b.cache_builds["cohort"] == 1
    entered, release = threading.Event(), threading.Event()
    threads: list[str] = []
    build = b.population

    def slow_population():  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        entered.set()
        release.wait(20)
        return build()

    monkeypatch.setattr(b, "population", slow_population)
    a.enroll("erin", phone(utterances_of("erin", 3)))
    try:
        decision = b.verify("alice", probe)  # were it rebuilt here, this would wait for `release`
        assert decision.score is not None and not release.is_set()
        assert entered.wait(20) and threads == ["voiceprint-cache_0"]
    finally:
        release.set()
    until(lambda: b.cache_builds["cohort"] == 2)


def test_an_erasure_on_one_worker_is_honoured_by_the_other_on_its_next_decision(workers, utterances_of):
    a, b = workers
    for name in ("alice", "bob", "carol"):
        a.enroll(name, phone(utterances_of(name, 3)))
    bob = phone(utterances_of("bob", 1, offset=5))[0]
    assert b.identify(bob)[1][0].speaker_id == "bob"
    assert a.forget("bob")
    assert "bob" not in [c.speaker_id for c in b.identify(bob, top_k=3)[1]]


def test_a_worker_that_did_not_look_for_longer_than_the_journal_remembers_rebuilds(workers, utterances_of):
    a, b = workers
    a.enroll("alice", phone(utterances_of("alice", 3)))
    probe = phone(utterances_of("alice", 1, offset=5))[0]
    b.identify(probe)
    b._synced_at -= CHANGE_MEMORY_S  # as if idle past the journal's memory: what it missed may be pruned
    b.identify(probe)
    assert b.cache_builds["index"] == 2


class _Gated:
    """A build that waits for the test, so an erasure can land while it runs."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.contents = {"alice", "bob"}

    def __call__(self) -> set[str]:
        read = set(self.contents)  # the rows as of the build's start
        self.started.set()
        self.release.wait(20)
        return read


def test_a_build_that_began_before_an_erasure_is_not_kept():
    gated = _Gated()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as background:
        value = DerivedValue("test", gated, lambda v, s: bool(v & s), ttl_s=60, background=background)
        result: list[set[str]] = []
        caller = threading.Thread(target=lambda: result.append(value.get()))
        caller.start()
        assert gated.started.wait(10)
        value.erased(frozenset({"bob"}))  # committed while the build read the old rows
        gated.contents = {"alice"}
        gated.release.set()
        caller.join(20)
        assert result == [{"alice", "bob"}]  # that caller's decision began before the erasure
        assert value.rebuilds == 0
        assert value.get() == {"alice"} and value.rebuilds == 1


def test_a_failed_background_rebuild_keeps_the_previous_value_and_tries_again():
    from concurrent.futures import ThreadPoolExecutor

    calls = {"n": 0}

    def build() -> set[str]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("database went away")
        return {f"build-{calls['n']}"}

    with ThreadPoolExecutor(1) as background:
        value = DerivedValue("test", build, lambda v, s: bool(v & s), ttl_s=60, background=background)
        assert value.get() == {"build-1"}
        value.enrolled(frozenset({"carol"}))
        assert value.get() == {"build-1"}  # rebuilt in the background, which fails
        until(lambda: calls["n"] == 2 and not value._refreshing)
        assert value.get() == {"build-1"}  # still served; another background try
        until(lambda: value.rebuilds == 2)
        assert value.get() == {"build-3"}
