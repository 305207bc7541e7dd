"""Input checks and rate conversion shared by the embedders."""

from __future__ import annotations

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.errors import CorruptAudioError, EmptyAudioError


def samples_at(clip: AudioClip, rate: int) -> np.ndarray:
    """The clip's samples at ``rate`` Hz as contiguous float32, after refusing unusable input.

    Zero-length and non-finite input are refused here rather than deep inside
    a model, where they surface as shape errors or NaN vectors that would be
    stored as a voiceprint.
    """
    if not isinstance(clip, AudioClip):
        raise TypeError(f"expected an AudioClip, got {type(clip).__name__}")
    if len(clip.samples) == 0:
        raise EmptyAudioError("the audio is empty (0 samples); nothing to embed")
    if clip.sample_rate <= 0:
        raise CorruptAudioError(f"invalid sample rate {clip.sample_rate} Hz")
    if not np.all(np.isfinite(clip.samples)):
        raise CorruptAudioError("the audio contains NaN or infinite samples; the decoder produced garbage")
    return np.ascontiguousarray(resample(clip, rate).samples, dtype=np.float32)


def l2_normalised(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (the store and scorers rely on both)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        # A zero or non-finite vector cannot be scored; it would silently
        # become "no match" (or NaN) for every comparison.
        from voiceprints.errors import ModelError

        raise ModelError("the model produced a zero or non-finite embedding for this audio")
    return (matrix / norms).astype(np.float32)
