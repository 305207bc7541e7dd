"""Server secrets: from the environment, else a 0600 file made once; caller numbers hashed, never kept."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from ivr.secrets import SECRET_NAMES, SecretsConfig, SecretsError, caller_hash, load_server_secrets
from ivr.settings import Settings


def test_a_secrets_file_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_server_secrets(SecretsConfig(), tmp_path)
    path = tmp_path / "server.secrets"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_server_secrets(SecretsConfig(), tmp_path)
    assert (again.caller_key, again.otp_secret, again.knowledge_pepper) == (
        first.caller_key,
        first.otp_secret,
        first.knowledge_pepper,
    )
    assert len({first.caller_key, first.otp_secret, first.knowledge_pepper}) == 3, "independent keys"
    assert "hidden" in repr(first) and base64.b64encode(first.caller_key).decode() not in repr(first)


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch) -> None:
    key = base64.b64encode(b"\x01" * 32).decode()
    monkeypatch.setenv("VOICEAUTH_SECRETS__CALLER_KEY", key)
    secrets = load_server_secrets(Settings().secrets, tmp_path)
    assert secrets.caller_key == b"\x01" * 32
    assert secrets.otp_secret == load_server_secrets(SecretsConfig(), tmp_path).otp_secret  # from the file


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SecretsConfig(caller_key="not base64!"), "not valid base64"),
        (SecretsConfig(otp_secret=base64.b64encode(b"short").decode()), "at least 32 random bytes"),
        (SecretsConfig(file=Path("/nonexistent/server.secrets")), "does not exist"),
    ],
)
def test_unusable_secrets_are_refused_with_the_fix(
    tmp_path: Path, config: SecretsConfig, message: str
) -> None:
    with pytest.raises(SecretsError, match=message):
        load_server_secrets(config, tmp_path)


def test_a_secrets_file_missing_a_name_says_which(tmp_path: Path) -> None:
    path = tmp_path / "mine.secrets"
    path.write_text(f"caller_key:{base64.b64encode(b'k' * 32).decode()}\n")
    with pytest.raises(SecretsError, match="has no 'otp_secret'"):
        load_server_secrets(SecretsConfig(file=path), tmp_path)
    path.write_text("bogus line\n")
    with pytest.raises(SecretsError, match="line 1"):
        load_server_secrets(SecretsConfig(file=path), tmp_path)
    assert set(SECRET_NAMES) == {"caller_key", "otp_secret", "knowledge_pepper", "audit_key"}


def test_a_generated_file_from_an_older_version_gets_the_newer_secret_and_keeps_the_others(tmp_path: Path) -> None:
    old = {name: base64.b64encode(bytes([i + 1]) * 32).decode()
           for i, name in enumerate(("caller_key", "otp_secret", "knowledge_pepper"))}
    path = tmp_path / "server.secrets"
    path.write_text("".join(f"{name}:{value}\n" for name, value in old.items()))
    path.chmod(0o600)
    secrets = load_server_secrets(SecretsConfig(), tmp_path)
    assert secrets.caller_key == bytes([1]) * 32 and len(secrets.audit_key) == 32
    assert load_server_secrets(SecretsConfig(), tmp_path).audit_key == secrets.audit_key
    assert path.stat().st_mode & 0o777 == 0o600


def test_caller_numbers_are_hashed_with_the_key_and_withheld_numbers_are_not_hashed() -> None:
    key, other = b"a" * 32, b"b" * 32
    hashed = caller_hash(key, "+57 300 123-4567")
    assert hashed == caller_hash(key, "+573001234567") and len(hashed) == 64
    assert "3001234567" not in hashed
    assert caller_hash(other, "+573001234567") != hashed, "without the key the hash cannot be recomputed"
    assert caller_hash(key, "+573001234568") != hashed
    for withheld in (None, "", "anonymous", "Unknown", "PRIVATE", "alice", "+57abc", "12"):
        assert caller_hash(key, withheld) is None
