"""Choosing the embedder from configuration, and telling an admin which one is in use and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voiceprints.config import ModelConfig
from voiceprints.embedding.base import Embedder
from voiceprints.embedding.ecapa import check_ecapa_dir
from voiceprints.embedding.ge2e import ge2e_model_id
from voiceprints.errors import ModelNotAvailableError

logger = logging.getLogger("voiceprints.embedding")


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``ivr models list``: whether a model can be used here, and if not, why."""

    name: str
    available: bool
    model_id: str | None = None
    # Where the model comes from when available; why not, with the fix, when not.
    detail: str | None = None

    @property
    def reason(self) -> str | None:
        return None if self.available else self.detail


def load_embedder(config: ModelConfig) -> Embedder:
    """The embedder the configuration asks for.

    "ecapa" is strict: a missing or broken directory is an error, because the
    admin asked for that model and enrolled voiceprints may depend on it.
    "auto" prefers ECAPA-TDNN when a usable directory is configured and
    otherwise falls back to the built-in GE2E encoder, with a warning when a
    configured directory turned out to be unusable.
    """
    if config.embedder == "ge2e":
        return _ge2e(config, "GE2E selected in the configuration")
    if config.embedder == "ecapa":
        if config.ecapa_dir is None:
            raise ModelNotAvailableError(
                "the ECAPA-TDNN embedder is selected but no model directory is configured; "
                "fetch one with `ivr models pull ecapa --to DIR` and set the ECAPA directory to DIR"
            )
        return _ecapa(config)
    if config.ecapa_dir is None:
        return _ge2e(config, "ECAPA directory not configured")
    try:
        return _ecapa(config)
    except ModelNotAvailableError as e:
        logger.warning("ECAPA-TDNN model in %s is not usable, falling back to the built-in GE2E encoder "
                       "(voiceprints enrolled with ECAPA will need re-enrolment): %s", config.ecapa_dir, e)
        return _ge2e(config, "ECAPA-TDNN not usable")


def _ecapa(config: ModelConfig) -> Embedder:
    from voiceprints.embedding.ecapa import EcapaEmbedder

    embedder = EcapaEmbedder(config.ecapa_dir, torch_threads=config.torch_threads)
    logger.info("using ECAPA-TDNN from %s (model_id %s)", embedder.model_dir, embedder.model_id)
    return embedder


def _ge2e(config: ModelConfig, why: str) -> Embedder:
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    embedder = Ge2eEmbedder(torch_threads=config.torch_threads)
    logger.info("%s; using the built-in GE2E encoder (model_id %s)", why, embedder.model_id)
    return embedder


def available_models(config: ModelConfig) -> list[ModelInfo]:
    """Which models could be used with this configuration, checked from files alone (no torch, no loading).

    A checkpoint that is present but corrupt shows as available here and
    fails at load time with its own message.
    """
    infos = []
    try:
        infos.append(ModelInfo("ge2e", True, ge2e_model_id(), "built in (ships with resemblyzer)"))
    except ModelNotAvailableError as e:
        infos.append(ModelInfo("ge2e", False, detail=str(e)))
    try:
        directory = check_ecapa_dir(config.ecapa_dir)
        infos.append(ModelInfo("ecapa", True, directory.model_id, f"from {directory.path}"))
    except ModelNotAvailableError as e:
        infos.append(ModelInfo("ecapa", False, detail=str(e)))
    return infos
