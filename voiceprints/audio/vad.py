"""Which parts of a recording are speech: for net-speech counts, quality checks and trimming.

webrtcvad is small, fast and made for telephone audio, but on its own it
calls almost anything louder than its adaptive noise model speech: white
noise, hum, a noise that just switched on. Every frame therefore has to pass
two more tests before it counts:

* an absolute floor: frame RMS at least ``ABSOLUTE_FLOOR_DBFS``, and
* a relative gate: at least ``NOISE_MARGIN_DB`` above the noise floor, the
  quietest frame of the last ``NOISE_WINDOW_S`` seconds.

Steady noise sits at its own noise floor, so it never clears the relative
gate however "speech-like" webrtcvad finds it; digital silence and a quiet
idle line never clear the absolute floor. Known limits: tones (DTMF,
ringback) and strongly fluctuating noise (traffic, a TV) can still pass;
the quality checks then see a poor SNR rather than clean speech.

The batch :class:`SpeechDetector` and the live :class:`StreamingSpeechCounter`
make exactly the same decision for every frame (the noise floor is causal in
both), so a call flow that stopped at "3 s of speech" is not contradicted by
the verification that follows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.errors import UnsupportedAudioError

__all__ = [
    "ABSOLUTE_FLOOR_DBFS",
    "FrameAnalysis",
    "BACKGROUND_PERCENTILE",
    "NOISE_MARGIN_DB",
    "NOISE_WINDOW_S",
    "SpeechDetector",
    "StreamingSpeechCounter",
    "dilate",
    "frame_energy_db",
    "trailing_noise_floor",
    "true_runs",
]

# A quiet line idles around -65..-70 dBFS (G.711 idle-channel noise), while
# even a caller speaking softly into a handset (speech level at the -45 dBFS
# "too quiet" limit of QualityConfig) has vowel frames at or above -45 dBFS.
# -55 dBFS sits between the two with ~10 dB to spare either way, so quiet
# speech is still found (and reported as too quiet rather than as silence).
ABSOLUTE_FLOOR_DBFS = -55.0
# 6 dB = 4x the noise floor's power. The RMS of a 30 ms frame of steady noise
# varies by well under 1 dB (240+ samples per frame), so steady noise (white
# noise, hum, fans) essentially never reaches its own floor + 6 dB, while
# voiced speech is 15-40 dB above the floor of any line worth using.
NOISE_MARGIN_DB = 6.0
# The noise floor of a frame is the quietest frame of the last 2 s (minimum
# statistics in its simplest form). Speech has a pause, a stop closure or a
# breath at least every second or two, so the minimum lands on the line noise,
# not on speech; and when the background changes (noise switched on, a
# caller walking into a street) the floor catches up within those 2 s, where
# a whole-clip estimate would count the new noise as speech for good. Shorter
# windows reached into continuous speech in our tests; longer ones adapted
# proportionally slower.
NOISE_WINDOW_S = 2.0
# The overall background level reported for a clip: the 5th percentile of
# its frame energies, i.e. its quiet parts, robust to a single silent frame.
BACKGROUND_PERCENTILE = 5.0
# Power below 16-bit quantisation noise (~-101 dBFS) carries no information;
# flooring here keeps logarithms of digital silence finite.
_POWER_FLOOR = 1e-10
_VAD_RATES = (8000, 16000)
_FRAME_MS = (10, 20, 30)  # what webrtcvad accepts


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each row of ``frames`` (float, full scale 1.0) in dB relative to full scale."""
    power = np.mean(np.square(frames.astype(np.float64)), axis=-1)
    return 10.0 * np.log10(np.maximum(power, _POWER_FLOOR))


def trailing_noise_floor(energy_db: np.ndarray, window: int) -> np.ndarray:
    """Per frame, the lowest energy among the last ``window`` frames (itself included).

    Causal on purpose: the live counter can only look back, and the batch
    detector uses exactly the same estimate so that both count the same speech.
    """
    energy_db = np.asarray(energy_db, dtype=np.float64)
    floor = np.minimum.accumulate(energy_db)  # while the window is still filling up
    if len(energy_db) >= window:
        floor[window - 1:] = np.lib.stride_tricks.sliding_window_view(energy_db, window).min(axis=-1)
    return floor


def _gate(vad_says_speech: np.ndarray, energy_db: np.ndarray,
          noise_floor_db: np.ndarray | float) -> np.ndarray:
    return (
        vad_says_speech
        & (energy_db >= ABSOLUTE_FLOOR_DBFS)
        & (energy_db >= noise_floor_db + NOISE_MARGIN_DB)
    )


def _window_frames(frame_ms: int) -> int:
    return max(1, round(NOISE_WINDOW_S * 1000 / frame_ms))


