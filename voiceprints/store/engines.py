"""One way to open a database engine, for the voiceprint store and the IVR tables alike.

Both live in the same database by default (``VOICEAUTH_STORE__URL``), so they
get the same connection settings: parameters hidden from error text (they are
speaker ids, account numbers, ciphertext), dead pooled connections replaced
before use, a bounded PostgreSQL connect, and on SQLite the same pragmas on
every connection (write-lock wait, foreign keys, secure delete, WAL).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from voiceprints.store.wal import enable_wal

# How long a SQLite writer waits for another writer's lock. Writes take
# milliseconds, so waiting up to 15 s turns "database is locked" into a short
# delay, while a writer that is truly stuck still surfaces as an error within
# a call's patience.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Bounded so an unreachable PostgreSQL fails a call in seconds, not minutes (TCP default).
PG_CONNECT_TIMEOUT_S = 5


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` alone would pick psycopg2, which is not a dependency: use psycopg (3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: URL) -> str | None:
    """Path of a file-based SQLite database (None for in-memory or URI-style databases, or other backends)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:") or url.query.get("uri"):
        return None
    return os.path.abspath(url.database)


def open_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL) with this project's connection settings."""
    parsed = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        if in_memory:
            # One shared connection, or every checkout would see its own empty database.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(parsed, **kwargs)
        _sqlite_pragmas(engine, None if in_memory else sqlite_file(parsed))
        return engine
    # A restarted server or failover leaves dead pooled connections behind.
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
                         **kwargs)


def _sqlite_pragmas(engine: Engine, path: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # ON DELETE CASCADE and referential integrity are off by default in SQLite.
            cursor.execute("PRAGMA foreign_keys=ON")
            # Erased rows (voiceprints, a customer's data) are overwritten with zeros, not left in free pages.
            cursor.execute("PRAGMA secure_delete=ON")
        finally:
            cursor.close()
        if path is not None:
            # WAL: readers (identification, the calls) never block the writer and vice versa.
            # Not a plain pragma: on a new file it must wait for other connections (see wal.py).
            enable_wal(dbapi_conn, SQLITE_BUSY_TIMEOUT_MS / 1000)
            st = os.stat(path)  # which file this connection really has open (the store checks it)
            record.info["file_identity"] = (st.st_dev, st.st_ino)
