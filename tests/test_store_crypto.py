"""Encryption keys and AES-GCM sealing of voiceprints (voiceprints.store.crypto)."""

from __future__ import annotations

import base64
import logging
import stat
import threading

import numpy as np
import pytest

from voiceprints.errors import EncryptionKeyError
from voiceprints.store.crypto import KeyRing, record_aad, vector_from_bytes, vector_to_bytes

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def assert_no_key_material(text: str, *keys: bytes) -> None:
    for key in keys:
        assert b64(key) not in text
        assert key.hex() not in text


# --- parsing -------------------------------------------------------------------
def test_environment_format_lists_keys_in_order_with_the_first_as_primary():
    ring = KeyRing.parse(f"new:{b64(KEY_B)}, old:{b64(KEY_A)}", source="env")
    assert list(ring) == ["new", "old"]
    assert ring.primary_id == "new"
    assert ring["old"] == KEY_A


def test_key_file_format_allows_one_key_per_line_and_comments():
    text = f"# keys\nk2:{b64(KEY_B)}  # current\n\nk1:{b64(KEY_A)}\n"
    ring = KeyRing.parse(text, source="file")
    assert list(ring) == ["k2", "k1"] and ring["k2"] == KEY_B


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"k1:{b64(KEY_A[:31])}", "31 bytes; AES-256 needs exactly 32"),
        (f"k1:{b64(KEY_A + b'x')}", "33 bytes"),
        (f"k1:{b64(KEY_A)},k1:{b64(KEY_B)}", "'k1' appears twice"),
        ("k1:not*base64!", "not valid base64"),
        (b64(KEY_A), "not in the form 'id:base64key'"),
        (f":{b64(KEY_A)}", "not in the form"),
        (f"bad id:{b64(KEY_A)}", "is invalid"),
        ("  ,\n# only a comment\n", "no encryption key configured"),
    ],
)
def test_malformed_keys_are_rejected_with_a_clear_message_and_no_key_material(text, expected):
    with pytest.raises(EncryptionKeyError) as info:
        KeyRing.parse(text, source="environment variable VOICEAUTH_KEYS")
    message = str(info.value)
    assert expected in message
    assert "VOICEAUTH_KEYS" in message  # says where the bad key came from
    assert_no_key_material(message, KEY_A, KEY_A[:31], KEY_B)


def test_repr_and_serialisation_round_trip_without_showing_keys_in_repr():
    ring = KeyRing([("k2", KEY_B), ("k1", KEY_A)])
    assert_no_key_material(repr(ring), KEY_A, KEY_B)
    again = KeyRing.parse(ring.serialise(), source="file")
    assert list(again.items()) == list(ring.items())


# --- where keys come from ----------------------------------------------------------
def test_environment_variable_wins_over_key_files(tmp_path):
    key_file = tmp_path / "explicit.keys"
    key_file.write_text(f"file:{b64(KEY_B)}\n")
    ring = KeyRing.from_env_or_file("VA_KEYS", key_file, tmp_path, environ={"VA_KEYS": f"env:{b64(KEY_A)}"})
    assert list(ring) == ["env"]


def test_configured_key_file_is_read_when_the_environment_has_no_keys(tmp_path):
    key_file = tmp_path / "explicit.keys"
    key_file.write_text(f"file:{b64(KEY_B)}\n")
    key_file.chmod(0o600)
    ring = KeyRing.from_env_or_file("VA_KEYS", key_file, tmp_path / "data", environ={"VA_KEYS": "  "})
    assert ring["file"] == KEY_B
    assert not (tmp_path / "data" / "voiceprint.keys").exists()


def test_a_configured_key_file_that_is_missing_is_an_error_not_a_new_key(tmp_path):
    missing = tmp_path / "nope.keys"
    with pytest.raises(EncryptionKeyError, match="nope.keys does not exist"):
        KeyRing.from_env_or_file("VA_KEYS", missing, tmp_path, environ={})
    assert not missing.exists()
    assert not (tmp_path / "voiceprint.keys").exists()


def test_without_any_configured_key_a_0600_key_file_is_generated_once(tmp_path, caplog):
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="voiceprints.store.crypto"):
        first = KeyRing.from_env_or_file("VA_KEYS", None, data_dir, environ={})
    key_file = data_dir / "voiceprint.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 1 and len(first[first.primary_id]) == 32
    assert "back this file up" in caplog.text and str(key_file) in caplog.text
    assert_no_key_material(caplog.text, first[first.primary_id])
    second = KeyRing.from_env_or_file("VA_KEYS", None, data_dir, environ={})
    assert list(second.items()) == list(first.items())
    assert [p.name for p in data_dir.iterdir()] == ["voiceprint.keys"]  # no temporary files left


