"""Compact fingerprints of authentication audio: signs of the spectral slope, frame by frame.

A replayed recording is the *same* signal as an earlier call played again:
frame for frame, its spectrum rises and falls across frequency exactly as
the original's did, however a loudspeaker, a room and a codec colour it. A
genuine caller saying the same words again never reproduces that pattern
frame for frame: timing, pitch and articulation all move.

Each 8 ms frame of the 300-3400 Hz band is summarised in 22 bits: whether the
log energy of mel band *b* (mean-normalised over the clip, which removes any
fixed colouring of the channel, loudspeaker or room) is above or below that
of band *b* + 2. Spectral-peak landmarks (the classic "Shazam" hashes) were
measured first and did not survive the simulated room: its early reflections
comb-filter the spectrum and move the peaks (a replay matched only 6 % of its
landmarks). Band-energy slopes over 24 mel bands average the ripple out
(scripts/bench_attacks.py has the figures).

What is kept is one bit per band pair per frame and an activity bit per
frame: no level, no pitch, no phase. It identifies a recording, not a voice,
and is not meant to be turned back into sound; it still derives from a call,
so the store encrypts it and retention deletes it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.liveness.features import mel_filterbank

__all__ = ["FINGERPRINT_VERSION", "FRAME_S", "Fingerprint", "fingerprint"]

FINGERPRINT_VERSION = 1
_RATE = 8000
# 32 ms windows every 8 ms.
_NFFT = 256
_HOP = 64
FRAME_S = _HOP / _RATE
# Compare band b with band b + 2 (a 2-band step followed the envelope better
# than adjacent bands, which differ by little and flip on noise), after a
# 3-frame (24 ms) moving average that steadies the bits against noise.
_BAND_STEP = 2
_SMOOTH = 3
# Frames more than 40 dB below the loudest frame are pauses: they carry no
# bits worth comparing (their "slope" is line noise).
_ACTIVE_RANGE_DB = 40.0
_LOG_FLOOR = 1e-10
_MAGIC = b"VAFP"
_HEADER = struct.Struct("<BIHf")  # version, frames, bits per frame, duration


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """``bits[t, b]``: spectrum falls from band b to b+2 in frame t; ``active[t]``: frame t is not a pause."""

    bits: np.ndarray  # (frames, n_bits) bool
    active: np.ndarray  # (frames,) bool
    duration_s: float

    def __len__(self) -> int:
        return len(self.active)

    @property
    def active_s(self) -> float:
        return float(np.count_nonzero(self.active)) * FRAME_S

    def to_bytes(self) -> bytes:
        frames, width = self.bits.shape
        header = _MAGIC + _HEADER.pack(FINGERPRINT_VERSION, frames, width, self.duration_s)
        packed = np.packbits(np.hstack([self.bits, self.active[:, None]]).astype(np.uint8), axis=None)
        return header + packed.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        start = len(_MAGIC) + _HEADER.size
        if len(data) < start or data[: len(_MAGIC)] != _MAGIC:
            raise ValueError("not a voiceauth replay fingerprint")
        version, frames, width, duration = _HEADER.unpack(data[len(_MAGIC): start])
        if version != FINGERPRINT_VERSION:
            raise ValueError(f"replay fingerprint version {version} is not supported (expected {FINGERPRINT_VERSION})")
        total = frames * (width + 1)
        if len(data) - start != (total + 7) // 8:
            raise ValueError(f"replay fingerprint of {frames} frames is {len(data)} bytes, which does not fit")
        flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8, offset=start), count=total).astype(bool)
        table = flat.reshape(frames, width + 1)
        return cls(table[:, :width].copy(), table[:, width].copy(), float(duration))


def _log_mel(x: np.ndarray) -> np.ndarray:
    count = 1 + (len(x) - _NFFT) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, _NFFT)[::_HOP][:count] * np.hanning(_NFFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.log(power @ mel_filterbank().T + _LOG_FLOOR)


def fingerprint(clip: AudioClip) -> Fingerprint:
    """The fingerprint of ``clip`` (any rate; analysed at 8 kHz, as a phone call carries it)."""
    x = resample(clip, _RATE).samples.astype(np.float64)
    duration = len(x) / _RATE
    width = mel_filterbank().shape[0] - _BAND_STEP
    if len(x) < _NFFT:
        return Fingerprint(np.zeros((0, width), bool), np.zeros(0, bool), duration)
    energy = _log_mel(x)
    kernel = np.ones(_SMOOTH) / _SMOOTH
    energy = np.apply_along_axis(lambda band: np.convolve(band, kernel, mode="same"), 0, energy)
    loudness = energy.max(axis=1)
    # Natural-log units: 40 dB is a factor 10^4 in power, ln(10^4) = 9.21.
    active = loudness > loudness.max() - _ACTIVE_RANGE_DB * np.log(10) / 10
    if not active.any():
        return Fingerprint(np.zeros((len(energy), width), bool), active, duration)
    centred = energy - energy[active].mean(axis=0)
    bits = (centred[:, :-_BAND_STEP] - centred[:, _BAND_STEP:]) > 0
    return Fingerprint(bits, active, duration)
