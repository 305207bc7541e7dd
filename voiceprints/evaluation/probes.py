"""Each evaluation recording through the engine's own quality gate and embedder, once, cached on disk.

A trial exists only where the engine would score one: a clip the engine
answers INCONCLUSIVE for on quality (too little speech, too noisy, clipped)
is counted and reported, never scored. Evaluating thousands of files takes
minutes; re-running with another protocol or normalisation should take
seconds, so probes (quality report + embedding) are cached. The key covers
everything that changes one: the model, the channel simulation, the file
(path, size, mtime), the VAD and quality settings and the speech minimum.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.io import read_audio
from voiceprints.audio.quality import QualityReport
from voiceprints.audio.telephone import telephone_channel
from voiceprints.engine import Probe, VoiceprintEngine
from voiceprints.errors import AudioError
from voiceprints.evaluation.manifest import Item

log = logging.getLogger("voiceprints.evaluation")

CHANNELS: dict[str, Callable[[AudioClip], AudioClip]] = {
    "original": lambda clip: clip,
    "telephone": telephone_channel,
}


def load_clip(item: Item, channel: str) -> AudioClip:
    """The recording as the engine would hear it on ``channel``."""
    return CHANNELS[channel](read_audio(item.path))


def _key(item: Item, engine: VoiceprintEngine, channel: str) -> str:
    stat = item.path.stat()
    settings = json.dumps([engine.config.quality.model_dump(), engine.config.verification.min_speech_s],
                          sort_keys=True, default=str)
    raw = f"{engine.model_id}|{channel}|{settings}|{item.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()


def _load(path: Path) -> Probe:
    with np.load(path, allow_pickle=False) as data:
        quality = QualityReport.from_dict(json.loads(str(data["quality"])))
        vector = data["vector"].astype(np.float32)
    return Probe(quality, vector if vector.size else None)


def _save(path: Path, probe: Probe) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    vector = probe.vector if probe.vector is not None else np.zeros(0, np.float32)
    np.savez(tmp, vector=vector, quality=np.array(json.dumps(probe.quality.to_dict())))
    tmp.replace(path)


def probe_items(items: Sequence[Item], engine: VoiceprintEngine, *, channel: str, cache_dir: Path | None,
                progress: bool = True) -> tuple[list[Probe | None], list[str]]:
    """One probe per item (None for files that cannot be read or decoded), and why those failed."""
    probes: list[Probe | None] = []
    failed: list[str] = []
    # disable=None: no bar when stderr is not a terminal (logs, CI).
    for item in tqdm(items, desc=f"probing ({channel})", unit="file", disable=None if progress else True):
        cached = cache_dir / f"{_key(item, engine, channel)}.npz" if cache_dir else None
        if cached is not None and cached.exists():
            probes.append(_load(cached))
            continue
        try:
            probe = engine.probe(load_clip(item, channel))
        except AudioError as exc:
            log.warning("skipping %s: %s", item.path, exc)
            failed.append(f"{item.path}: {exc}")
            probes.append(None)
            continue
        if cached is not None:
            _save(cached, probe)
        probes.append(probe)
    return probes, failed
