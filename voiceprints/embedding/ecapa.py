"""ECAPA-TDNN speaker encoder (SpeechBrain), loaded from a local directory only.

The model directory has the layout of the ``speechbrain/spkrec-ecapa-voxceleb``
hub repository (``hyperparams.yaml``, ``embedding_model.ckpt``,
``classifier.ckpt``, ``label_encoder.txt``, ``mean_var_norm_emb.ckpt``) or of a
SpeechBrain ``savedir`` (the same files named ``<loadable>.ckpt``). Loading
never touches the network: a telephony server must start the same way with or
without internet, and a silent download would change the model under
enrolled voiceprints.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding._input import l2_normalised, samples_at
from voiceprints.errors import ModelNotAvailableError, TooLittleSpeechError

logger = logging.getLogger("voiceprints.embedding")

SAMPLE_RATE = 16000
HUB_SOURCE = "speechbrain/spkrec-ecapa-voxceleb"
HYPERPARAMS = "hyperparams.yaml"
EMBEDDING_CKPT = "embedding_model.ckpt"
# What the hub repository holds; pull_ecapa fetches exactly these.
HUB_FILES = (HYPERPARAMS, EMBEDDING_CKPT, "mean_var_norm_emb.ckpt", "classifier.ckpt", "label_encoder.txt")
# ECAPA's first TDNN layer is a reflect-padded convolution over fbank frames
# (10 ms hop); below ~0.1 s there are too few frames to pad, and such a clip
# carries no usable speaker information anyway.
MIN_SAMPLES = SAMPLE_RATE // 10


def pull_command(model_dir: Path | str) -> str:
    return f"ivr models pull ecapa --to {model_dir}"


@dataclass(frozen=True)
class EcapaDirectory:
    """A model directory that passed the file checks (nothing loaded yet)."""

    path: Path
    name: str
    weights_sha256: str

    @property
    def model_id(self) -> str:
        return f"ecapa/{self.name}/{self.weights_sha256[:12]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads HyperPyYAML's structure (``!new:``, ``!ref``...) as plain data, instantiating nothing."""


def _plain(loader: Any, _suffix: str, node: Any) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_TagTolerantLoader.add_multi_constructor("!", _plain)
_TagTolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", _plain)


def _read_hyperparams(path: Path) -> dict[str, Any]:
    try:
        # A SafeLoader subclass: nothing is constructed from the tags.
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TagTolerantLoader)  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ModelNotAvailableError(
            f"{path} is unreadable ({e}); re-download the model: {pull_command(path.parent)}"
        ) from e
    if not isinstance(data, dict):
        raise ModelNotAvailableError(f"{path} is not a SpeechBrain hyperparameter file; "
                                     f"re-download the model: {pull_command(path.parent)}")
    return data


def _declared_files(hparams: dict[str, Any]) -> dict[str, str]:
    """Loadable name -> file name that the pretrainer in hyperparams.yaml will load."""
    pretrainer = hparams.get("pretrainer")
    if not isinstance(pretrainer, dict):
        return {"embedding_model": EMBEDDING_CKPT}
    loadables = pretrainer.get("loadables") or {}
    paths = pretrainer.get("paths") or {}
    files = {}
    for name in loadables:
        declared = paths.get(name)
        files[name] = str(declared).rsplit("/", 1)[-1] if declared else f"{name}.ckpt"
    return files


