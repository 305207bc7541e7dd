"""Generating, hashing and comparing one-time codes.

Codes are drawn with :mod:`secrets` digit by digit (uniform, leading zeros
allowed: "004217" is as likely as any other code). Only a keyed hash is
stored: HMAC-SHA256 with a server secret over the challenge id and the code.
A plain hash of a 6-digit code is reversed by trying all 10**6 values; the
key makes a leaked table useless without the secret, and the challenge id
makes equal codes hash differently.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Anything shorter is guessable well within a human's lifetime of retries;
# HMAC keys below the hash's output size weaken it (RFC 2104 section 3).
MIN_SECRET_BYTES = 32


def generate_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the one-time-code secret has {len(secret)} bytes; use at least {MIN_SECRET_BYTES} random bytes"
        )
    return secret


def hash_code(secret: bytes, challenge_id: str, code: str) -> bytes:
    message = f"{challenge_id}:{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def code_matches(secret: bytes, challenge_id: str, entered: str, stored_hash: bytes) -> bool:
    """Constant-time: the time taken says nothing about how many digits were right."""
    return hmac.compare_digest(hash_code(secret, challenge_id, entered), stored_hash)


def normalise_entry(entered: str) -> str:
    """What a caller keyed in, as digits only (DTMF terminators like '#' and stray '*' dropped)."""
    return "".join(ch for ch in entered if ch.isdigit() and ch.isascii())
