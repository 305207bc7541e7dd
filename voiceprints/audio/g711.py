"""G.711 μ-law and A-law, bit-exact with the ITU-T reference implementation.

Telephone audio reaches us as G.711 bytes (Asterisk recordings, RTP, Twilio
media streams), and the benchmarks push clean speech through the same codec,
so encoding and decoding must match what a real network does. ``audioop`` is
gone in Python 3.13, and it follows the old Sun Microsystems code, whose μ-law
encoder puts every negative decision threshold one 14-bit step away from the
ITU-T G.191 reference (``ulaw_compress``): -1 becomes 0x7E there instead of
the G.711 "negative zero" 0x7F. These functions follow G.191 exactly, so a
sample and its one's complement (x, ~x) always differ only in the sign bit,
which is the symmetry the G.711 tables are built on.

Everything is vectorised numpy over whole buffers: a 10-minute call is ~5
million samples, and a per-sample Python loop would take seconds.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "alaw_decode",
    "alaw_decode_pcm16",
    "alaw_encode",
    "alaw_encode_pcm16",
    "float_to_pcm16",
    "ulaw_decode",
    "ulaw_decode_pcm16",
    "ulaw_encode",
    "ulaw_encode_pcm16",
]


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16, rounding to the nearest step.

    Rounding (not truncation) halves the extra quantisation error before the
    codec adds its own; values that came from int16 (k / 32768) map back to
    exactly k either way, so round trips stay exact.
    """
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Number of significant bits of non-negative ints (0 -> 0), exact below 2**53."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int32)


# --- μ-law --------------------------------------------------------------------
def ulaw_encode_pcm16(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> μ-law codes (uint8), as G.191 ``ulaw_compress``."""
    x = np.asarray(pcm).astype(np.int32)
    # 14 most significant bits; one's complement for negatives (G.191), plus
    # 33, the offset between the A-law and μ-law decision thresholds.
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = 1 + _bit_length(absno >> 6)  # 1..8, Table 2/G.711
    high_nibble = 8 - segno
    low_nibble = 0x0F - ((absno >> segno) & 0x0F)
    code = (high_nibble << 4) | low_nibble
    code = np.where(x >= 0, code | 0x80, code)
    return code.astype(np.uint8)


def ulaw_decode_pcm16(codes: np.ndarray) -> np.ndarray:
    """μ-law codes -> int16 samples, as G.191 ``ulaw_expand`` (14 bits, left-justified)."""
    c = np.asarray(codes).astype(np.int32) & 0xFF
    sign = np.where(c < 0x80, -1, 1)
    inverted = ~c
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return (sign * magnitude).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> μ-law bytes (one byte per sample)."""
    return ulaw_encode_pcm16(float_to_pcm16(samples)).tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> np.ndarray:
    """μ-law bytes -> float32 samples in [-1, 1]."""
    codes = np.frombuffer(data, dtype=np.uint8)
    return (ulaw_decode_pcm16(codes).astype(np.float32) / np.float32(32768.0)).astype(np.float32)


# --- A-law --------------------------------------------------------------------
def alaw_encode_pcm16(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> A-law codes (uint8), as G.191 ``alaw_compress``."""
    x = np.asarray(pcm).astype(np.int32)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)  # 12 MSBs of the magnitude, 0..2047
    # Segments above the first: exponent from the position of the leading 1,
    # mantissa the four bits after it (G.191 does this with a shift loop).
    exponent = np.maximum(_bit_length(ix) - 4, 1)
    mantissa = (ix >> (exponent - 1)) - 16
    code = np.where(ix > 15, mantissa + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)  # toggle the even bits


def alaw_decode_pcm16(codes: np.ndarray) -> np.ndarray:
    """A-law codes -> int16 samples, as G.191 ``alaw_expand`` (13 bits, left-justified)."""
    c = np.asarray(codes).astype(np.int32) & 0xFF
    ix = (c ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)  # leading 1 above segment 0
    mantissa = (mantissa << 4) + 0x08  # left-justify and add half a step
    magnitude = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(c > 127, magnitude, -magnitude).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> A-law bytes (one byte per sample)."""
    return alaw_encode_pcm16(float_to_pcm16(samples)).tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> np.ndarray:
    """A-law bytes -> float32 samples in [-1, 1]."""
    codes = np.frombuffer(data, dtype=np.uint8)
    return (alaw_decode_pcm16(codes).astype(np.float32) / np.float32(32768.0)).astype(np.float32)
