"""GE2E speaker encoder (Resemblyzer): the built-in model that needs no download.

The pretrained weights ship inside the ``resemblyzer`` wheel, so this embedder
works on a machine that has never seen the internet. It is the fallback when
no ECAPA-TDNN directory is configured.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Sequence

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding._input import l2_normalised, samples_at
from voiceprints.errors import ModelNotAvailableError

SAMPLE_RATE = 16000
DIM = 256
# Resemblyzer's defaults for embed_utterance: 1.3 partial windows per second
# with 1.6 s windows (about half-overlapping); a trailing window is kept when
# at least 75 % of it is real audio. The batched path must use the same values
# to give the same vectors as embed_utterance.
PARTIALS_PER_S = 1.3
MIN_COVERAGE = 0.75
# Partial windows per forward pass in embed_batch: bounds memory on big
# batches (cohort building) while still amortising the per-call overhead.
MAX_PARTIALS_PER_FORWARD = 128


def _weights_path() -> Path:
    """Where the wheel keeps ``pretrained.pt``, found without importing resemblyzer (which imports torch)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError("the resemblyzer package is not installed: "
                                     "pip install resemblyzer==0.1.4")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise ModelNotAvailableError(f"GE2E weights missing at {path}; reinstall resemblyzer")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ge2e_model_id() -> str:
    """``ge2e/resemblyzer-<version>/<sha256 of the weights, 12 hex>``, without loading the model."""
    version = importlib.metadata.version("resemblyzer")
    return f"ge2e/resemblyzer-{version}/{_sha256(_weights_path())[:12]}"


class Ge2eEmbedder:
    """Resemblyzer's GE2E LSTM encoder behind the :class:`~voiceprints.embedding.base.Embedder` seam.

    An utterance is embedded as the normalised mean of overlapping ~1.6 s
    windows (Resemblyzer's ``embed_utterance``): the model was trained on
    1.6 s segments, and one pass over a whole utterance scored measurably worse.
    Resemblyzer's ``preprocess_wav`` is deliberately not applied: our own VAD
    has already cut the audio to speech, and its volume normalisation is not
    needed by a model that sees mel energies through an L2-normalised output.

    ``torch_threads`` sets torch's intra-op threads (process-wide). The
    deployment model is one inference per call on one core, with concurrency
    coming from running several calls side by side (see ``voiceprints.inference``):
    more intra-op threads would only make concurrent calls fight over cores.
    Pass ``None`` to leave torch's setting alone.
    """

    def __init__(self, torch_threads: int | None = 1) -> None:
        self._model_id = ge2e_model_id()
        import torch
        from resemblyzer import VoiceEncoder

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self._encoder = VoiceEncoder(device="cpu", verbose=False, weights_fpath=_weights_path())
        self._encoder.eval()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return DIM

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def embed(self, clip: AudioClip) -> np.ndarray:
        wav = samples_at(clip, SAMPLE_RATE)
        vector = self._encoder.embed_utterance(wav, rate=PARTIALS_PER_S, min_coverage=MIN_COVERAGE)
        return l2_normalised(vector[None, :])[0]

    def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        """All partial windows of all clips go through the LSTM together, in a few large forward passes.

        This is the same computation as ``embed`` per clip (same windows, same
        averaging), only batched: one forward pass per ~128 windows instead
        of one per clip is what makes cohort and benchmark runs bearable.
        """
        if len(clips) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        import torch

        partials = [self._partial_mels(samples_at(clip, SAMPLE_RATE)) for clip in clips]
        counts = [len(p) for p in partials]
        mels = np.concatenate(partials, axis=0)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(mels), MAX_PARTIALS_PER_FORWARD):
                chunk = torch.from_numpy(mels[start:start + MAX_PARTIALS_PER_FORWARD])
                outputs.append(self._encoder(chunk).numpy())
        partial_embeds = np.concatenate(outputs, axis=0)
        bounds = np.cumsum([0] + counts)
        means = np.stack([partial_embeds[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
        return l2_normalised(means)

    def _partial_mels(self, wav: np.ndarray) -> np.ndarray:
        """Mel windows exactly as ``VoiceEncoder.embed_utterance`` cuts them: shape (n, 160, 40)."""
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wav), PARTIALS_PER_S, MIN_COVERAGE)
        needed = wav_slices[-1].stop
        if needed >= len(wav):
            wav = np.pad(wav, (0, needed - len(wav)), "constant")
        mel = wav_to_mel_spectrogram(wav)
        return np.ascontiguousarray(np.stack([mel[s] for s in mel_slices]), dtype=np.float32)
