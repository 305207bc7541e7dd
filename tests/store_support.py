"""Fixtures and helpers shared by the voiceprint-store tests.

PostgreSQL tests get a database of their own (``vp_test_<random>``) per test
module, created on the local server and dropped afterwards; each test starts
from an empty ``public`` schema in it. They are skipped only when no server
answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import numpy as np
import pytest

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_admin_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


def _pg_reachable() -> str | None:
    try:
        pg_admin_connect().close()
        return None
    except Exception as exc:  # any failure to connect means "no server here"
        return f"no PostgreSQL server reachable at {PG_ADMIN_URL}: {exc}"


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """Name of a fresh database on the local server, dropped after the module."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    name = f"vp_test_{secrets.token_hex(6)}"
    with pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with pg_admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"


def reset_pg_schema(database: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'voiceprints.db'}"
    database = request.getfixturevalue("pg_database")
    reset_pg_schema(database)
    return pg_url(database)


def unit_vectors(n: int, dim: int = 192, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