def test_processes_starting_together_agree_on_one_generated_key(tmp_path):
    barrier = threading.Barrier(4, timeout=10)
    rings: list[KeyRing] = []

    def start():
        barrier.wait()
        rings.append(KeyRing.from_env_or_file("VA_KEYS", None, tmp_path, environ={}))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(rings) == 4
    assert len({ring[ring.primary_id] for ring in rings}) == 1
    on_disk = KeyRing.from_env_or_file("VA_KEYS", None, tmp_path, environ={})
    assert on_disk[on_disk.primary_id] == rings[0][rings[0].primary_id]


def test_an_unreadable_key_file_is_reported_with_its_path(tmp_path):
    key_file = tmp_path / "binary.keys"
    key_file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EncryptionKeyError, match="binary.keys"):
        KeyRing.from_env_or_file("VA_KEYS", key_file, tmp_path, environ={})


# --- sealing -------------------------------------------------------------------
def test_sealed_vector_opens_bit_exact_and_ciphertexts_never_repeat():
    ring = KeyRing([("k1", KEY_A)])
    vector = np.random.default_rng(1).standard_normal(256).astype(np.float32)
    aad = record_aad("alice", "ge2e")
    key_id, blob = ring.encrypt(vector_to_bytes(vector), aad)
    _, blob2 = ring.encrypt(vector_to_bytes(vector), aad)
    assert key_id == "k1"
    assert blob != blob2  # fresh nonce every time
    assert vector_to_bytes(vector) not in blob
    restored = vector_from_bytes(ring.decrypt(key_id, blob, aad), 256)
    assert restored.dtype == np.float32 and np.array_equal(restored, vector)


def test_float32_serialisation_is_little_endian():
    assert vector_to_bytes(np.array([1.0], dtype=">f4")) == b"\x00\x00\x80\x3f"


@pytest.mark.parametrize(
    "speaker, model", [("bob", "ge2e"), ("alice", "ecapa"), ("alic", "e"), ("alice", "ge2e ")]
)
def test_ciphertext_moved_to_another_record_does_not_open(speaker, model):
    ring = KeyRing([("k1", KEY_A)])
    key_id, blob = ring.encrypt(b"\x00" * 16, record_aad("alice", "ge2e"))
    with pytest.raises(EncryptionKeyError, match="does not authenticate"):
        ring.decrypt(key_id, blob, record_aad(speaker, model))


def test_altered_ciphertext_does_not_open():
    ring = KeyRing([("k1", KEY_A)])
    aad = record_aad("alice", "ge2e")
    key_id, blob = ring.encrypt(b"\x01" * 64, aad)
    for position in (0, len(blob) // 2, len(blob) - 1):  # nonce, body, tag
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(EncryptionKeyError):
            ring.decrypt(key_id, bytes(tampered), aad)


def test_wrong_key_under_the_same_id_does_not_open():
    aad = record_aad("alice", "ge2e")
    key_id, blob = KeyRing([("k1", KEY_A)]).encrypt(b"secret", aad)
    with pytest.raises(EncryptionKeyError, match="'k1'") as info:
        KeyRing([("k1", KEY_B)]).decrypt(key_id, blob, aad)
    assert_no_key_material(str(info.value), KEY_A, KEY_B)


def test_unknown_key_id_names_the_missing_key_and_where_to_add_it():
    aad = record_aad("alice", "ge2e")
    key_id, blob = KeyRing([("k1", KEY_A)]).encrypt(b"secret", aad)
    ring = KeyRing([("k2", KEY_B)], env_name="MY_KEYS")
    with pytest.raises(EncryptionKeyError) as info:
        ring.decrypt(key_id, blob, aad)
    assert "record encrypted with key 'k1' which is not configured; add it to MY_KEYS" in str(info.value)
    assert_no_key_material(str(info.value), KEY_A, KEY_B)


def test_rotation_helpers_keep_old_keys_readable():
    old = KeyRing([("k1", KEY_A)])
    aad = record_aad("alice", "ge2e")
    key_id, blob = old.encrypt(b"payload", aad)
    rotated = old.with_primary("k2", KEY_B)
    assert rotated.primary_id == "k2" and rotated.decrypt(key_id, blob, aad) == b"payload"
    assert rotated.encrypt(b"x", aad)[0] == "k2"
    assert list(rotated.without("k1")) == ["k2"]
    with pytest.raises(EncryptionKeyError, match="no encryption key"):
        old.without("k1")
