"""Declarative base and column types of the IVR database.

The IVR tables live in the same database as the voiceprint store but belong
to their own metadata and their own Alembic history (version table
``ivr_alembic_version``), so either side can migrate without the other.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: Alembic can only alter or drop a constraint
# it can name, and SQLite batch migrations need the names to rebuild tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timestamp type and SQLAlchemy stores naive text there, so a
    mix of aware and naive values would compare wrongly in ``WHERE expires_at
    > :now``. Everything is converted to UTC on the way in and comes back
    aware, whatever the backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the IVR database; use timezone-aware UTC values")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # Stored as ISO text: dropping the (always UTC) offset keeps the
            # text sortable and comparable.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
