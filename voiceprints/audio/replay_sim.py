"""A simulated replay attack: a recording played from a small loudspeaker into a handset, then a call.

Used by the benchmarks and tests of replay detection and of the synthetic-voice
risk. The chain is the one ``shared/notes/models.md`` describes for the
figures measured there, so results stay comparable:

1. the recording at 16 kHz;
2. a small loudspeaker: 2nd-order high-pass at 250 Hz, 4th-order low-pass at 5 kHz;
3. mild saturation, ``tanh(2x) / tanh(2)`` after peak normalisation;
4. a room: convolution with a synthetic impulse response (exponentially
   decaying noise with RT60 drawn from 0.25-0.7 s, a dominant direct path and
   6 early reflections 3-30 ms after it);
5. pinkish background noise at 35 dB SNR;
6. the telephone channel (300-3400 Hz, 8 kHz, G.711 μ-law), and a second μ-law
   pass: the replayed call re-encoded by the attacker's own phone leg.

It is a mild, clean replay: a phone speaker held to a handset or a compressed
recording changes level and spectrum more, which makes detection easier on
those cues and no harder on content.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import ulaw_decode, ulaw_encode
from voiceprints.audio.resample import resample
from voiceprints.audio.telephone import telephone_channel

__all__ = ["room_impulse_response", "simulate_replay", "pink_noise"]

_RATE = 16000
_SPEAKER_HP_HZ = 250.0
_SPEAKER_LP_HZ = 5000.0
_RT60_RANGE_S = (0.25, 0.7)
_REFLECTIONS = 6
_REFLECTION_DELAY_S = (0.003, 0.030)
# Amplitudes relative to the direct path (1.0): reflections off a desk and the
# handset's body are weaker than the direct sound, hence "dominant direct path".
_REFLECTION_GAIN = (0.1, 0.4)
# Energy of the diffuse tail relative to the direct path: 6 dB below it, a
# loudspeaker a few tens of centimetres from the microphone in a small room.
_TAIL_TO_DIRECT = 0.25
_SNR_DB = 35.0


def room_impulse_response(rng: np.random.Generator, rate: int = _RATE) -> np.ndarray:
    rt60 = float(rng.uniform(*_RT60_RANGE_S))
    n = int(rt60 * rate)
    t = np.arange(n) / rate
    # 60 dB of decay over rt60 seconds: amplitude exp(-6.908 t / rt60).
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    tail[: int(_REFLECTION_DELAY_S[0] * rate)] = 0.0  # the diffuse field arrives after the first reflection
    tail *= np.sqrt(_TAIL_TO_DIRECT / max(np.sum(tail ** 2), 1e-12))
    rir = tail
    rir[0] += 1.0
    for _ in range(_REFLECTIONS):
        delay = int(rng.uniform(*_REFLECTION_DELAY_S) * rate)
        rir[delay] += float(rng.uniform(*_REFLECTION_GAIN)) * float(rng.choice([-1.0, 1.0]))
    return rir


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f power spectrum ("pinkish": shaped white noise), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum))
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


def simulate_replay(clip: AudioClip, rng: np.random.Generator) -> AudioClip:
    """``clip`` played through a loudspeaker into a handset and sent over a G.711 call (8 kHz)."""
    x = resample(clip, _RATE).samples.astype(np.float64)
    if len(x) == 0:
        raise ValueError("cannot replay an empty clip")
    x = sosfilt(butter(2, _SPEAKER_HP_HZ, btype="highpass", fs=_RATE, output="sos"), x)
    x = sosfilt(butter(4, _SPEAKER_LP_HZ, btype="lowpass", fs=_RATE, output="sos"), x)
    x = np.tanh(2.0 * x / max(float(np.max(np.abs(x))), 1e-12)) / np.tanh(2.0)
    x = fftconvolve(x, room_impulse_response(rng))[: len(x)]
    signal_rms = float(np.sqrt(np.mean(x ** 2)))
    x = x + pink_noise(len(x), rng) * signal_rms * 10 ** (-_SNR_DB / 20)
    # Back to a sensible level before the codec (a handset's automatic gain control).
    x = 0.5 * x / max(float(np.max(np.abs(x))), 1e-12)
    phone = telephone_channel(AudioClip(x.astype(np.float32), _RATE))
    return AudioClip(ulaw_decode(ulaw_encode(phone.samples)), phone.sample_rate)
