"""Did the caller say the digits they were asked? Checked against their own digit templates.

The answer's speech is aligned by connected-word DTW (:mod:`.dtw`) two ways:
forced to the asked string, and free among all strings of the same length.
The *margin* is how much worse, per frame, the asked string explains the
audio than the best string does: 0 when the best string is the asked one,
small when one digit was uncertain, large for another string or other
speech. Tolerating a small margin is what lets a genuine caller through when
one digit of five sounds a little off, without letting a different string
through (see the README's liveness table for the measured trade-off).

The margin alone would let other speech through: when the audio is not
digits at all, every string explains it equally badly. So the forced
alignment must also be plausible in time: no digit may last more than
``max_stretch`` times the caller's own template of it (genuine answers on
FSDD: 99th percentile 2.9x; read sentences: median 6x).

Language-independent: the templates are the caller's own words for the
digits. Synchronous and CPU-only (a few tens of ms): run it on the engine's
executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import SpeechDetector
from voiceprints.config import LivenessConfig
from voiceprints.liveness.dtw import align_forced, decode_length
from voiceprints.liveness.features import FEATURE_VERSION, HOP_S, level, mfcc
from voiceprints.liveness.templates import DIGITS, DigitTemplates

__all__ = ["DigitStringVerifier", "LivenessResult"]

# Less speech than 0.2 s per asked digit cannot contain the digits.
_MIN_SPEECH_PER_DIGIT_S = 0.2


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    asked: str
    heard: str  # the best string of the asked length ("" when nothing usable was heard)
    margin: float | None  # per-frame cost of the asked string above the best one; None when not scored
    max_margin: float
    reason: str
    latency_ms: float = 0.0
    stretch: float | None = None  # longest digit of the forced alignment over its template's length
    # Cosines of the answer's voice with the voiceprint and with the call's earlier voice sample
    # (voiceprints.liveness.binding); None when not checked.
    voice_score: float | None = None
    continuity: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "asked": self.asked, "heard": self.heard,
                "margin": None if self.margin is None else round(self.margin, 4),
                "max_margin": self.max_margin, "stretch": None if self.stretch is None else round(self.stretch, 2),
                "voice_score": None if self.voice_score is None else round(self.voice_score, 3),
                "continuity": None if self.continuity is None else round(self.continuity, 3),
                "reason": self.reason, "latency_ms": round(self.latency_ms, 1)}


class DigitStringVerifier:
    def __init__(self, max_margin: float, max_stretch: float = 5.0, detector: SpeechDetector | None = None) -> None:
        if max_margin < 0:
            raise ValueError(f"max_margin must not be negative, got {max_margin}")
        if max_stretch < 1:
            raise ValueError(f"max_stretch must be at least 1, got {max_stretch}")
        self.max_margin = float(max_margin)
        self.max_stretch = float(max_stretch)
        # 10 ms frames with 30 ms edges: pauses between digits are cut out,
        # word onsets and endings kept (the templates are trimmed the same way).
        self.detector = detector or SpeechDetector(2, 10, edge_ms=30)

    @classmethod
    def from_config(cls, config: LivenessConfig) -> DigitStringVerifier:
        return cls(config.max_margin, config.max_stretch)

    def verify(self, templates: DigitTemplates, clip: AudioClip, asked: str) -> LivenessResult:
        started = time.perf_counter()
        if not asked or any(ch not in DIGITS for ch in asked):
            raise ValueError(f"the asked string must be digits 0-9, got {asked!r}")
        if templates.feature_version != FEATURE_VERSION:
            return self._result(False, asked, "", None, started,
                                f"digit templates were made with features {templates.feature_version}, "
                                f"this engine computes {FEATURE_VERSION}: the caller must record the digits again")
        speech = self.detector.speech_only(level(clip))
        needed = _MIN_SPEECH_PER_DIGIT_S * len(asked)
        if speech.duration_s < needed:
            return self._result(False, asked, "", None, started,
                                f"only {speech.duration_s:.1f} s of speech; {len(asked)} digits need at least "
                                f"{needed:.1f} s")
        feats = templates.normalise(mfcc(speech))
        if len(feats) * HOP_S < needed:
            return self._result(False, asked, "", None, started, "too little speech to hear the digits")
        seqs, labels = templates.sequences, templates.labels
        forced = align_forced(feats, seqs, labels, asked)
        best = decode_length(feats, seqs, labels, len(asked))
        if forced is None or best is None:  # cannot happen with >= 1 frame per word, but say so if it does
            return self._result(False, asked, "", None, started, "the answer is too short for the digits asked")
        margin = max(0.0, (forced.cost - best.cost) / len(feats))
        heard = best.labels
        # How far the forced alignment had to stretch a template: the DTW lets a word last any
        # time, so other speech can be "explained" by a few digits drawn out over seconds.
        stretch = max((w.end - w.start) / len(seqs[w.template]) for w in forced.words)
        if stretch > self.max_stretch:
            return self._result(False, asked, heard, margin, started,
                                f"not the asked digits: one would have lasted {stretch:.1f} times as long as the "
                                f"caller's own (more than {self.max_stretch:.1f}); other speech or a long pause",
                                stretch)
        if margin <= self.max_margin:
            why = ("heard the digits asked" if heard == asked
                   else f"heard {heard}, close enough to {asked} (margin {margin:.3f} <= {self.max_margin:.3f})")
            return self._result(True, asked, heard, margin, started, why, stretch)
        return self._result(False, asked, heard, margin, started,
                            f"heard {heard}, not {asked} (margin {margin:.3f} > {self.max_margin:.3f})", stretch)

    def _result(self, passed: bool, asked: str, heard: str, margin: float | None, started: float,
                reason: str, stretch: float | None = None) -> LivenessResult:
        return LivenessResult(passed, asked, heard, margin, self.max_margin, reason,
                              (time.perf_counter() - started) * 1000.0, stretch)