def _model_name(hparams: dict[str, Any], model_dir: Path) -> str:
    """The name in model_id, from the yaml when possible: moving the folder must not orphan voiceprints."""
    declared = hparams.get("model_name")
    if isinstance(declared, str) and declared.strip():
        return declared.strip()
    hub_path = hparams.get("pretrained_path")
    if isinstance(hub_path, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", hub_path.strip()):
        return hub_path.strip().rsplit("/", 1)[-1]
    return model_dir.resolve().name


def check_ecapa_dir(model_dir: Path | str | None) -> EcapaDirectory:
    """Check that ``model_dir`` holds every file its hyperparams.yaml declares, without loading torch.

    Raises ModelNotAvailableError naming the first missing or empty file and
    the command that fetches the model.
    """
    if model_dir is None:
        raise ModelNotAvailableError("no ECAPA model directory configured; fetch one with: "
                                     f"{pull_command('DIR')} and set the model directory to DIR")
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        problem = "is a file, not a directory" if model_dir.exists() else "does not exist"
        raise ModelNotAvailableError(f"ECAPA model directory {model_dir} {problem}; "
                                     f"fetch the model with: {pull_command(model_dir)}")
    hyperparams = model_dir / HYPERPARAMS
    if not hyperparams.is_file():
        raise ModelNotAvailableError(f"{HYPERPARAMS} is missing from {model_dir}; "
                                     f"fetch the model with: {pull_command(model_dir)}")
    hparams = _read_hyperparams(hyperparams)
    for loadable, filename in {"embedding_model": EMBEDDING_CKPT, **_declared_files(hparams)}.items():
        candidates = [model_dir / filename, model_dir / f"{loadable}.ckpt"]
        present = next((c for c in candidates if c.is_file()), None)
        if present is None:
            raise ModelNotAvailableError(f"{filename} is missing from {model_dir}; "
                                         f"fetch the model with: {pull_command(model_dir)}")
        if present.stat().st_size == 0:
            raise ModelNotAvailableError(f"{present} is empty (an interrupted copy?); "
                                         f"fetch the model again with: {pull_command(model_dir)}")
    return EcapaDirectory(model_dir, _model_name(hparams, model_dir), _sha256(model_dir / EMBEDDING_CKPT))


class EcapaEmbedder:
    """SpeechBrain's ECAPA-TDNN behind the :class:`~voiceprints.embedding.base.Embedder` seam.

    ``torch_threads``: see :class:`~voiceprints.embedding.ge2e.Ge2eEmbedder`
    (one core per inference; concurrency comes from the executor). ``None``
    leaves torch's process-wide setting alone.
    """

    def __init__(self, model_dir: Path | str, torch_threads: int | None = 1) -> None:
        self._dir = check_ecapa_dir(model_dir)
        import torch

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self._model = _load(self._dir)
        self._dim = int(self._encode(np.random.default_rng(0).standard_normal((1, SAMPLE_RATE)) * 0.1,
                                     np.ones(1)).shape[1])

    @property
    def model_id(self) -> str:
        return self._dir.model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def model_dir(self) -> Path:
        return self._dir.path

    def embed(self, clip: AudioClip) -> np.ndarray:
        return self.embed_batch([clip])[0]

    def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        """Zero-pad to the longest clip; relative lengths keep the padding out of the statistics."""
        if len(clips) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        waves = [samples_at(clip, SAMPLE_RATE) for clip in clips]
        for wav in waves:
            if len(wav) < MIN_SAMPLES:
                seconds, required = len(wav) / SAMPLE_RATE, MIN_SAMPLES / SAMPLE_RATE
                raise TooLittleSpeechError(
                    f"only {seconds:.2f} s of audio; ECAPA-TDNN needs at least {required:.1f} s",
                    net_speech_s=seconds, required_s=required,
                )
        longest = max(len(w) for w in waves)
        batch = np.zeros((len(waves), longest), dtype=np.float32)
        for row, wav in zip(batch, waves):
            row[: len(wav)] = wav
        return l2_normalised(self._encode(batch, np.array([len(w) / longest for w in waves])))

    def _encode(self, batch: np.ndarray, relative_lengths: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self._model.encode_batch(
                torch.from_numpy(np.asarray(batch, dtype=np.float32)),
                torch.from_numpy(np.asarray(relative_lengths, dtype=np.float32)),
            )
        return out.reshape(out.shape[0], -1).numpy()


def _load(directory: EcapaDirectory) -> Any:
    """EncoderClassifier.from_hparams, pinned to the local directory.

    The hub's hyperparams.yaml declares ``pretrained_path:
    speechbrain/spkrec-ecapa-voxceleb``; left alone, SpeechBrain resolves every
    checkpoint against that hub id and goes to the network even with the files
    next to it. Overriding it with the directory, plus ``allow_network=False``
    and ``LocalStrategy.NO_LINK`` (read files where they are: no symlinks or
    copies written into a possibly read-only model directory), keeps loading
    strictly local.
    """
    from speechbrain.inference.speaker import EncoderClassifier
    from speechbrain.utils.fetching import FetchConfig, LocalStrategy

    model_dir = directory.path.resolve()
    hparams = _read_hyperparams(model_dir / HYPERPARAMS)
    overrides = {"pretrained_path": str(model_dir)} if "pretrained_path" in hparams else {}
    try:
        model = EncoderClassifier.from_hparams(
            source=str(model_dir),
            savedir=str(model_dir),
            overrides=overrides,
            local_strategy=LocalStrategy.NO_LINK,
            fetch_config=FetchConfig(allow_network=False, allow_updates=False, overwrite=False),
            run_opts={"device": "cpu"},
        )
        _check_weights_match(model, model_dir / EMBEDDING_CKPT)
    except ModelNotAvailableError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure here means "no usable model in this directory"
        raise ModelNotAvailableError(
            f"cannot load the ECAPA-TDNN model from {model_dir}: {type(e).__name__}: {e}. "
            f"Fetch it again with: {pull_command(model_dir)}"
        ) from e
    model.eval()
    return model


def _check_weights_match(model: Any, checkpoint: Path) -> None:
    """Refuse a checkpoint that does not fit the architecture.

    SpeechBrain transfers parameters non-strictly and only logs missing keys,
    which would leave part of the network randomly initialised: embeddings
    that look fine and match nobody.
    """
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model.mods.embedding_model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelNotAvailableError(
            f"{checkpoint} does not match the network described in {checkpoint.parent / HYPERPARAMS} "
            f"({first_line}); fetch a consistent copy with: {pull_command(checkpoint.parent)}"
        ) from e


def pull_ecapa(to: Path | str, source: str = HUB_SOURCE, *, endpoint: str | None = None,
               timeout_s: float = 10.0) -> Path:
    """Download the hub model into ``to`` and check it; returns ``to``.

    ``endpoint`` defaults to ``$HF_ENDPOINT`` read now (huggingface_hub reads it
    once at import, too early for callers that set it later). Without
    internet this fails within about ``timeout_s`` with an error telling the
    operator to copy the folder from a machine that has internet.
    """
    to = Path(to).expanduser()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    created = not to.exists()
    try:
        from huggingface_hub import snapshot_download

        to.mkdir(parents=True, exist_ok=True)
        snapshot_download(
            repo_id=source,
            local_dir=str(to),
            allow_patterns=list(HUB_FILES),
            endpoint=endpoint,
            etag_timeout=timeout_s,
        )
    except Exception as e:  # noqa: BLE001 - hub, HTTP and file-system errors all mean "not downloaded"
        if created:
            # Leave no half-made folder that looks like a model directory.
            shutil.rmtree(to, ignore_errors=True)
        where = endpoint or "https://huggingface.co"
        raise ModelNotAvailableError(
            f"cannot reach the model hub at {where} to download {source}: {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r}. "
            f"On a machine with internet run `{pull_command('DIR')}` and copy the folder DIR to {to}"
        ) from e
    logger.info("downloaded %s into %s", source, to)
    return check_ecapa_dir(to).path
