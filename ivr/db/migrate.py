"""Alembic driven from code, with the migration scripts shipped inside the package.

The IVR schema has its own version table so that it can share a database
with the voiceprint store (``voiceprints_alembic_version``) without either
history seeing the other's tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "ivr_alembic_version"
# Arbitrary constant key for pg_advisory_lock: two processes starting at once
# must not both run the same migration.
_PG_MIGRATION_LOCK = 0x1F1D_0001


def alembic_config() -> Config:
    """Config for running Alembic commands (also ``revision --autogenerate``) from code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the IVR migrations directory has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Transaction-scoped: released by the commit below.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
