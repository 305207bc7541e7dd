"""The embedder seam: audio in, L2-normalised speaker vector out."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from voiceprints.audio.clip import AudioClip


@runtime_checkable
class Embedder(Protocol):
    """A speaker-embedding model.

    ``model_id`` is ``name/version/weights-hash``: voiceprints made with one
    model_id are never scored against another (a different model, or the same
    model with other weights, lives in another vector space).
    Input clips may be at any rate; the embedder resamples to what it needs.
    Callers pass speech-only audio (VAD already applied).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, clip: AudioClip) -> np.ndarray:
        """float32 vector of shape (dim,), unit L2 norm."""
        ...

    def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        """float32 matrix of shape (len(clips), dim), each row unit L2 norm."""
        ...


def layout_of(embedder: Embedder) -> tuple[int, ...]:
    """Dimensions of each model's part of the embedder's vectors: ``(dim,)`` unless it fuses several models."""
    layout = getattr(embedder, "layout", None)
    return tuple(int(d) for d in layout) if layout else (int(embedder.dim),)
