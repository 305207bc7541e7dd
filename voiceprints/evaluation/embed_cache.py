"""Embeddings of evaluation files, computed once and cached on disk.

Evaluating thousands of files takes minutes; re-running with another
protocol or normalisation should take seconds. The cache key covers what
changes an embedding: the model, the channel simulation, the file's content
(path, size, mtime) and the VAD setting.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.io import read_audio
from voiceprints.audio.telephone import telephone_channel
from voiceprints.audio.vad import SpeechDetector
from voiceprints.embedding.base import Embedder
from voiceprints.errors import AudioError
from voiceprints.evaluation.manifest import Item

log = logging.getLogger("voiceprints.evaluation")

CHANNELS: dict[str, Callable[[AudioClip], AudioClip]] = {
    "original": lambda clip: clip,
    "telephone": telephone_channel,
}


def _key(item: Item, model_id: str, channel: str, vad: int) -> str:
    stat = item.path.stat()
    raw = f"{model_id}|{channel}|vad{vad}|{item.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()


def embed_items(items: Sequence[Item], embedder: Embedder, detector: SpeechDetector, *, channel: str,
                cache_dir: Path | None, progress: bool = True) -> tuple[np.ndarray, list[int]]:
    """Embeddings (n, dim) for ``items``; rows of unusable files are NaN and listed in the second value."""
    transform = CHANNELS[channel]
    out = np.full((len(items), embedder.dim), np.nan, dtype=np.float32)
    failed: list[int] = []
    vad = getattr(detector, "aggressiveness", 0)
    for i, item in enumerate(tqdm(items, desc=f"embedding ({channel})", unit="file", disable=not progress)):
        cached = cache_dir / f"{_key(item, embedder.model_id, channel, vad)}.npy" if cache_dir else None
        if cached is not None and cached.exists():
            out[i] = np.load(cached)
            continue
        try:
            clip = transform(read_audio(item.path))
            speech = detector.speech_only(clip)
            if speech.duration_s < 0.1:  # nothing the VAD calls speech: embed what there is
                speech = clip
            out[i] = embedder.embed(speech)
        except AudioError as exc:
            log.warning("skipping %s: %s", item.path, exc)
            failed.append(i)
            continue
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, out[i])
    return out, failed
