"""A simulated narrowband telephone line: what a caller's voice goes through on PSTN/SIP.

Benchmarks and tests push clean speech through this to measure how the core
behaves on the audio it will really get from an IVR.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.signal import butter, sosfilt

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voiceprints.audio.resample import resample

__all__ = ["TELEPHONE_RATE", "telephone_channel"]

TELEPHONE_RATE = 8000
# The classic telephone voice band (ITU-T G.712 / G.132): 300-3400 Hz.
_LOW_HZ = 300.0
_HIGH_HZ = 3400.0
# Butterworth of order 4 per edge: ~38 dB down at 100 Hz and steep enough at
# 3.4 kHz, close to the attenuation mask G.712 asks of a real channel, without
# the ringing a higher order or an elliptic design would add.
_ORDER = 4


def telephone_channel(clip: AudioClip, law: Literal["ulaw", "alaw"] = "ulaw") -> AudioClip:
    """``clip`` as it would arrive over a G.711 call: 8 kHz, 300-3400 Hz, μ-law or A-law.

    Order: polyphase resampling to 8 kHz first (its anti-alias filter removes
    everything above 4 kHz), then the band-pass at 8 kHz, then a G.711
    encode/decode round trip, as a handset codec and a gateway would.

    The band-pass is causal (``sosfilt``), not zero-phase: a real line is a
    causal filter with its own phase distortion and group delay, and a
    zero-phase filter would be a channel that does not exist (it rings before
    onsets and squares the magnitude response). The few milliseconds of delay
    do not matter to anything downstream.

    Deterministic: no noise is added, so tests and benchmarks are repeatable.
    """
    if law not in ("ulaw", "alaw"):
        raise ValueError(f"law must be 'ulaw' or 'alaw', got {law!r}")
    narrow = resample(clip, TELEPHONE_RATE)
    if len(narrow.samples) == 0:
        return narrow
    sos = butter(_ORDER, [_LOW_HZ, _HIGH_HZ], btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    banded = sosfilt(sos, narrow.samples.astype(np.float64))
    if law == "ulaw":
        coded = ulaw_decode(ulaw_encode(banded))
    else:
        coded = alaw_decode(alaw_encode(banded))
    return AudioClip(coded, TELEPHONE_RATE)
