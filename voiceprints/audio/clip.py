"""The one audio value that flows through the core."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class AudioClip:
    """Mono audio as float32 samples in [-1, 1] at ``sample_rate`` Hz.

    Float32 everywhere inside the core keeps codecs, VAD and embedders from
    each guessing the scale of integer PCM.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"AudioClip needs mono samples, got shape {samples.shape}")
        samples.setflags(write=False)
        object.__setattr__(self, "samples", samples)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    @classmethod
    def from_pcm16(cls, pcm: bytes | np.ndarray, sample_rate: int) -> "AudioClip":
        """From signed 16-bit little-endian PCM (what AudioSocket and most telephony stacks carry)."""
        data = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
        return cls(np.asarray(data, dtype=np.float32) / 32768.0, sample_rate)

    def to_pcm16(self) -> bytes:
        return (np.clip(self.samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()

    @staticmethod
    def concatenate(clips: "list[AudioClip]") -> "AudioClip":
        if not clips:
            raise ValueError("nothing to concatenate")
        rates = {c.sample_rate for c in clips}
        if len(rates) != 1:
            raise ValueError(f"cannot concatenate clips at different rates {sorted(rates)}")
        return AudioClip(np.concatenate([c.samples for c in clips]), clips[0].sample_rate)