def _check_settings(aggressiveness: int, frame_ms: int) -> None:
    if aggressiveness not in (0, 1, 2, 3):
        raise ValueError(f"VAD aggressiveness must be 0-3, got {aggressiveness}")
    if frame_ms not in _FRAME_MS:
        raise ValueError(f"VAD frame length must be 10, 20 or 30 ms, got {frame_ms}")


@dataclass(frozen=True)
class FrameAnalysis:
    """Per-frame view of a clip: the numbers quality checks need besides the speech mask."""

    frame_s: float
    speech: np.ndarray  # bool per frame
    energy_db: np.ndarray  # frame power, dBFS
    noise_floor_db: np.ndarray  # per frame, the estimate the relative gate used
    analysis_rate: int  # rate the frames were cut at (8000 or 16000)
    aggressiveness: int = -1  # of the webrtcvad that decided (-1: unknown, never reused)

    @property
    def net_speech_s(self) -> float:
        return float(np.count_nonzero(self.speech)) * self.frame_s

    @property
    def frame_count(self) -> int:
        return len(self.speech)

    @property
    def background_db(self) -> float | None:
        """The clip's overall noise level (same percentile, over all frames); None without frames."""
        return float(np.percentile(self.energy_db, BACKGROUND_PERCENTILE)) if len(self.energy_db) else None


