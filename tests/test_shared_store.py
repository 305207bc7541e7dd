"""Several worker hosts on one PostgreSQL: keys and secrets are configured once and never generated per host.

Every test here uses the real PostgreSQL on 127.0.0.1:5432 (skipped when it
is not running) and data directories that stand for different hosts.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from ivr.cli.app import app
from ivr.secrets import (
    SECRET_NAMES,
    SecretsConfig,
    SharedSecretsNotConfiguredError,
    load_server_secrets,
)
from tests.fakes.postgres import temporary_database
from tests.store_support import unit_vectors
from voiceprints.config import CoreConfig, StoreConfig
from voiceprints.errors import EncryptionKeyError, SharedKeysNotConfiguredError
from voiceprints.store.base import EnrolmentMeta
from voiceprints.store.crypto import KeyRing
from voiceprints.store.sql import open_store, shared_store
from voiceprints.audio.telephone import telephone_channel

ROOT = Path(__file__).resolve().parents[1]
OK, ERROR = 0, 7
SECRET_VARS = [f"VOICEAUTH_SECRETS__{name.upper()}" for name in SECRET_NAMES]


@pytest.fixture(scope="module")
def pg_url():
    with temporary_database("ivr_shared_test") as url:
        yield url


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No keys or secrets in the environment; VOICEAUTH_STORE__URL is set by each test."""
    for name in ("VOICEAUTH_KEYS", "VOICEAUTH_STORE__KEY_FILE", "VOICEAUTH_SECRETS__FILE", *SECRET_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "host-a"))
    return monkeypatch


def ivr(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def generated_environment() -> dict[str, str]:
    """What `ivr keys generate` prints, as a dict (the lines an admin puts in an EnvironmentFile)."""
    code, out, _ = ivr("keys", "generate")
    assert code == OK
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_only_a_database_server_counts_as_shared():
    assert shared_store("postgresql+psycopg://ivr:pw@db.example:5432/ivr") == "postgresql://ivr:***@db.example:5432/ivr"
    assert shared_store("postgresql://ivr@db/ivr") is not None
    assert shared_store("sqlite:////var/lib/voiceauth/voiceprints.db") is None
    assert shared_store("sqlite://") is None


def test_the_key_generator_refuses_a_shared_store_and_names_the_settings(tmp_path: Path):
    with pytest.raises(SharedKeysNotConfiguredError) as caught:
        KeyRing.from_env_or_file("VOICEAUTH_KEYS", None, tmp_path, environ={}, shared_store="postgresql://db/ivr")
    message = str(caught.value)
    assert "VOICEAUTH_KEYS" in message and "VOICEAUTH_STORE__KEY_FILE" in message and "ivr keys generate" in message
    assert not (tmp_path / "voiceprint.keys").exists(), "nothing generated on this host"
    # A key generated here by an earlier version is not silently taken as the shared one...
    local = KeyRing.from_env_or_file("VOICEAUTH_KEYS", None, tmp_path, environ={})
    with pytest.raises(SharedKeysNotConfiguredError, match="was generated on this host earlier"):
        KeyRing.from_env_or_file("VOICEAUTH_KEYS", None, tmp_path, environ={}, shared_store="postgresql://db/ivr")
    # ...but pointing at it explicitly (the same file copied to every host) is fine.
    ring = KeyRing.from_env_or_file("VOICEAUTH_KEYS", tmp_path / "voiceprint.keys", tmp_path, environ={},
                                    shared_store="postgresql://db/ivr")
    assert ring["k1"] == local["k1"]
    explicit = KeyRing.from_env_or_file("VOICEAUTH_KEYS", None, tmp_path / "other",
                                        environ={"VOICEAUTH_KEYS": ring.serialise().strip()},
                                        shared_store="postgresql://db/ivr")
    assert explicit["k1"] == local["k1"] and not (tmp_path / "other").exists()


def test_the_secrets_generator_refuses_a_shared_store_and_names_what_is_missing(tmp_path: Path):
    key = base64.b64encode(b"\x07" * 32).decode()
    with pytest.raises(SharedSecretsNotConfiguredError) as caught:
        load_server_secrets(SecretsConfig(audit_key=key), tmp_path, shared_store="postgresql://db/ivr")
    message = str(caught.value)
    assert "VOICEAUTH_SECRETS__FILE" in message and "VOICEAUTH_SECRETS__CALLER_KEY" in message
    assert "VOICEAUTH_SECRETS__AUDIT_KEY" not in message, "the one that is set is not asked for"
    assert not (tmp_path / "server.secrets").exists()
    complete = SecretsConfig(**{name: base64.b64encode(bytes([i + 1]) * 32).decode()
                                for i, name in enumerate(SECRET_NAMES)})
    secrets = load_server_secrets(complete, tmp_path, shared_store="postgresql://db/ivr")
    assert secrets.audit_key == bytes([4]) * 32 and not (tmp_path / "server.secrets").exists()
    # SQLite (one host) still generates the file on first use.
    assert len(load_server_secrets(SecretsConfig(), tmp_path).caller_key) == 32
    assert (tmp_path / "server.secrets").exists()


def test_ivr_serve_refuses_to_start_on_postgresql_without_keys_and_secrets(pg_url, tmp_path: Path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VOICEAUTH_KEYS", "VOICEAUTH_SECRETS__FILE", *SECRET_VARS)}
    env.update(VOICEAUTH_STORE__URL=pg_url, VOICEAUTH_DATA_DIR=str(tmp_path / "host"),
               PYTHONPATH=str(ROOT), VOICEAUTH_SECRETS__AUDIT_KEY=base64.b64encode(b"a" * 32).decode())
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ivr.cli.app", "serve"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == ERROR, done.stderr
    assert time.monotonic() - started < 30, "refused before loading a model or opening ports"
    for setting in ("VOICEAUTH_KEYS", "VOICEAUTH_STORE__KEY_FILE", "VOICEAUTH_SECRETS__FILE",
                    "VOICEAUTH_SECRETS__CALLER_KEY", "VOICEAUTH_SECRETS__KNOWLEDGE_PEPPER"):
        assert setting in done.stderr, setting
    assert "VOICEAUTH_SECRETS__AUDIT_KEY" not in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "host" / "voiceprint.keys").exists()
    assert not (tmp_path / "host" / "server.secrets").exists()


def test_cli_commands_that_write_refuse_before_writing(pg_url, clean_env, tmp_path: Path, utterances_of):
    clean_env.setenv("VOICEAUTH_STORE__URL", pg_url)
    paths = []
    for i, clip in enumerate(utterances_of("alice", 3)):
        paths.append(tmp_path / f"a{i}.wav")
        sf.write(paths[-1], telephone_channel(clip).samples, 8000)
    code, _, err = ivr("enroll", "4572", *map(str, paths))
    assert code == ERROR and "VOICEAUTH_KEYS" in err and "VOICEAUTH_SECRETS__FILE" in err
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("external_id,phone\n700123,+57 300 123 4567\n")
    clean_env.setenv("VOICEAUTH_KEYS", KeyRing.generate().serialise().strip())
    code, _, err = ivr("customers", "import", str(csv_file))
    assert code == ERROR and "VOICEAUTH_SECRETS__KNOWLEDGE_PEPPER" in err and "VOICEAUTH_KEYS" not in err
    code, _, err = ivr("enroll", "4572", *map(str, paths))
    assert code == ERROR and "VOICEAUTH_SECRETS__FILE" in err, "no voiceprint written that could not be audited"
    with open_store(CoreConfig(data_dir=tmp_path / "look", store=StoreConfig(url=pg_url))) as store:
        assert store.speakers() == [], "nothing was written"
    assert not (tmp_path / "host-a" / "voiceprint.keys").exists()
    assert not (tmp_path / "host-a" / "server.secrets").exists()


def test_two_hosts_with_the_generated_values_share_voiceprints_and_the_audit_chain(
        clean_env, tmp_path: Path, utterances_of):
    with temporary_database("ivr_shared_hosts") as url:
        for name, value in generated_environment().items():
            clean_env.setenv(name, value)
        clean_env.setenv("VOICEAUTH_STORE__URL", url)
        paths = []
        for i, clip in enumerate(utterances_of("alice", 5)):
            paths.append(tmp_path / f"alice{i}.wav")
            sf.write(paths[-1], telephone_channel(clip).samples, 8000)
        code, out, err = ivr("enroll", "4572", *map(str, paths[:3]))
        assert code == OK, err
        clean_env.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "host-b"))
        code, out, err = ivr("verify", "4572", str(paths[4]))
        assert code == OK and out.startswith("ACCEPT"), out + err
        code, out, err = ivr("audit", "verify")
        assert code == OK and "intact" in out, "host B checks the seals host A wrote"
        for host in ("host-a", "host-b"):
            assert not (tmp_path / host / "voiceprint.keys").exists()
            assert not (tmp_path / host / "server.secrets").exists()


