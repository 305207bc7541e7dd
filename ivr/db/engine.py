"""Opening the IVR database: engine, sessions and schema migration in one call.

``open_database`` always leaves the schema at the newest revision, so no
caller ever talks to a half-migrated database and there is no separate
"migrate" step to forget on deployment.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ivr.db.migrate import upgrade_to_head
from voiceprints.private_files import ensure_private_file
from voiceprints.store.wal import enable_wal

# How long a SQLite writer waits for another writer before giving up. Writes
# here are single-row updates that take microseconds; 5 s only runs out when
# something is badly wrong.
SQLITE_BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked.
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()
        if not in_memory:
            # WAL lets calls read while another call writes; on a new file several
            # connections may race to switch it (see voiceprints/store/wal.py).
            enable_wal(dbapi_connection, SQLITE_BUSY_TIMEOUT_MS / 1000)


def open_database(url: str, *, migrate: bool = True, echo: bool = False) -> Database:
    """Connect to ``url`` (SQLite or PostgreSQL) and bring the IVR schema up to date."""
    parsed = make_url(url)
    # Bound parameters are account numbers, caller hashes and code hashes: keep them out of error text.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = is_sqlite and parsed.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every checkout would see its own empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        # A connection dropped by a restarted PostgreSQL or a NAT timeout is
        # replaced before use instead of failing a caller's verification.
        kwargs["pool_pre_ping"] = True
    if is_sqlite and not in_memory and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        ensure_private_file(Path(parsed.database))
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine, in_memory=in_memory)
    if migrate:
        upgrade_to_head(engine)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
