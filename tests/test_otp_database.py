"""The IVR database: migrations match the ORM, coexist with the voiceprint store, enforce integrity."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from ivr.db import Base, Customer, KnowledgeAnswer, OtpChallenge, open_database
from ivr.db.customers import CustomerDirectory
from ivr.db.migrate import VERSION_TABLE, current_revision, head_revision
from tests.fakes.postgres import temporary_database


@pytest.fixture(scope="module")
def postgres_url():
    with temporary_database("ivr_db_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ivr.db'}"
    return request.getfixturevalue("postgres_url")


def _schema_drift(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return compare_metadata(context, Base.metadata)


def _drop_all(url: str) -> None:
    engine = create_engine(url)
    # Every IVR table, whichever migration added it (dependants first).
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        for table in (VERSION_TABLE, "voiceprints_alembic_version", "voiceprints_stub"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def test_migrations_build_exactly_the_orm_schema(url: str) -> None:
    _drop_all(url)
    db = open_database(url)
    try:
        assert _schema_drift(db.engine) == []
        assert current_revision(db.engine) == head_revision()
    finally:
        db.dispose()


def test_a_model_change_without_a_migration_is_detected(url: str) -> None:
    """The drift check is not vacuous: a column the migrations lack shows up."""
    from sqlalchemy import Column, MetaData, String

    _drop_all(url)
    db = open_database(url)
    try:
        extended = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(extended)
        extended.tables["customers"].append_column(Column("nickname", String(20)))
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            drift = compare_metadata(context, extended)
        assert [d[0] for d in drift] == ["add_column"] and drift[0][3].name == "nickname"
    finally:
        db.dispose()


def test_opening_twice_is_harmless_and_shares_the_database_with_the_voiceprint_store(url: str) -> None:
    _drop_all(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        # What the voiceprint store leaves in the same database.
        connection.execute(text("CREATE TABLE voiceprints_alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO voiceprints_alembic_version VALUES ('vp0001')"))
        connection.execute(text("CREATE TABLE voiceprints_stub (id INTEGER PRIMARY KEY)"))
    engine.dispose()

    first = open_database(url)
    CustomerDirectory(first).add("1001", phone_e164="+573001234567")
    first.dispose()
    second = open_database(url)
    try:
        names = set(inspect(second.engine).get_table_names())
        assert {"customers", "otp_challenges", "knowledge_answers", VERSION_TABLE} <= names
        assert {"voiceprints_stub", "voiceprints_alembic_version"} <= names
        with second.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM voiceprints_alembic_version")).scalar() == "vp0001"
            assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
        assert CustomerDirectory(second).get("1001").contact.phone_e164 == "+573001234567"
    finally:
        second.dispose()


def test_deleting_a_customer_removes_their_factor_data(url: str) -> None:
    _drop_all(url)
    db = open_database(url)
    try:
        now = datetime.now(timezone.utc)
        with db.transaction() as session:
            customer = Customer(external_id="2002", email="x@example.com")
            session.add(customer)
            session.flush()
            session.add(KnowledgeAnswer(customer_id=customer.id, question_key="dob", answer_hash="$argon2id$x"))
            session.add(OtpChallenge(id="c" * 32, customer_id=customer.id, channel="email", code_hash=b"h" * 32,
                                     created_at=now, last_sent_at=now, expires_at=now + timedelta(minutes=5),
                                     attempts=0, max_attempts=3, resends=0, status="pending"))
        with db.transaction() as session:
            session.delete(session.scalars(select(Customer)).one())
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(KnowledgeAnswer)) == 0
            assert session.scalar(select(func.count()).select_from(OtpChallenge)) == 0
    finally:
        db.dispose()


def test_the_database_refuses_unknown_channels_and_duplicate_accounts(url: str) -> None:
    _drop_all(url)
    db = open_database(url)
    try:
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.add(Customer(external_id="3003", preferred_otp_channel="fax"))
        CustomerDirectory(db).add("3003")
        with pytest.raises(IntegrityError):
            CustomerDirectory(db).add("3003")
    finally:
        db.dispose()


def test_timestamps_come_back_timezone_aware_in_utc(url: str) -> None:
    _drop_all(url)
    db = open_database(url)
    try:
        bogota = timezone(timedelta(hours=-5))
        created = datetime(2025, 3, 1, 7, 0, tzinfo=bogota)
        with db.transaction() as session:
            session.add(Customer(external_id="4004", created_at=created, updated_at=created))
        with db.sessions() as session:
            stored = session.scalars(select(Customer.created_at)).one()
        assert stored == created and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
        with pytest.raises(Exception, match="naive datetime"):
            with db.transaction() as session:
                session.add(Customer(external_id="5005", created_at=datetime(2025, 3, 1)))
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    try:
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        db.dispose()