def test_a_host_with_other_key_bytes_under_the_same_id_is_refused_at_open(pg_url, clean_env, tmp_path: Path):
    config = CoreConfig(data_dir=tmp_path / "h", store=StoreConfig(url=pg_url, key_env="VA_SHARED_KEYS"))
    clean_env.setenv("VA_SHARED_KEYS", KeyRing.generate("k7").serialise().strip())
    with open_store(config) as store:
        store.save_voiceprint("host-a-speaker", "m/1", unit_vectors(1, 8, seed=3)[0], EnrolmentMeta(3, 9.0, {}))
    clean_env.setenv("VA_SHARED_KEYS", KeyRing.generate("k7").serialise().strip())
    with pytest.raises(EncryptionKeyError, match="another host wrote them with different key bytes"):
        open_store(config)


def test_generated_files_are_private_never_overwritten_and_read_by_the_loaders(tmp_path: Path):
    code, out, _ = ivr("keys", "generate", "--out", str(tmp_path / "keys"), "--key-id", "2026a")
    assert code == OK and "VOICEAUTH_STORE__KEY_FILE=" in out and "VOICEAUTH_SECRETS__FILE=" in out
    keys, secrets = tmp_path / "keys" / "voiceprint.keys", tmp_path / "keys" / "server.secrets"
    assert keys.stat().st_mode & 0o777 == 0o600 and secrets.stat().st_mode & 0o777 == 0o600
    ring = KeyRing.from_env_or_file("NONE", keys, tmp_path, environ={}, shared_store="postgresql://db/x")
    assert ring.primary_id == "2026a"
    loaded = load_server_secrets(SecretsConfig(file=secrets), tmp_path, shared_store="postgresql://db/x")
    assert len({loaded.caller_key, loaded.otp_secret, loaded.knowledge_pepper, loaded.audit_key}) == 4
    before = keys.read_bytes()
    code, _, err = ivr("keys", "generate", "--out", str(tmp_path / "keys"))
    assert code != OK and "not overwriting" in err and keys.read_bytes() == before
    assert generated_environment()["VOICEAUTH_KEYS"] != generated_environment()["VOICEAUTH_KEYS"], "fresh each time"
