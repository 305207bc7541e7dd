"""Switching a SQLite file to WAL when several connections open it at the same time.

``PRAGMA journal_mode=WAL`` on a database still in rollback mode rewrites the
file header, and SQLite takes that write lock by upgrading a read transaction:
when another connection holds the write lock at that moment, SQLite answers
"database is locked" at once instead of calling the busy handler (waiting
could deadlock two upgraders, so ``busy_timeout`` does not apply). That
happens whenever two connections open a new database file together: the CLI
and the worker on first run, or the threads of one process (it made
``test_concurrent_writers_in_threads...[sqlite]`` flaky under load). Once the
file is in WAL mode the pragma is a no-op, so retrying until the other
connection has finished is all it takes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

# First retry after 1 ms, doubling up to 50 ms: the other connection holds the
# lock for one header write (milliseconds), so most retries succeed at once.
_FIRST_DELAY_S = 0.001
_MAX_DELAY_S = 0.05


def enable_wal(dbapi_connection: Any, timeout_s: float) -> str:
    """Put the connection's database in WAL mode, retrying "database is locked" for up to ``timeout_s``.

    Returns the journal mode SQLite reports (``"wal"``, or the old mode where
    WAL is impossible, e.g. a file system without shared memory). Must run
    outside a transaction, as SQLite requires for a journal-mode change.
    """
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_DELAY_S
    while True:
        try:
            row = dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchone()
            return str(row[0]).lower()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)
