"""MFCC features of narrowband speech, for matching spoken digits against a caller's own templates.

Written out in numpy (a few dozen lines) rather than taken from a library so
that templates made at enrolment and features computed years later in a call
are computed by exactly the same code: a template is only comparable with
features of the same definition, and ``FEATURE_VERSION`` names it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.fft import dct, rfft

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample

__all__ = ["FEATURE_RATE", "FEATURE_VERSION", "HOP_S", "level", "mfcc", "normalise"]

# Version of the feature definition; stored with every template set. Changing
# any constant below changes the features, so it must change this too.
FEATURE_VERSION = "mfcc13d-v1"
# Everything is computed at the telephone rate: enrolment and challenge audio
# both come from the phone line, and wideband audio is brought down to it.
FEATURE_RATE = 8000
# 25 ms windows every 10 ms: the usual speech-recognition framing (a digit of
# 0.3-0.6 s is 30-60 frames, enough for DTW to follow its phones).
_WIN = 200
_HOP = 80
HOP_S = _HOP / FEATURE_RATE
_NFFT = 256
# 24 mel bands over the telephone band (300-3400 Hz, with a little margin):
# nothing below 250 Hz or above 3600 Hz survives a G.711 call.
_N_MELS = 24
_F_LOW = 250.0
_F_HIGH = 3600.0
# c1..c12 (c0, the level, is left out: it follows the caller's distance from
# the handset, not the digit), plus their deltas over +-2 frames.
_N_CEPS = 12
_DELTA_N = 2
_PREEMPHASIS = 0.97
_LOG_FLOOR = 1e-8


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(24, 129) triangular mel filters over 250-3600 Hz for a 256-point FFT at 8 kHz."""
    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(_F_LOW), to_mel(_F_HIGH), _N_MELS + 2))
    bins = np.fft.rfftfreq(_NFFT, 1.0 / FEATURE_RATE)
    bank = np.zeros((_N_MELS, len(bins)))
    for i in range(_N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - lo) / (mid - lo)
        falling = (hi - bins) / (hi - mid)
        bank[i] = np.maximum(0.0, np.minimum(rising, falling))
    return bank


def _deltas(feats: np.ndarray) -> np.ndarray:
    n = _DELTA_N
    padded = np.pad(feats, ((n, n), (0, 0)), mode="edge")
    num = sum(k * (padded[n + k: len(feats) + n + k] - padded[n - k: len(feats) + n - k]) for k in range(1, n + 1))
    return num / (2.0 * sum(k * k for k in range(1, n + 1)))


def mfcc(clip: AudioClip) -> np.ndarray:
    """(frames, 24) float32: 12 cepstra and their deltas, one row per 10 ms; (0, 24) if too short."""
    audio = resample(clip, FEATURE_RATE).samples.astype(np.float64)
    if len(audio) < _WIN:
        return np.zeros((0, 2 * _N_CEPS), dtype=np.float32)
    audio = np.append(audio[0], audio[1:] - _PREEMPHASIS * audio[:-1])
    count = 1 + (len(audio) - _WIN) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(audio, _WIN)[::_HOP][:count] * np.hamming(_WIN)
    power = np.abs(rfft(frames, _NFFT)) ** 2
    logmel = np.log(np.maximum(power @ mel_filterbank().T, _LOG_FLOOR))
    ceps = dct(logmel, type=2, norm="ortho", axis=1)[:, 1: _N_CEPS + 1]
    return np.hstack([ceps, _deltas(ceps)]).astype(np.float32)


def normalise(feats: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Cepstral mean and variance normalisation with given statistics (see ``DigitTemplates``)."""
    return ((feats - mean) / std).astype(np.float32)


# Loudest 30 ms frame brought to -15 dBFS before speech is looked for: the
# VAD's absolute floor (-55 dBFS) is meant for telephone levels, and a quiet
# caller's digits (FSDD speaker "theo": -45 dBFS RMS) would otherwise lose
# their softer parts. At most +30 dB, and nothing is done to a clip whose
# loudest frame is below -75 dBFS (an idle line: there is nothing to find).
_TARGET_PEAK_DBFS = -15.0
_MAX_GAIN_DB = 30.0
_SILENCE_DBFS = -75.0


def level(clip: AudioClip) -> AudioClip:
    """``clip`` with its loudest 30 ms frame at -15 dBFS (MFCCs without c0 do not change; the VAD does)."""
    frame = clip.sample_rate * 30 // 1000
    n = len(clip.samples) // frame
    if n == 0:
        return clip
    power = np.mean(np.square(clip.samples[: n * frame].astype(np.float64).reshape(n, frame)), axis=1)
    peak_db = 10.0 * np.log10(max(float(power.max()), 1e-12))
    if peak_db < _SILENCE_DBFS:
        return clip
    gain_db = min(_MAX_GAIN_DB, _TARGET_PEAK_DBFS - peak_db)
    return AudioClip(np.clip(clip.samples * 10 ** (gain_db / 20), -1.0, 1.0), clip.sample_rate)
