"""What a worker host installs (docs/admins.md: ``pip install .``) is a complete engine, built quietly.

The wheel is built from a copy of this checkout with the project's own build
backend, exactly as pip calls it; then it is installed into a directory of its
own and ``ivr serve`` is started from there (not from the checkout), so a
migration, Alembic template or the default policy missing from the package
data makes the worker fail to start here instead of on a customer's host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.fakes.mailbox import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ivr", "voiceprints")
# Not part of the source: left by earlier builds, test runs and the lab.
_NOT_SOURCE = (".git", ".venv", ".lab", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
               ".mypy_cache", ".ruff_cache", "var", "*.db", "*.whl")

# Calls the PEP 517 hooks the way pip does (pyproject_hooks records the backend's warnings and
# pip prints every one of them), and writes what it got to a JSON file.
_BUILD = textwrap.dedent("""
    import json, sys, warnings
    from setuptools import build_meta
    out, report = sys.argv[1], sys.argv[2]
    result = {}
    for hook in ("build_wheel", "build_editable"):
        with warnings.catch_warnings(record=True) as caught:
            name = getattr(build_meta, hook)(out)
        result[hook] = {"file": name, "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
    with open(report, "w") as f:
        json.dump(result, f)
""")


def package_files(root: Path) -> set[str]:
    """Every file of the shipped packages under ``root``, as wheel paths."""
    return {path.relative_to(root).as_posix()
            for package in PACKAGES for path in (root / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The wheel and the editable wheel, built from a copy (an in-tree build leaves build/ behind)."""
    work = tmp_path_factory.mktemp("packaging")
    source, out = work / "source", work / "dist"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out.mkdir()
    report = work / "build.json"
    done = subprocess.run([sys.executable, "-c", _BUILD, str(out), str(report)], cwd=source,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    for hook in result.values():
        hook["path"] = out / hook["file"]
    result["source"] = {"path": source}
    return result


def test_building_the_package_prints_no_setuptools_warnings(built):
    assert {hook: built[hook]["warnings"] for hook in ("build_wheel", "build_editable")} == {
        "build_wheel": [], "build_editable": []}


def test_the_wheel_holds_every_file_of_the_engine_and_nothing_else(built):
    with zipfile.ZipFile(built["build_wheel"]["path"]) as wheel:
        shipped = {name for name in wheel.namelist() if not name.startswith("voiceauth-")}
    expected = package_files(built["source"]["path"])
    assert shipped == expected
    for needed in ("voiceprints/store/migrations/versions/0001_initial.py",
                   "voiceprints/store/migrations/env.py", "ivr/db/migrations/env.py",
                   "ivr/db/migrations/versions/0001_customers_otp_knowledge.py", "ivr/policy/default.yaml"):
        assert needed in shipped


def test_ivr_serve_starts_from_the_installed_wheel_with_its_migrations_and_default_policy(built, tmp_path):
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
         "--quiet", "--target", str(target), str(built["build_wheel"]["path"])],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # Only the installed copy: no VOICEAUTH_* of this shell, nothing of the checkout on the path.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_") and k != "PYTHONPATH"}
    http_port = free_port()
    env.update(PYTHONPATH=str(target), VOICEAUTH_DATA_DIR=str(tmp_path / "data"),
               VOICEAUTH_AMI__ENABLED="false", VOICEAUTH_AUDIOSOCKET__PORT="0", VOICEAUTH_FASTAGI__PORT="0",
               VOICEAUTH_HTTP__PORT=str(http_port))
    where = subprocess.run([sys.executable, "-c", "import ivr, voiceprints; print(ivr.__file__, voiceprints.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.stdout.split() == [str(target / "ivr" / "__init__.py"), str(target / "voiceprints" / "__init__.py")]

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([str(target / "bin" / "ivr"), "serve", "--grace", "1"], env=env, cwd=tmp_path,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # model import and prompt generation on a busy 2-core machine
        while True:
            assert serve.poll() is None, f"ivr serve exited with {serve.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"ivr serve not ready:\n{log.read_text()}"
            time.sleep(0.3)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0, log.read_text()
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()

    # Both migration histories ran from the installed files, to their newest revision.
    db = sqlite3.connect(tmp_path / "data" / "voiceprints.db")
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    versions = {table: db.execute(f"SELECT version_num FROM {table}").fetchall()
                for table in ("voiceprints_alembic_version", "ivr_alembic_version")}
    db.close()
    assert {"speakers", "voiceprints", "customers", "audit_events"} <= tables
    heads = {"voiceprints_alembic_version": _head(target / "voiceprints/store/migrations"),
             "ivr_alembic_version": _head(target / "ivr/db/migrations")}
    assert versions == {table: [(head,)] for table, head in heads.items()}


def _head(migrations: Path) -> str:
    """The newest revision of the Alembic scripts in ``migrations`` (the installed copy)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations)).get_current_head()
    assert head is not None, f"no revisions in {migrations}"
    return head
