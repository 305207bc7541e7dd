"""Opening the IVR database: engine, sessions and schema migration in one call.

``open_database`` always leaves the schema at the newest revision, so no
caller ever talks to a half-migrated database and there is no separate
"migrate" step to forget on deployment.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.migrate import upgrade_to_head
from voiceprints.clock import Clock, system_clock
from voiceprints.private_files import ensure_private_file
from voiceprints.store.engines import open_engine, sqlite_file


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = system_clock
    """The wall clock of every service built on this database (tests pin it here)."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True, echo: bool = False, clock: Clock = system_clock) -> Database:
    """Connect to ``url`` (SQLite or PostgreSQL) and bring the IVR schema up to date."""
    # The same engine factory as the voiceprint store: both usually share one database file.
    path = sqlite_file(make_url(url))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ensure_private_file(Path(path))
    engine = open_engine(url, echo=echo)
    if migrate:
        upgrade_to_head(engine)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False), clock=clock)
