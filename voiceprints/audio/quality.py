"""Per-clip quality report: is this audio good enough to enrol or verify with?"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import FrameAnalysis, SpeechDetector, dilate, true_runs
from voiceprints.config import QualityConfig
from voiceprints.errors import EmptyAudioError, PoorQualityError, SilentAudioError, TooLittleSpeechError


class QualityProblem(str, enum.Enum):
    """What is wrong, in terms a prompt can turn into advice to the caller."""

    SILENT = "silent"  # no speech at all: "we could not hear you"
    TOO_SHORT = "too_short"  # "please speak a little longer"
    TOO_QUIET = "too_quiet"  # "please speak a little louder"
    TOO_NOISY = "too_noisy"  # "please call from somewhere quieter"
    CLIPPED = "clipped"  # "please hold the phone a little further away"


@dataclass(frozen=True)
class QualityReport:
    duration_s: float
    net_speech_s: float
    snr_db: float | None  # None when there is no non-speech to estimate noise from
    clipping_ratio: float
    speech_level_dbfs: float | None
    problems: tuple[QualityProblem, ...] = ()
    reasons: tuple[str, ...] = ()  # one human sentence per problem, with numbers

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "duration_s": round(self.duration_s, 3),
            "net_speech_s": round(self.net_speech_s, 3),
            "snr_db": None if self.snr_db is None else round(self.snr_db, 1),
            "clipping_ratio": round(self.clipping_ratio, 5),
            "speech_level_dbfs": None if self.speech_level_dbfs is None else round(self.speech_level_dbfs, 1),
            "ok": self.ok,
            "problems": [p.value for p in self.problems],
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "QualityReport":
        """The report back from :meth:`to_dict` (evaluation caches reports next to embeddings)."""
        def num(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)  # type: ignore[arg-type]

        return cls(
            duration_s=float(data["duration_s"]),  # type: ignore[arg-type]
            net_speech_s=float(data["net_speech_s"]),  # type: ignore[arg-type]
            snr_db=num("snr_db"),
            clipping_ratio=float(data["clipping_ratio"]),  # type: ignore[arg-type]
            speech_level_dbfs=num("speech_level_dbfs"),
            problems=tuple(QualityProblem(p) for p in data.get("problems", ())),  # type: ignore[union-attr]
            reasons=tuple(str(r) for r in data.get("reasons", ())),  # type: ignore[union-attr]
        )


# --- assessment ------------------------------------------------------------
# A sample this close to full scale counts as clipped. Not 0.99: the largest
# G.711 values decode to 0.980 (μ-law, 32124/32768) and 0.984 (A-law), so a
# clipped caller on a telephone line never reaches 0.99. The next μ-law level
# down is 0.949, so genuine peaks just below the rail are not mistaken for it.
CLIP_LEVEL = 0.975
# Same floor as the VAD's: power below 16-bit quantisation noise is taken as
# that noise, so the SNR of audio with digitally silent pauses stays finite.
_POWER_FLOOR = 1e-10
# A noise floor this loud is as loud as normal speech on a phone line
# (-20..-30 dBFS), so "no speech" may mean "speech we could not pick out";
# the reason says so, and the operator is not left guessing.
_LOUD_NOISE_DBFS = -35.0


def ensure_not_empty(clip: AudioClip) -> None:
    """Zero-length audio is a caller or integration error, not a quality verdict."""
    if len(clip.samples) == 0:
        raise EmptyAudioError("the recording is empty (0 samples); nothing was captured")


def assess(clip: AudioClip, config: QualityConfig, *, min_speech_s: float | None = None,
           detector: SpeechDetector | None = None, analysis: FrameAnalysis | None = None) -> QualityReport:
    """Measure ``clip`` and say what, if anything, makes it unfit for enrolment or verification.

    ``min_speech_s`` is the net speech the caller's purpose needs (enrolment
    and verification need different amounts); None skips that check.
    Raises :class:`EmptyAudioError` for zero-length audio.
    """
    ensure_not_empty(clip)
    detector = detector or SpeechDetector(config.vad_aggressiveness)
    frames = analysis if analysis is not None else detector.analyse(clip)
    speech = frames.speech
    power = np.power(10.0, frames.energy_db / 10.0)
    net_speech_s = frames.net_speech_s

    clipped = np.abs(clip.samples) >= CLIP_LEVEL
    if speech.any():
        # Clipping is a property of the speech, so judge it over the speech:
        # long silences must not dilute a badly overdriven voice.
        region = _frames_to_samples(speech, frames.frame_s, clip.sample_rate, len(clip.samples))
        clipped &= region
        clipping_ratio = float(np.count_nonzero(clipped)) / max(1, int(np.count_nonzero(region)))
        speech_power = float(np.mean(power[speech]))
        speech_level_dbfs: float | None = 10.0 * np.log10(max(speech_power, _POWER_FLOOR))
        # Noise from frames that are neither speech nor next to it: a word's
        # onset and tail are in those neighbours and would inflate the noise.
        # The median, not the mean: a soft syllable the gates left out must
        # not pass for loud background noise.
        quiet = ~dilate(speech, 1)
        if quiet.any():
            noise_power = max(float(np.median(power[quiet])), _POWER_FLOOR)
            # Speech frames hold speech plus noise; subtract the noise to get the speech alone.
            clean_power = max(speech_power - noise_power, _POWER_FLOOR)
            snr_db: float | None = 10.0 * np.log10(clean_power / noise_power)
        else:
            snr_db = None
    else:
        clipping_ratio = float(np.count_nonzero(clipped)) / len(clip.samples)
        speech_level_dbfs = None
        snr_db = None

    clipped_runs = len(true_runs(clipped)[0])  # places where the waveform hit the rail
    problems: list[QualityProblem] = []
    reasons: list[str] = []
    if not speech.any():
        problems.append(QualityProblem.SILENT)
        reason = f"no speech detected in {clip.duration_s:.1f} s of audio"
        background = frames.background_db
        if background is not None and background >= _LOUD_NOISE_DBFS:
            reason += f" (background noise at {background:.0f} dBFS may be drowning it)"
        reasons.append(reason)
    else:
        if min_speech_s is not None and net_speech_s < min_speech_s:
            problems.append(QualityProblem.TOO_SHORT)
            # Rounded down, so 2.97 s never reads as "only 3.0 s; need 3.0 s".
            reasons.append(f"only {math.floor(net_speech_s * 10) / 10:.1f} s of speech; need {min_speech_s:.1f} s")
        if clipping_ratio > config.max_clipping_ratio:
            problems.append(QualityProblem.CLIPPED)
            reasons.append(
                f"{_percent(clipping_ratio)} of speech samples clipped in {clipped_runs} places "
                f"(limit {config.max_clipping_ratio * 100:g} %)"
            )
        if snr_db is not None and snr_db < config.min_snr_db:
            problems.append(QualityProblem.TOO_NOISY)
            reasons.append(f"SNR {snr_db:.1f} dB (need {config.min_snr_db:g} dB)")
        if speech_level_dbfs is not None and speech_level_dbfs < config.min_speech_level_dbfs:
            problems.append(QualityProblem.TOO_QUIET)
            reasons.append(
                f"speech level {speech_level_dbfs:.0f} dBFS is too quiet "
                f"(need {config.min_speech_level_dbfs:g} dBFS)"
            )
    return QualityReport(
        duration_s=clip.duration_s,
        net_speech_s=net_speech_s,
        snr_db=None if snr_db is None else float(snr_db),
        clipping_ratio=clipping_ratio,
        speech_level_dbfs=None if speech_level_dbfs is None else float(speech_level_dbfs),
        problems=tuple(problems),
        reasons=tuple(reasons),
    )


def require_usable(report: QualityReport, *, min_speech_s: float | None = None) -> None:
    """Raise the typed error for the most basic problem in ``report``; do nothing if it is ok.

    Silence first, then too little speech (the caller should simply say
    more), then everything else as :class:`PoorQualityError`. The message
    carries every reason, so nothing is hidden behind the first one. Pass the
    ``min_speech_s`` given to :func:`assess` to fill
    :attr:`TooLittleSpeechError.required_s`.
    """
    if report.ok:
        return
    message = "; ".join(report.reasons)
    if QualityProblem.SILENT in report.problems:
        raise SilentAudioError(message)
    if QualityProblem.TOO_SHORT in report.problems:
        raise TooLittleSpeechError(message, net_speech_s=report.net_speech_s, required_s=min_speech_s or 0.0)
    raise PoorQualityError(message)


def _frames_to_samples(mask: np.ndarray, frame_s: float, sample_rate: int, length: int) -> np.ndarray:
    region = np.zeros(length, dtype=bool)
    per_frame = frame_s * sample_rate
    for start, end in zip(*true_runs(mask)):
        region[round(start * per_frame):round(end * per_frame)] = True
    return region


def _percent(ratio: float) -> str:
    value = ratio * 100
    return f"{value:.0f} %" if value >= 10 else f"{value:.1f} %"
