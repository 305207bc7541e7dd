"""Running the store's Alembic migrations from code.

The migrations live inside the package so an installed engine can bring its
database up to date at start-up without an ``alembic.ini`` on disk. The store
has its own version table, and only looks at its own tables, so that other
packages (``ivr``) can keep their own migration history in the same database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

VERSION_TABLE = "voiceprints_alembic_version"
STORE_TABLES = frozenset({
    "speakers", "voiceprints", "calibrations", "voiceprint_changes", "enrolment_utterances",
    "digit_templates", "replay_fingerprints", "watchlist_entries", "liveness_challenges", "recent_calls",
})
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant for pg_advisory_xact_lock: serialises start-up migrations of
# several processes (CLI + service) on PostgreSQL, where two concurrent
# CREATE TABLEs would otherwise make one of them fail.
_PG_MIGRATION_LOCK = 0x766F_6963_6570  # "voicep"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Restrict Alembic to the store's tables (and their indexes/constraints)."""
    if type_ == "table":
        return name in STORE_TABLES
    return True


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    # ConfigParser interpolation: a '%' in the install path must be doubled.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the database on ``connection`` (which should be inside a transaction) to ``revision``."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def schema_differences(connection: Connection) -> list[Any]:
    """Differences between the database schema and the ORM models (empty when they agree)."""
    from voiceprints.store.models import Base

    context = MigrationContext.configure(
        connection,
        opts={"version_table": VERSION_TABLE, "include_name": include_name, "compare_type": True},
    )
    return list(compare_metadata(context, Base.metadata))
