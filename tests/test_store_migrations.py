"""The packaged Alembic migrations produce exactly the ORM schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import LargeBinary, create_engine, inspect, text

from tests.store_support import db_url, pg_database  # noqa: F401 (fixtures)
from voiceprints.store import EnrolmentMeta, KeyRing, SqlVoiceprintStore
from voiceprints.store.migrate import (
    SCRIPT_LOCATION,
    STORE_TABLES,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    schema_differences,
    upgrade,
)
from voiceprints.store.models import Base

REPO = Path(__file__).resolve().parents[1]
KEYS = KeyRing([("k1", bytes(32))])


@pytest.fixture
def engine(db_url):  # noqa: F811
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def test_migrated_database_matches_the_orm_models_exactly(engine):
    with engine.begin() as conn:
        upgrade(conn)
    with engine.connect() as conn:
        assert schema_differences(conn) == []
        assert current_revision(conn) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert tables == STORE_TABLES | {VERSION_TABLE}  # own version table; no plain "alembic_version"


def test_schema_comparison_notices_a_drifted_database(engine):
    with engine.begin() as conn:
        upgrade(conn)
        conn.execute(text("ALTER TABLE voiceprints ADD COLUMN vector_plain TEXT"))
        conn.execute(text("CREATE INDEX ix_extra ON speakers (created_at)"))
    with engine.connect() as conn:
        differences = schema_differences(conn)
    described = repr(differences)
    assert "vector_plain" in described and "ix_extra" in described


def test_store_opens_next_to_another_packages_migrations_without_touching_them(db_url, engine):  # noqa: F811
    with engine.begin() as conn:  # what the ivr package's own Alembic history might look like
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('ivr_0007')"))
        conn.execute(text("CREATE TABLE calls (id INTEGER PRIMARY KEY, caller TEXT)"))
    with SqlVoiceprintStore(db_url, KEYS) as store:
        store.save_voiceprint("alice", "ge2e-v1", np.ones(4, np.float32), EnrolmentMeta(3, 9.0))
    with SqlVoiceprintStore(db_url, KEYS) as store:  # reopening migrates nothing and keeps data
        assert list(store.speakers()) == ["alice"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "ivr_0007"
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == head_revision()
        assert schema_differences(conn) == []  # foreign tables are not the store's business
    assert {"calls", "alembic_version"} <= set(inspect(engine).get_table_names())


def test_downgrade_to_base_removes_the_stores_tables(engine):
    with engine.begin() as conn:
        upgrade(conn)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {VERSION_TABLE}


def test_schema_has_no_place_for_plaintext_vectors_or_audio():
    binary_columns = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    ]
    # Every binary column is AES-GCM ciphertext: voiceprints, watchlist voiceprints,
    # digit templates, replay fingerprints and recent calls' embeddings (derived from audio, never audio).
    assert sorted(binary_columns) == [
        "digit_templates.ciphertext",
        "recent_calls.ciphertext",
        "replay_fingerprints.ciphertext",
        "voiceprints.ciphertext",
        "watchlist_entries.ciphertext",
    ]
    names = " ".join(f"{t.name} {' '.join(t.columns.keys())}" for t in Base.metadata.sorted_tables)
    for forbidden in ("audio", "wav", "vector", "embedding", "sample"):
        assert forbidden not in names


def test_migrations_ship_inside_the_package():
    """Every migration file is a package module or matched by setup.cfg's package_data."""
    package_root = REPO / "voiceprints"
    assert SCRIPT_LOCATION.is_relative_to(package_root)
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["voiceprints"].split(",")]
    files = [p for p in SCRIPT_LOCATION.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert {p.name for p in files} >= {"env.py", "script.py.mako", "0001_initial.py", "0002_erasures.py", "0003_attack_defences.py"}
    for path in files:
        relative = path.relative_to(package_root).as_posix()
        in_a_package = path.suffix == ".py" and (path.parent / "__init__.py").exists()
        assert in_a_package or any(fnmatch.fnmatch(relative, p) for p in patterns), relative
