"""Lockout and rate limits: sliding windows, unlock by time or admin, one limit for every worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.db import open_database
from ivr.db.engine import Database
from ivr.limits import CallerLimit, IdentityLimit, Limits, LimitsConfig, LimitsUnavailableError
from tests.fakes.postgres import temporary_database

REPO = Path(__file__).resolve().parents[1]
CALLER = "c" * 64
OTHER_CALLER = "d" * 64


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(db: Database, clock: Clock) -> Limits:
    return Limits(db, LimitsConfig(), clock=clock)


def fail(limits: Limits, times: int, identity: str = "1001", caller: str | None = CALLER):
    return [limits.record_failure(identity, caller, "voice") for _ in range(times)]


def test_five_failures_in_fifteen_minutes_lock_the_account_for_thirty(limits: Limits, clock: Clock) -> None:
    states = fail(limits, 4)
    assert not any(s.locked for s in states) and states[-1].recent_failures == 4
    fifth = limits.record_failure("1001", CALLER, "otp")
    assert fifth.locked and fifth.newly_locked and fifth.scope == "identity"
    assert fifth.until == clock.now + timedelta(minutes=30)
    assert "5 failed attempts within 15 min" in fifth.reason

    clock.advance(minutes=29)
    assert limits.check("1001", None).locked
    assert limits.begin_attempt("1001", OTHER_CALLER).locked, (
        "another phone does not get round the account lock"
    )
    clock.advance(minutes=1, seconds=1)
    after = limits.check("1001", None)
    assert not after.locked and after.recent_failures == 0
    assert not limits.record_failure("1001", CALLER).locked, "the failures before the lock do not count again"


def test_the_window_slides_old_failures_stop_counting(limits: Limits, clock: Clock) -> None:
    fail(limits, 4)
    clock.advance(minutes=16)
    assert not any(s.locked for s in fail(limits, 4))
    clock.advance(minutes=5)
    assert limits.record_failure("1001", CALLER).newly_locked  # 5 within the last 15 minutes


def test_a_success_clears_the_failures_so_far(limits: Limits) -> None:
    fail(limits, 4)
    assert limits.record_success("1001", CALLER, "otp").recent_failures == 0
    assert not any(s.locked for s in fail(limits, 4))


def test_an_admin_unlock_lifts_the_lock_at_once(limits: Limits) -> None:
    fail(limits, 5)
    assert [lock.subject for lock in limits.locks()] == ["1001"]
    assert limits.unlock("1001") is True
    assert not limits.check("1001", CALLER).locked and limits.locks() == []
    assert limits.unlock("1001") is False and limits.unlock("never-seen") is False
    assert not fail(limits, 4)[-1].locked, "failures before the unlock do not count"


def test_one_number_may_try_twenty_times_an_hour_across_accounts(limits: Limits, clock: Clock) -> None:
    admitted = [limits.begin_attempt(f"acct-{i}", CALLER) for i in range(20)]
    assert not any(s.locked for s in admitted) and admitted[-1].newly_locked
    refused = limits.begin_attempt("acct-99", CALLER)
    assert refused.locked and refused.scope == "caller" and "this caller number" in refused.reason
    assert not limits.begin_attempt("acct-99", OTHER_CALLER).locked
    assert not limits.begin_attempt("acct-98", None).locked, "a withheld number is limited by account only"
    clock.advance(hours=1, seconds=1)
    assert not limits.begin_attempt("acct-99", CALLER).locked


def test_refused_attempts_do_not_extend_a_lock(limits: Limits, clock: Clock) -> None:
    fail(limits, 5)
    for _ in range(10):
        clock.advance(minutes=2)
        assert limits.begin_attempt("1001", CALLER).locked
    clock.advance(minutes=11)
    assert not limits.begin_attempt("1001", CALLER).locked


def test_configured_limits_apply(db: Database, clock: Clock) -> None:
    strict = Limits(
        db,
        LimitsConfig(
            identity=IdentityLimit(max_events=2, window_s=60, lock_s=10), caller=CallerLimit(max_events=3)
        ),
        clock=clock,
    )
    assert strict.record_failure("2002", None).locked is False
    assert strict.record_failure("2002", None).newly_locked
    clock.advance(seconds=11)
    assert not strict.check("2002", None).locked


def test_bad_identities_are_refused(limits: Limits) -> None:
    with pytest.raises(ValueError, match="1-64 characters"):
        limits.check("x" * 65, None)
    with pytest.raises(ValueError):
        limits.record_failure("", None)


def test_old_events_are_purged_but_running_locks_are_kept(limits: Limits, clock: Clock) -> None:
    fail(limits, 5, identity="3003")
    limits.begin_attempt("4004", OTHER_CALLER)
    clock.advance(minutes=59)
    limits.check("3003", None)
    assert limits.purge(dry_run=True) == 0
    clock.advance(minutes=2)
    assert limits.purge(dry_run=True) == limits.purge() == 12  # 5 failures x 2 subjects + 1 attempt x 2


def test_an_unreachable_database_is_a_clear_error_not_an_open_door() -> None:
    gone = open_database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1", migrate=False)
    try:
        with pytest.raises(LimitsUnavailableError, match="refuse the attempt"):
            Limits(gone).check("1001", CALLER)
        with pytest.raises(LimitsUnavailableError):
            Limits(gone).record_failure("1001", CALLER)
    finally:
        gone.dispose()


# --- one limit for many workers ------------------------------------------------
@pytest.fixture(scope="module")
def postgres_url():
    with temporary_database("ivr_limits_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


def _race(workers: list[Limits], calls: int, action) -> list:  # type: ignore[no-untyped-def]
    """Run ``calls`` actions spread over threads on the given workers, all released at once."""
    results: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(calls, timeout=30)

    def run(i: int) -> None:
        barrier.wait()
        outcome = action(workers[i % len(workers)], i)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results


def test_two_workers_on_one_database_admit_exactly_the_limit(shared_url: str) -> None:
    first, second = open_database(shared_url), open_database(shared_url)
    caller = os.urandom(32).hex()  # fresh per run: the PostgreSQL database is shared by the module
    try:
        workers = [Limits(first), Limits(second)]
        results = _race(workers, 32, lambda w, i: w.begin_attempt(f"acct-{i}", caller))
        assert sum(1 for s in results if not s.locked) == 20
        assert sum(1 for s in results if s.newly_locked) == 1
        assert workers[0].check(None, caller).locked and workers[1].check(None, caller).locked
    finally:
        first.dispose()
        second.dispose()


def test_two_workers_recording_failures_lock_exactly_once(shared_url: str) -> None:
    first, second = open_database(shared_url), open_database(shared_url)
    identity = f"race-{os.urandom(4).hex()}"
    try:
        workers = [Limits(first), Limits(second)]
        results = _race(workers, 16, lambda w, i: w.record_failure(identity, None, "voice"))
        assert sum(1 for s in results if s.newly_locked) == 1
        assert sum(1 for s in results if not s.locked) == 4, "exactly the first four failures leave it open"
    finally:
        first.dispose()
        second.dispose()


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ivr.db import open_database
    from ivr.limits import Limits
    url, caller, ready, me, other, count = sys.argv[1:7]
    db = open_database(url)
    Path(ready, me).touch()
    deadline = time.monotonic() + 30
    while not Path(ready, other).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    limits = Limits(db)
    admitted = sum(not limits.begin_attempt(f"p{me}-{i}", caller).locked for i in range(int(count)))
    print(admitted)
    db.dispose()
""")


def test_two_worker_processes_share_one_limit(shared_url: str, tmp_path: Path) -> None:
    open_database(shared_url).dispose()  # migrate once, before the race
    caller = os.urandom(32).hex()
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, shared_url, caller, str(ready), me, other, "15"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    outputs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert sum(int(out.strip()) for out, _ in outputs) == 20