class SpeechDetector:
    """Finds speech frames in whole clips (enrolment and verification recordings).

    ``edge_ms`` is how much audio either side of a speech run
    :meth:`speech_only` keeps: webrtcvad decides per frame, and the onset of a
    word (a plosive burst) and its decaying end (a final "s" or nasal) are
    quiet enough to fall just below the gates. 60 ms (two 30 ms frames) keeps
    them, and joins words separated by shorter gaps, without keeping much of
    the pauses.
    """

    def __init__(self, aggressiveness: int = 2, frame_ms: int = 30, *, edge_ms: int = 60) -> None:
        _check_settings(aggressiveness, frame_ms)
        if edge_ms < 0:
            raise ValueError(f"edge_ms must not be negative, got {edge_ms}")
        self.aggressiveness = aggressiveness
        self.frame_ms = frame_ms
        self.edge_ms = edge_ms

    @property
    def frame_s(self) -> float:
        return self.frame_ms / 1000.0

    def analyse(self, clip: AudioClip) -> FrameAnalysis:
        # Other rates go to 16 kHz: webrtcvad works at 8 kHz inside anyway, and
        # the energy gate still sees the 4-8 kHz band where fricatives live.
        vad_clip = clip if clip.sample_rate in _VAD_RATES else resample(clip, 16000)
        rate = vad_clip.sample_rate
        frame_len = rate * self.frame_ms // 1000
        count = len(vad_clip.samples) // frame_len
        if count == 0:
            empty = np.zeros(0, dtype=bool)
            return FrameAnalysis(self.frame_s, empty, np.zeros(0), np.zeros(0), rate, self.aggressiveness)
        pcm = AudioClip(vad_clip.samples[: count * frame_len], rate).to_pcm16()
        # Energies from the same 16-bit samples webrtcvad sees, computed as the
        # streaming counter computes them, so both decide identically.
        frames = np.frombuffer(pcm, dtype="<i2").reshape(count, frame_len) / 32768.0
        energy = frame_energy_db(frames)
        # A fresh Vad per clip: its adaptive state must not leak from one call into the next.
        vad = webrtcvad.Vad(self.aggressiveness)
        step = frame_len * 2
        flags = np.fromiter(
            (vad.is_speech(pcm[i * step:(i + 1) * step], rate) for i in range(count)), dtype=bool, count=count
        )
        floor = trailing_noise_floor(energy, _window_frames(self.frame_ms))
        return FrameAnalysis(self.frame_s, _gate(flags, energy, floor), energy, floor, rate, self.aggressiveness)

    def speech_mask(self, clip: AudioClip) -> np.ndarray:
        """One bool per ``frame_ms`` frame: True where the frame is speech."""
        return self.analyse(clip).speech

    def net_speech_seconds(self, clip: AudioClip) -> float:
        """Seconds of speech frames, without the edges :meth:`speech_only` adds."""
        return self.analyse(clip).net_speech_s

    def analysis_of(self, clip: AudioClip, known: FrameAnalysis | None = None) -> FrameAnalysis:
        """``known`` when it is this detector's analysis of ``clip`` (e.g. the live call's), else analyse now."""
        if known is not None and self.matches(known, clip):
            return known
        return self.analyse(clip)

    def matches(self, analysis: FrameAnalysis, clip: AudioClip) -> bool:
        """Whether ``analysis`` is what :meth:`analyse` gives for ``clip`` (same framing, rate and length)."""
        return (analysis.aggressiveness == self.aggressiveness and analysis.frame_s == self.frame_s
                and analysis.analysis_rate == clip.sample_rate
                and analysis.frame_count == len(clip.samples) // (clip.sample_rate * self.frame_ms // 1000))

    def speech_only(self, clip: AudioClip, analysis: FrameAnalysis | None = None) -> AudioClip:
        """The speech of ``clip`` with pauses cut out, at the clip's own rate (empty if none).

        ``analysis``: this clip's analysis when the caller already has it (no second VAD pass).
        """
        speech = (analysis or self.analyse(clip)).speech
        mask = dilate(speech, math.ceil(self.edge_ms / self.frame_ms))
        starts, ends = true_runs(mask)
        per_frame = clip.sample_rate * self.frame_s
        pieces = [clip.samples[round(s * per_frame):round(e * per_frame)] for s, e in zip(starts, ends)]
        if not pieces:
            return AudioClip(np.zeros(0, dtype=np.float32), clip.sample_rate)
        return AudioClip(np.concatenate(pieces), clip.sample_rate)


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of every run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def dilate(mask: np.ndarray, frames: int) -> np.ndarray:
    """``mask`` grown by ``frames`` on both sides of every True run."""
    if frames <= 0 or not mask.any():
        return mask.copy()
    kernel = np.ones(2 * frames + 1)
    return np.convolve(mask.astype(float), kernel, mode="same") > 0


class StreamingSpeechCounter:
    """Counts a live caller's speech as the audio arrives, so the call flow knows when to stop.

    Feed it signed 16-bit little-endian PCM in chunks of any size (Asterisk
    AudioSocket sends 20 ms, 320 bytes at 8 kHz); partial frames wait for the
    next chunk. Each frame gets the batch :class:`SpeechDetector`'s decision,
    with the same causal noise floor, so the two agree frame for frame on
    8 and 16 kHz audio. As in the batch detector, a frame only counts once a
    quieter frame has been heard before it: a recording that starts mid-word
    loses its first frame or two; callers answering a prompt pause first.

    Everything pushed is kept for :meth:`audio`; at 8 kHz that is 16 kB per
    second, so bound the recording in the call flow, not here.
    """

    def __init__(self, sample_rate: int = 8000, *, aggressiveness: int = 2, frame_ms: int = 30) -> None:
        _check_settings(aggressiveness, frame_ms)
        if sample_rate not in _VAD_RATES:
            raise UnsupportedAudioError(
                f"live speech counting needs 8000 or 16000 Hz signed-linear audio, got {sample_rate} Hz"
            )
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.aggressiveness = aggressiveness
        self._frame_bytes = 2 * sample_rate * frame_ms // 1000
        self._vad = webrtcvad.Vad(aggressiveness)
        # Per frame, what the batch analysis would hold: the engine reuses it instead of a second pass.
        self._speech: list[bool] = []
        self._energy: list[float] = []
        self._floor: list[float] = []
        self._energies: deque[float] = deque(maxlen=_window_frames(frame_ms))
        self._chunks: list[bytes] = []
        self._pending = bytearray()
        self._pushed_bytes = 0
        self._frames = 0
        self._speech_frames = 0
        self._frames_since_speech = 0

    def push(self, pcm16: bytes | bytearray | memoryview) -> None:
        data = bytes(pcm16)
        if not data:
            return
        self._chunks.append(data)
        self._pushed_bytes += len(data)
        self._pending.extend(data)
        while len(self._pending) >= self._frame_bytes:
            frame = bytes(self._pending[: self._frame_bytes])
            del self._pending[: self._frame_bytes]
            self._process(frame)

    def _process(self, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64) / 32768.0
        energy = float(frame_energy_db(samples))
        self._energies.append(energy)
        floor = min(self._energies)
        vad_flag = self._vad.is_speech(frame, self.sample_rate)
        is_speech = bool(_gate(np.array([vad_flag]), np.array([energy]), floor)[0])
        self._speech.append(is_speech)
        self._energy.append(energy)
        self._floor.append(floor)
        self._frames += 1
        if is_speech:
            self._speech_frames += 1
            self._frames_since_speech = 0
        else:
            self._frames_since_speech += 1

    @property
    def frame_s(self) -> float:
        return self.frame_ms / 1000.0

    @property
    def net_speech_s(self) -> float:
        return self._speech_frames * self.frame_s

    @property
    def total_s(self) -> float:
        """Seconds of audio pushed so far, including a partial frame still waiting."""
        return (self._pushed_bytes // 2) / self.sample_rate

    @property
    def trailing_silence_s(self) -> float:
        """Seconds since the last speech frame ended (since the start if nobody has spoken yet)."""
        return self._frames_since_speech * self.frame_s

    def audio(self) -> AudioClip:
        data = b"".join(self._chunks)
        return AudioClip.from_pcm16(data[: len(data) - len(data) % 2], self.sample_rate)

    def analysis(self) -> FrameAnalysis:
        """The frames heard so far as :meth:`SpeechDetector.analyse` gives them for :meth:`audio`."""
        return FrameAnalysis(self.frame_s, np.array(self._speech, dtype=bool), np.array(self._energy),
                             np.array(self._floor), self.sample_rate, self.aggressiveness)
