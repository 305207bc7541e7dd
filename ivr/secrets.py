"""Server-side secrets of the fallback factors, and the keyed hash of caller numbers.

Four independent 32-byte keys: the HMAC key for caller numbers (so audit
rows and rate-limit rows never hold a phone number), the one-time-code HMAC
secret, the knowledge-answer pepper, and the key that seals the audit log
(kept outside the database, so a database role cannot forge audit rows). Each comes from the environment
(``VOICEAUTH_SECRETS__CALLER_KEY=<base64>`` and so on), else from a secrets
file (``VOICEAUTH_SECRETS__FILE``), else from ``DATA_DIR/server.secrets``,
generated with mode 0600 on first use like the voiceprint key file.

Losing the file is not fatal but has consequences: pending one-time codes
stop verifying, knowledge answers must be re-imported, and caller hashes no
longer match older audit rows. Back it up with the voiceprint keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, SecretStr

from voiceprints.private_files import PrivateFileError, create_private_text, read_private_text

if TYPE_CHECKING:
    from ivr.limits.service import CallOrigin

log = logging.getLogger(__name__)

DEFAULT_SECRETS_FILE = "server.secrets"
SECRET_NAMES = ("caller_key", "otp_secret", "knowledge_pepper", "audit_key")
# RFC 2104: HMAC keys shorter than the hash output weaken it.
SECRET_BYTES = 32
# What switches and carriers send when the number is withheld: hashing them
# would put every anonymous caller into one shared rate-limit bucket, which
# one abuser could exhaust for everybody.
_WITHHELD = {"", "anonymous", "unknown", "private", "restricted", "unavailable", "withheld"}
# What a caller number can look like once spaces and dashes are gone: an
# optional "+" and 3-15 digits (E.164 has at most 15). Anything else (a SIP
# user name, letters, an empty string) is not a number anyone can be called
# back on, and is limited with the withheld numbers.
_NUMBER = re.compile(r"\+?\d{3,15}")


class SecretsError(Exception):
    """A configured secret is missing or unusable; never shows secret material."""

    code = "secrets_error"


class SecretsConfig(BaseModel):
    # base64 of at least 32 random bytes each; unset: taken from the file.
    caller_key: SecretStr | None = None
    otp_secret: SecretStr | None = None
    knowledge_pepper: SecretStr | None = None
    audit_key: SecretStr | None = None
    # None: DATA_DIR/server.secrets, created on first use.
    file: Path | None = None


@dataclass(frozen=True, repr=False)
class ServerSecrets:
    caller_key: bytes
    otp_secret: bytes
    knowledge_pepper: bytes
    audit_key: bytes

    def __repr__(self) -> str:
        return "ServerSecrets(<hidden>)"

    def caller_hash(self, number: str | None) -> str | None:
        """HMAC-SHA256 of the caller number as 64 hex characters; None when the number is withheld.

        Spaces, dashes and brackets are dropped first so that "+57 300 123-4567"
        and "+573001234567" are one caller. A number is not otherwise
        rewritten: "3001234567" and "+573001234567" hash differently, as the
        switch presents them differently.
        """
        return caller_hash(self.caller_key, number)

    def call_origin(self, number: str | None, trunk: str | None) -> "CallOrigin":
        """What the limits count for a call: the number's hash, or the trunk's shared withheld bucket."""
        from ivr.limits.service import CallOrigin

        trunk = trunk or "default"
        hashed = self.caller_hash(number)
        if hashed is not None:
            return CallOrigin(caller=hashed, trunk=trunk)
        withheld = hmac.new(self.caller_key, b"withheld:" + trunk.encode(), hashlib.sha256).hexdigest()
        return CallOrigin(withheld=withheld, trunk=trunk)


def caller_hash(key: bytes, number: str | None) -> str | None:
    """None for a withheld or invalid number (see ``_NUMBER``)."""
    if number is None:
        return None
    compact = re.sub(r"[\s\-().]", "", number).lower()
    if compact in _WITHHELD or not _NUMBER.fullmatch(compact):
        return None
    return hmac.new(key, b"caller:" + compact.encode(), hashlib.sha256).hexdigest()


class SharedSecretsNotConfiguredError(SecretsError):
    """The database is shared by several hosts and some secret would be generated on this one."""

    code = "secrets_not_configured"


def unconfigured_secrets(config: SecretsConfig) -> list[str]:
    """Names of the secrets neither set in the environment nor covered by ``VOICEAUTH_SECRETS__FILE``."""
    if config.file is not None:
        return []
    return [name for name in SECRET_NAMES if getattr(config, name) is None]


def shared_secrets_message(store: str, missing: list[str], local_file: Path) -> str:
    """What to set when a shared database would get secrets generated on this host."""
    found = (
        f"; {local_file} was generated on this host earlier: if other hosts already use it, copy it to "
        f"every host and set VOICEAUTH_SECRETS__FILE to its path"
        if local_file.exists() else ""
    )
    return (
        f"the database {store} is shared by every worker, so the server secrets must be the same on every "
        f"host and are not generated here: set VOICEAUTH_SECRETS__FILE, or "
        f"{', '.join(f'VOICEAUTH_SECRETS__{name.upper()}' for name in missing)}, on every host "
        f"(`ivr keys generate` prints fresh ones; see docs/deploy.md){found}"
    )


def load_server_secrets(config: SecretsConfig, data_dir: Path, *, shared_store: str | None = None) -> ServerSecrets:
    """Secrets from the settings (environment), else the secrets file (created if it is the default one).

    ``shared_store`` (the display URL of a database other hosts use too): the
    data directory's file is neither used nor generated. Each host would
    otherwise hash caller numbers, pepper knowledge answers and seal the
    audit log with its own keys: answers imported through one worker would
    fail on the next, rate limits would split per host, and the audit chain
    would not verify. The secrets must be configured explicitly.
    """
    missing = unconfigured_secrets(config)
    if shared_store is not None and missing:
        raise SharedSecretsNotConfiguredError(
            shared_secrets_message(shared_store, missing, Path(data_dir) / DEFAULT_SECRETS_FILE)
        )
    values: dict[str, bytes] = {}
    for name in SECRET_NAMES:
        configured = getattr(config, name)
        if configured is not None:
            values[name] = _decode(configured.get_secret_value(), f"VOICEAUTH_SECRETS__{name.upper()}")
    missing = [n for n in SECRET_NAMES if n not in values]
    if missing:
        if config.file is not None:
            path = Path(config.file).expanduser()
            if not path.exists():
                raise SecretsError(
                    f"secrets file {path} does not exist; create it with lines 'name:<base64>' for "
                    f"{', '.join(SECRET_NAMES)} (each: head -c {SECRET_BYTES} /dev/urandom | base64), "
                    "or unset VOICEAUTH_SECRETS__FILE to use a generated file in the data directory"
                )
            from_file = _read(path)
        else:
            path = Path(data_dir) / DEFAULT_SECRETS_FILE
            from_file = _read(path) if path.exists() else _create(path)
            if any(name not in from_file for name in missing):
                from_file = _add_missing(path, from_file)
        for name in missing:
            if name not in from_file:
                raise SecretsError(
                    f"secrets file {path} has no {name!r}; add a line "
                    f"'{name}:<base64 of {SECRET_BYTES} random bytes>' "
                    f"or set VOICEAUTH_SECRETS__{name.upper()}"
                )
            values[name] = from_file[name]
    return ServerSecrets(**values)


def _decode(text: str, source: str) -> bytes:
    try:
        value = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecretsError(f"{source} is not valid base64") from None
    if len(value) < SECRET_BYTES:
        raise SecretsError(
            f"{source} has {len(value)} bytes; use at least {SECRET_BYTES} random bytes "
            f"(head -c {SECRET_BYTES} /dev/urandom | base64)"
        )
    return value


def _parse(text: str, path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, encoded = line.partition(":")
        name = name.strip()
        if not sep or name not in SECRET_NAMES:
            raise SecretsError(
                f"secrets file {path}, line {number}: expected 'name:<base64>' "
                f"with name one of {', '.join(SECRET_NAMES)}"
            )
        found[name] = _decode(encoded, f"secrets file {path}, {name}")
    return found


def _read(path: Path) -> dict[str, bytes]:
    try:
        return _parse(read_private_text(path, "secrets file"), path)
    except PrivateFileError as exc:
        raise SecretsError(f"{exc}; expected 'name:base64' lines") from None


def _add_missing(path: Path, found: dict[str, bytes]) -> dict[str, bytes]:
    """A generated file from an older version lacks a newer secret: append one (the others never change)."""
    added = {name: secrets.token_bytes(SECRET_BYTES) for name in SECRET_NAMES if name not in found}
    with path.open("a", encoding="ascii") as out:
        out.writelines(f"{name}:{base64.b64encode(value).decode()}\n" for name, value in added.items())
    log.warning("added %s to the server secrets in %s; back this file up", ", ".join(added), path)
    return {**found, **added}


def generate_secrets() -> dict[str, bytes]:
    """Fresh random values for every secret (``ivr keys generate``, and the data directory's first file)."""
    return {name: secrets.token_bytes(SECRET_BYTES) for name in SECRET_NAMES}


def secrets_file_text(values: dict[str, bytes]) -> str:
    """The ``name:base64`` format ``VOICEAUTH_SECRETS__FILE`` reads."""
    return "".join(
        ["# voiceauth server secrets (caller-number hashing, one-time codes, knowledge pepper, audit seal).\n",
         "# BACK THIS UP.\n"] + [f"{name}:{base64.b64encode(value).decode()}\n" for name, value in values.items()])


def secrets_env_lines(values: dict[str, bytes]) -> list[str]:
    """The same values as ``VOICEAUTH_SECRETS__<NAME>=<base64>`` lines (an EnvironmentFile for systemd)."""
    return [f"VOICEAUTH_SECRETS__{name.upper()}={base64.b64encode(value).decode()}" for name, value in values.items()]


def _create(path: Path) -> dict[str, bytes]:
    """Create the default file (0600); a process losing the race to create it reads the winner's."""
    values = generate_secrets()
    text = secrets_file_text(values)
    if not create_private_text(path, text):
        return _read(path)
    log.warning("generated new server secrets in %s; back this file up", path)
    return values
