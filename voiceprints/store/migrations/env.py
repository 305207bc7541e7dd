"""Alembic environment of the voiceprint store.

Run programmatically by :func:`voiceprints.store.migrate.upgrade`, which hands
over an open connection in ``config.attributes["connection"]``; a plain URL in
``sqlalchemy.url`` also works (the ``alembic`` command line with
``alembic.ini`` next to this file, or ``--sql`` for offline SQL scripts).

Only the store's own tables are considered, and the version table has its own
name, so the ``ivr`` package can keep its migrations in the same database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from voiceprints.store.migrate import VERSION_TABLE, include_name
from voiceprints.store.models import Base

config = context.config
_options = dict(
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    compare_type=True,
)


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **_options)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **_options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
