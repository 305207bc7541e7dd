"""A caller's digit templates: how *they* say each digit, as MFCC sequences.

Made on the enrolment line, where the caller says the ten digits (a few
times); matched at challenge time by :mod:`voiceprints.liveness.verify`. The
templates are speaker-dependent and language-independent: whatever words the
caller uses for the digits, in Spanish, English or anything else, are what the
challenge looks for, and they bind the digits to the enrolled voice.

Only features are kept, never audio: 12 cepstra and their deltas per 10 ms,
normalised. They are serialised here and encrypted by the store.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.vad import SpeechDetector, dilate, true_runs
from voiceprints.errors import EnrolmentError
from voiceprints.liveness.features import FEATURE_VERSION, HOP_S, level, mfcc

if TYPE_CHECKING:
    from voiceprints.liveness.verify import DigitStringVerifier

__all__ = ["DIGITS", "DigitTemplates", "align_to_guide", "segment_digits"]

DIGITS = "0123456789"
# A digit shorter than 120 ms of speech is a click or a cut-off word; longer
# than 1.5 s is two words run together (FSDD digits: 0.25-0.8 s).
_MIN_WORD_S = 0.12
_MAX_WORD_S = 1.5
# Gaps shorter than this inside a word (a stop closure, "six" /s_I_k_s/) do not split it.
_MIN_GAP_S = 0.08
# Keep 30 ms around each word: soft onsets and endings fall just below the VAD gates.
_EDGE_S = 0.03
# A template needs some frames for DTW to follow: 80 ms (the shortest FSDD digits are ~0.15 s).
_MIN_TEMPLATE_FRAMES = 8
_STD_FLOOR = 1e-3
_MAGIC = "voiceauth-digit-templates-1"


@dataclass(frozen=True, eq=False)
class DigitTemplates:
    """Normalised MFCC sequences per digit, with the normalisation statistics of the enrolment."""

    labels: tuple[str, ...]  # one per template: "0".."9"
    sequences: tuple[np.ndarray, ...]  # (frames, 24) float32 each, already normalised
    mean: np.ndarray  # (24,) of the raw enrolment features
    std: np.ndarray  # (24,)
    feature_version: str = FEATURE_VERSION

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.sequences):
            raise ValueError(f"{len(self.labels)} labels for {len(self.sequences)} templates")
        missing = sorted(set(DIGITS) - set(self.labels))
        if missing:
            raise EnrolmentError(f"digit templates are missing digit(s) {', '.join(missing)}")

    def __len__(self) -> int:
        return len(self.sequences)

    def per_digit(self) -> dict[str, int]:
        return {d: self.labels.count(d) for d in DIGITS}

    def normalise(self, feats: np.ndarray) -> np.ndarray:
        """Features of a challenge answer in the templates' normalisation (the enrolment's statistics)."""
        return ((feats - self.mean) / self.std).astype(np.float32)

    @classmethod
    def from_digit_clips(cls, clips: Mapping[str, Sequence[AudioClip]]) -> DigitTemplates:
        """Templates from recordings of single digits: ``{"0": [clip, ...], ..., "9": [...]}``.

        Each clip is trimmed to its speech; the features of all of them give
        the normalisation statistics (a mixture of all digits, as a spoken
        string is).
        """
        detector = SpeechDetector(2, 10, edge_ms=30)
        labels: list[str] = []
        raw: list[np.ndarray] = []
        for digit in DIGITS:
            for i, clip in enumerate(clips.get(digit, ())):
                clip = level(clip)
                speech = detector.speech_only(clip)
                feats = mfcc(speech if speech.duration_s >= _MIN_WORD_S else clip)
                if len(feats) < _MIN_TEMPLATE_FRAMES:
                    raise EnrolmentError(f"recording {i + 1} of digit {digit} has too little speech for a template")
                labels.append(digit)
                raw.append(feats)
        return cls._normalised(labels, raw)

    @classmethod
    def from_sequences(cls, recordings: Sequence[AudioClip], guide: DigitTemplates | None = None,
                       verifier: DigitStringVerifier | None = None) -> DigitTemplates:
        """Templates from recordings of the caller saying "zero, one, ..., nine", at their own pace.

        Said with a pause after each digit, the words are found between the
        pauses. Run together, as most callers say them, they are found by
        aligning the known sequence to ``guide`` (other voices saying the
        digits in the caller's language: :func:`align_to_guide`); ``verifier`` then
        checks that each recording is heard as 0-9 by the templates of the
        others, so that other speech at the digit prompt makes no templates.
        """
        try:
            segmented = [segment_digits(r, f"recording {i + 1}") for i, r in enumerate(recordings)]
        except EnrolmentError:
            if guide is None or verifier is None:
                raise
            return cls._from_alignment(recordings, guide, verifier)
        clips: dict[str, list[AudioClip]] = {d: [] for d in DIGITS}
        for words in segmented:
            for digit, word in zip(DIGITS, words):
                clips[digit].append(word)
        return cls.from_digit_clips(clips)

    @classmethod
    def _from_alignment(cls, recordings: Sequence[AudioClip], guide: DigitTemplates,
                        verifier: DigitStringVerifier) -> DigitTemplates:
        if len(recordings) < 2:
            raise EnrolmentError("the digits must be said at least twice to find them without pauses")
        words = [align_to_guide(r, guide, f"recording {i + 1}") for i, r in enumerate(recordings)]
        for i, recording in enumerate(recordings):
            others = [w for j, ws in enumerate(words) if j != i for w in ws]
            result = verifier.verify(cls._normalised(list(DIGITS) * (len(recordings) - 1), others), recording,
                                     DIGITS)
            if not result.passed:
                raise EnrolmentError(f"recording {i + 1}: the digits from zero to nine were not heard in it "
                                     f"({result.reason})")
        return cls._normalised(list(DIGITS) * len(recordings), [w for ws in words for w in ws])

    @classmethod
    def _normalised(cls, labels: list[str], raw: list[np.ndarray]) -> DigitTemplates:
        if not raw:
            raise EnrolmentError("no digit recordings given")
        stacked = np.vstack(raw)
        mean = stacked.mean(axis=0)
        std = np.maximum(stacked.std(axis=0), _STD_FLOOR)
        seqs = tuple(((f - mean) / std).astype(np.float32) for f in raw)
        return cls(tuple(labels), seqs, mean.astype(np.float32), std.astype(np.float32))

    # --- serialisation (the store encrypts the bytes) ---------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        lengths = np.array([len(s) for s in self.sequences], dtype=np.int32)
        np.savez(buf, magic=np.array(_MAGIC), version=np.array(self.feature_version),
                 labels=np.array("".join(self.labels)), lengths=lengths,
                 frames=np.vstack(self.sequences).astype(np.float32), mean=self.mean, std=self.std)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DigitTemplates:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                if str(z["magic"]) != _MAGIC:
                    raise ValueError("not digit templates")
                lengths = z["lengths"]
                frames = z["frames"]
                labels = tuple(str(z["labels"]))
                version = str(z["version"])
                mean, std = z["mean"], z["std"]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"digit templates cannot be read: {exc}") from None
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        if bounds[-1] != len(frames) or len(labels) != len(lengths):
            raise ValueError("digit templates are inconsistent")
        seqs = tuple(frames[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
        return cls(labels, seqs, mean, std, version)


def align_to_guide(recording: AudioClip, guide: DigitTemplates, name: str = "the recording") -> list[np.ndarray]:
    """The raw MFCCs of each digit of ``recording`` ("zero ... nine" said without pauses), in order.

    The sequence is known; only where each word begins is not. Connected-word
    DTW (:func:`.dtw.align_forced`) against another voice's digits finds the
    boundaries: each side in its own normalisation (the caller's and the
    guide's statistics), so the voices need not match, only the words. On
    FSDD digits run together the caller's templates made this way pass 96 %
    of their right answers, 93 % with longer gaps (README).
    """
    from voiceprints.liveness.dtw import align_forced

    raw = mfcc(SpeechDetector(2, 10, edge_ms=30).speech_only(level(recording)))
    seconds = len(raw) * HOP_S
    if not len(DIGITS) * _MIN_WORD_S <= seconds <= len(DIGITS) * _MAX_WORD_S:
        raise EnrolmentError(f"{name}: {seconds:.1f} s of speech is not the ten digits; "
                             "say the digits from zero to nine")
    own = (raw - raw.mean(axis=0)) / np.maximum(raw.std(axis=0), _STD_FLOOR)
    alignment = align_forced(own.astype(np.float32), guide.sequences, guide.labels, DIGITS)
    if alignment is None:
        raise EnrolmentError(f"{name}: the ten digits could not be found in it")
    words = [raw[w.start:w.end] for w in alignment.words]
    short = [d for d, w in zip(DIGITS, words) if len(w) < _MIN_TEMPLATE_FRAMES]
    if short:
        raise EnrolmentError(f"{name}: digit {short[0]} came out too short; say the digits from zero to nine")
    return words


def segment_digits(recording: AudioClip, name: str = "the recording", count: int = 10) -> list[AudioClip]:
    """The ``count`` spoken words of ``recording``, found as runs of speech between pauses.

    Raises :class:`EnrolmentError` (the flow asks again) when it does not hear
    exactly ``count`` words, with what it heard.
    """
    detector = SpeechDetector(2, 10, edge_ms=0)
    mask = detector.speech_mask(level(recording))
    frame_s = detector.frame_s
    # Close gaps shorter than _MIN_GAP_S inside words.
    closed = ~dilate(~mask, 0)
    starts, ends = true_runs(~mask)
    for s, e in zip(starts, ends):
        if (e - s) * frame_s < _MIN_GAP_S and s > 0 and e < len(mask):
            closed[s:e] = True
    starts, ends = true_runs(closed)
    words = [(s, e) for s, e in zip(starts, ends) if (e - s) * frame_s >= _MIN_WORD_S]
    if len(words) != count:
        raise EnrolmentError(
            f"{name}: heard {len(words)} words, expected the {count} digits; "
            "say the digits from zero to nine with a short pause after each"
        )
    too_long = [i for i, (s, e) in enumerate(words) if (e - s) * frame_s > _MAX_WORD_S]
    if too_long:
        raise EnrolmentError(f"{name}: word {too_long[0] + 1} is longer than {_MAX_WORD_S} s; "
                             "say the digits one at a time with a short pause after each")
    edge = math.ceil(_EDGE_S / frame_s)
    per_frame = recording.sample_rate * frame_s
    out = []
    for s, e in words:
        a = round(max(0, s - edge) * per_frame)
        b = round(min(len(mask), e + edge) * per_frame)
        out.append(AudioClip(recording.samples[a:b], recording.sample_rate))
    return out
