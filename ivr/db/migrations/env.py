"""Alembic environment of the IVR schema; run through :mod:`ivr.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ivr.db import models  # noqa: F401  (registers the tables on Base.metadata)
from ivr.db.base import Base
from ivr.db.migrate import VERSION_TABLE

target_metadata = Base.metadata


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    # The database is shared with the voiceprint store: autogenerate must
    # neither drop its tables nor claim them.
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=_ours,
        compare_type=True,
        # SQLite can only ALTER by rebuilding tables; batch mode does that.
        render_as_batch=True,
        **kwargs,
    )


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


def run_offline() -> None:
    _configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
