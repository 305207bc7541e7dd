"""The tables of limits, consent, audit, leases and send caps: built by the migrations exactly as the ORM declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from ivr.db import Base, open_database
from ivr.db.migrate import VERSION_TABLE, alembic_config, current_revision, head_revision
from tests.fakes.postgres import temporary_database

NEW_TABLES = {"limit_subjects", "limit_events", "consent_events", "voiceprint_use", "audit_events"}
SECURE_TABLES = {"auth_leases", "audit_chain", "otp_sends"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ivr.db'}"
        return
    with temporary_database("ivr_policy_db_test") as pg:
        yield pg


def _drift(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return compare_metadata(context, Base.metadata)


def test_migrations_build_exactly_the_orm_schema_including_the_new_tables(url: str) -> None:
    db = open_database(url)
    try:
        assert head_revision() == "0003" and current_revision(db.engine) == "0003"
        assert NEW_TABLES | SECURE_TABLES <= set(inspect(db.engine).get_table_names())
        assert _drift(db.engine) == []
    finally:
        db.dispose()


def test_the_migrations_downgrade_to_0001_and_upgrade_again(url: str) -> None:
    open_database(url).dispose()
    engine = create_engine(url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        names = set(inspect(engine).get_table_names())
        assert not names & (NEW_TABLES | SECURE_TABLES)
        assert {"customers", "otp_challenges", "knowledge_answers"} <= names
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0001"
    finally:
        engine.dispose()
    db = open_database(url)  # upgrades to head again
    try:
        assert _drift(db.engine) == [] and current_revision(db.engine) == "0003"
    finally:
        db.dispose()
