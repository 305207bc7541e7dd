"""Sample-rate conversion between the rates callers send and the rates models want."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly

from voiceprints.audio.clip import AudioClip

__all__ = ["resample"]


def resample(clip: AudioClip, rate: int) -> AudioClip:
    """``clip`` at ``rate`` Hz, by polyphase filtering with the exact rational ratio.

    Polyphase (``resample_poly``) rather than FFT resampling: it never wraps
    the end of a clip around to its start, costs O(n) on long calls, and its
    Kaiser-windowed low-pass removes everything above the new Nyquist
    frequency instead of letting it alias into the speech band.
    """
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    if rate == clip.sample_rate:
        return clip
    g = gcd(int(rate), int(clip.sample_rate))
    up, down = int(rate) // g, int(clip.sample_rate) // g
    if len(clip.samples) == 0:
        return AudioClip(np.zeros(0, dtype=np.float32), int(rate))
    out = resample_poly(clip.samples.astype(np.float64), up, down)
    return AudioClip(out.astype(np.float32), int(rate))
