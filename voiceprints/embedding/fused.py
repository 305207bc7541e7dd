"""Several speaker models behind one embedder: the vectors of each, side by side.

Two models trained on different data with different features make different
mistakes; averaging their (normalised) scores was the best single recipe on
real phone calls (shared/notes/models.md: GE2E + SE-Res2Net, enrol-3 EER
0.62 %, FRR 1.85 % at FAR 0.1 %).

How a fused voiceprint is stored: as one record, the concatenation of each
model's unit vector scaled by 1/sqrt(k) (k models), so the whole vector is unit
length and its plain cosine with another fused vector is the mean of the
per-model cosines: identification, enrolment consistency and the store work
unchanged. ``layout`` tells the normaliser where each model's part lies, so it
can centre and standardise each model on its own (``centred-znorm``).

The model_id names every part (``fused/<id1>+<id2>``). Upgrading either model
(other weights, hence another hash) changes it, and every voiceprint must be
enrolled again; audio is never kept, so there is nothing to re-embed from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.embedding.base import Embedder

PREFIX = "fused/"


class FusedEmbedder:
    def __init__(self, parts: Sequence[Embedder]) -> None:
        if len(parts) < 2:
            raise ValueError(f"a fused embedder needs at least two models, got {len(parts)}")
        self._parts = tuple(parts)
        self._scale = 1.0 / math.sqrt(len(parts))
        self._model_id = PREFIX + "+".join(p.model_id for p in parts)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self._parts)

    @property
    def layout(self) -> tuple[int, ...]:
        """Dimensions of each model's part, in order."""
        return tuple(p.dim for p in self._parts)

    @property
    def parts(self) -> tuple[Embedder, ...]:
        return self._parts

    def embed(self, clip: AudioClip) -> np.ndarray:
        clip = self._at_common_rate(clip)
        return np.concatenate([p.embed(clip) * self._scale for p in self._parts]).astype(np.float32)

    def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        if len(clips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        clips = [self._at_common_rate(c) for c in clips]
        return np.concatenate([p.embed_batch(clips) * self._scale for p in self._parts], axis=1).astype(np.float32)

    def _at_common_rate(self, clip: AudioClip) -> AudioClip:
        """Resample once when every model wants the same rate (8 kHz calls, 16 kHz models), not once per model."""
        rates = {getattr(p, "sample_rate", None) for p in self._parts}
        if len(rates) != 1 or None in rates or clip.sample_rate == next(iter(rates)) or len(clip.samples) == 0:
            return clip
        return resample(clip, int(next(iter(rates))))
