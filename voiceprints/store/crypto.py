"""Encryption of voiceprints at rest: AES-256-GCM under a ring of named keys.

A voiceprint is biometric data: a copied database file must be useless without
the keys, and a ciphertext moved onto another speaker's record must not
decrypt (that would let someone enrol as themselves and then claim another
identity). Both follow from AES-GCM with the record's identity as associated
data. Keys carry an id stored next to each record, so keys can be rotated
while old records stay readable.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voiceprints.errors import EncryptionKeyError
from voiceprints.private_files import PrivateFileError, create_private_text, read_private_text

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
# 96-bit random nonces are what GCM is specified for; with random nonces one
# key stays safe for ~2^32 encryptions, far beyond any voiceprint store.
NONCE_BYTES = 12
DEFAULT_KEY_FILE_NAME = "voiceprint.keys"
# Ids end up in a text format ("id:key,id:key") and in a VARCHAR(64) column.
_AAD_LABEL = b"voiceauth.voiceprint.v1\x00"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeyRing(Mapping[str, bytes]):
    """Ordered key_id -> 32-byte key; the first key is primary (used for new records)."""

    def __init__(
        self,
        keys: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
        *,
        source: str = "key ring",
        env_name: str = "VOICEAUTH_KEYS",
    ):
        items = list(keys.items() if isinstance(keys, Mapping) else keys)
        if not items:
            raise EncryptionKeyError(f"{source}: no encryption key configured")
        self._keys: dict[str, bytes] = {}
        for key_id, key in items:
            if not _KEY_ID.match(key_id):
                raise EncryptionKeyError(
                    f"{source}: key id {key_id[:64]!r} is invalid; use 1-64 letters, digits, '_', '-' or '.'"
                )
            if key_id in self._keys:
                raise EncryptionKeyError(f"{source}: key id {key_id!r} appears twice; key ids must be unique")
            if len(key) != KEY_BYTES:
                raise EncryptionKeyError(
                    f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs exactly {KEY_BYTES} "
                    f"(generate one with: head -c {KEY_BYTES} /dev/urandom | base64)"
                )
            self._keys[key_id] = bytes(key)
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self._keys.items()}
        self.source = source
        self.env_name = env_name  # named in "key not configured" messages

    # --- Mapping ---------------------------------------------------------
    def __getitem__(self, key_id: str) -> bytes:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # never show key material
        return f"KeyRing(ids={list(self._keys)!r}, primary={self.primary_id!r})"

    @property
    def primary_id(self) -> str:
        return next(iter(self._keys))

    # --- construction ----------------------------------------------------
    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls([(key_id, secrets.token_bytes(KEY_BYTES))], source="generated key")

    @classmethod
    def parse(cls, text: str, *, source: str, env_name: str = "VOICEAUTH_KEYS") -> KeyRing:
        """Parse ``id:base64key`` entries separated by commas and/or newlines; ``#`` starts a comment."""
        entries: list[tuple[str, bytes]] = []
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            for entry in line.split(","):
                entry = entry.strip()
                if not entry:
                    continue
                key_id, sep, encoded = entry.partition(":")
                key_id = key_id.strip()
                if not sep or not key_id:
                    raise EncryptionKeyError(
                        f"{source}: entry #{len(entries) + 1} is not in the form 'id:base64key'"
                    )
                try:
                    key = base64.b64decode(encoded.strip(), validate=True)
                except (binascii.Error, ValueError):
                    raise EncryptionKeyError(f"{source}: key {key_id!r} is not valid base64") from None
                entries.append((key_id, key))
        return cls(entries, source=source, env_name=env_name)

    def serialise(self) -> str:
        """The text format :meth:`parse` reads, one key per line, primary first."""
        return "".join(f"{key_id}:{base64.b64encode(key).decode()}\n" for key_id, key in self._keys.items())

    def with_primary(self, key_id: str, key: bytes) -> KeyRing:
        """A ring with a new primary key and every current key kept (for rotation)."""
        return KeyRing([(key_id, key), *self._keys.items()], source=self.source, env_name=self.env_name)

    def without(self, key_id: str) -> KeyRing:
        return KeyRing(
            [(k, v) for k, v in self._keys.items() if k != key_id], source=self.source, env_name=self.env_name
        )

    @classmethod
    def from_env_or_file(
        cls,
        env_name: str,
        key_file: Path | None,
        data_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> KeyRing:
        """Keys from ``$env_name``, else ``key_file``, else ``data_dir/voiceprint.keys`` (created if absent).

        An explicitly configured key file that does not exist is an error rather
        than a reason to generate a key: a fresh key would make every existing
        record unreadable, and the operator evidently meant to use their own.
        """
        env = os.environ if environ is None else environ
        value = env.get(env_name, "").strip()
        if value:
            return cls.parse(value, source=f"environment variable {env_name}", env_name=env_name)
        if key_file is not None:
            path = Path(key_file).expanduser()
            if not path.exists():
                raise EncryptionKeyError(
                    f"key file {path} does not exist; create it with one line 'k1:<base64 key>' "
                    f"(key: head -c {KEY_BYTES} /dev/urandom | base64), set {env_name}, "
                    f"or leave key_file unset to use a generated key in the data directory"
                )
            return _read_key_file(path, env_name)
        path = Path(data_dir) / DEFAULT_KEY_FILE_NAME
        if path.exists():
            return _read_key_file(path, env_name)
        return _create_key_file(path, env_name)

    # --- encryption ------------------------------------------------------
    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt under the primary key; returns (key_id, nonce + ciphertext + tag)."""
        key_id = self.primary_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        return key_id, nonce + self._ciphers[key_id].encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise EncryptionKeyError(
                f"record encrypted with key {key_id!r} which is not configured; add it to {self.env_name} "
                f"(configured: {', '.join(repr(k) for k in self._keys)})"
            )
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise EncryptionKeyError(
                f"record does not authenticate under key {key_id!r}: the ciphertext was altered, "
                "moved from another record, or the key with this id is not the one it was written with"
            ) from None


def record_aad(speaker_id: str, model_id: str) -> bytes:
    """Associated data binding a voiceprint ciphertext to its record.

    Length-prefixing the speaker id keeps the encoding unambiguous
    (("a", "bc") != ("ab", "c")); the label versions the scheme so it can
    change without confusing old records. Cheap on purpose: identification
    computes it for every row of a 100k-voiceprint matrix.
    """
    speaker = speaker_id.encode()
    return b"".join((_AAD_LABEL, len(speaker).to_bytes(4, "big"), speaker, model_id.encode()))


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes, dim: int) -> np.ndarray:
    if len(data) != dim * 4:
        raise EncryptionKeyError(
            f"decrypted voiceprint has {len(data)} bytes; expected {dim * 4} for dim {dim}"
        )
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _read_key_file(path: Path, env_name: str) -> KeyRing:
    try:
        text = read_private_text(path, "key file")
    except PrivateFileError as exc:
        raise EncryptionKeyError(f"{exc}; expected 'id:base64key' lines") from None
    return KeyRing.parse(text, source=f"key file {path}", env_name=env_name)


def _create_key_file(path: Path, env_name: str) -> KeyRing:
    """Create the default key file (0600); a process losing the race to create it reads the winner's."""
    ring = KeyRing.generate()
    header = "# voiceauth voiceprint encryption keys: id:base64key, primary first. BACK THIS UP.\n"
    if not create_private_text(path, header + ring.serialise()):
        return _read_key_file(path, env_name)
    log.warning(
        "generated a new voiceprint encryption key %r in %s; back this file up: "
        "without it no stored voiceprint can be decrypted",
        ring.primary_id,
        path,
    )
    return KeyRing.parse(ring.serialise(), source=f"key file {path}", env_name=env_name)


def labelled_aad(label: str, *parts: str) -> bytes:
    """Associated data for the other encrypted records (digit templates, fingerprints, watchlist).

    Each kind has its own label, so a ciphertext of one kind never decrypts
    as another; every part is length-prefixed, as in :func:`record_aad`.
    """
    out = [f"voiceauth.{label}.v1".encode(), b"\x00"]
    for part in parts:
        data = part.encode()
        out += [len(data).to_bytes(4, "big"), data]
    return b"".join(out)
