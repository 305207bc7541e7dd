"""Opening a new SQLite database while another connection is writing it waits instead of failing.

Switching a new file to WAL needs the write lock, and SQLite refuses that
switch at once ("database is locked", no busy wait) while another connection
holds the lock: two processes (or threads) opening a fresh data directory
together made one of them fail. Here the other connection is a plain sqlite3
one holding the write lock for a moment, which reproduces it every time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.db import open_database
from voiceprints.store import KeyRing, SqlVoiceprintStore
from voiceprints.store.wal import enable_wal

HOLD_S = 0.3


def holding_the_write_lock(path: Path) -> sqlite3.Connection:
    """A connection that has created ``path`` and keeps its write lock until COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE written_by_someone_else (x)")
    return conn


def open_store(url: str) -> Callable[[], None]:
    store = SqlVoiceprintStore(url, KeyRing([("k1", bytes(32))]))
    return store.close


def open_ivr_database(url: str) -> Callable[[], None]:
    return open_database(url).dispose


@pytest.mark.parametrize("opener", [open_store, open_ivr_database], ids=["voiceprint store", "ivr database"])
def test_a_new_database_file_opens_once_the_other_writer_commits(tmp_path, opener):
    path = tmp_path / "voiceauth.db"
    holder = holding_the_write_lock(path)
    release = threading.Timer(HOLD_S, holder.execute, ["COMMIT"])
    release.start()
    started = time.monotonic()
    try:
        close = opener(f"sqlite:///{path}")
    finally:
        release.join()
    waited = time.monotonic() - started
    close()
    assert waited >= HOLD_S * 0.8  # it waited for the lock rather than working around it
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "written_by_someone_else" in tables  # the other writer's work is intact
    check.close()
    holder.close()


def test_a_lock_that_is_never_released_still_fails_within_the_timeout(tmp_path):
    path = tmp_path / "voiceauth.db"
    holder = holding_the_write_lock(path)
    conn = sqlite3.connect(path, isolation_level=None)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        enable_wal(conn, timeout_s=0.2)
    assert 0.1 <= time.monotonic() - started < 2.0
    conn.close()
    holder.execute("ROLLBACK")
    holder.close()


def test_a_database_already_in_wal_mode_is_left_as_it_is(tmp_path):
    path = tmp_path / "voiceauth.db"
    first = sqlite3.connect(path, isolation_level=None)
    assert enable_wal(first, timeout_s=1) == "wal"
    first.execute("BEGIN IMMEDIATE")  # in WAL mode a writer does not stop others from opening the file
    second = sqlite3.connect(path, isolation_level=None)
    started = time.monotonic()
    assert enable_wal(second, timeout_s=5) == "wal"
    assert time.monotonic() - started < 1.0
    first.execute("ROLLBACK")
    first.close()
    second.close()


def test_the_voiceprint_store_and_the_ivr_tables_open_sqlite_with_the_same_settings(tmp_path, monkeypatch):
    """One engine factory: the same file must not be opened with two sets of pragmas."""
    from ivr.db.engine import open_database
    from voiceprints.config import CoreConfig
    from voiceprints.store.sql import open_store

    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    config = CoreConfig(data_dir=tmp_path)
    store = open_store(config)
    ivr_db = open_database(config.database_url())

    def pragmas(engine) -> tuple:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            return tuple(raw.execute(f"PRAGMA {name}").fetchone()[0]
                         for name in ("busy_timeout", "foreign_keys", "secure_delete", "journal_mode"))

    try:
        assert pragmas(store.engine) == pragmas(ivr_db.engine) == (15000, 1, 1, "wal")
    finally:
        ivr_db.dispose()
        store.close()
