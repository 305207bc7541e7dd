"""ECAPA-TDNN from a local directory: offline loading, directory checks, model_id, batching.

A small randomly initialised ECAPA-TDNN in the hub's layout stands in for the
80 MB download; it goes through exactly the loading code a downloaded model
does. Its vectors mean nothing about speakers, so nothing here measures accuracy.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding import EcapaEmbedder, Embedder, check_ecapa_dir, pull_ecapa
from voiceprints.embedding.ecapa_testing import build_small_ecapa
from voiceprints.errors import EmptyAudioError, ModelNotAvailableError, TooLittleSpeechError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_small_ecapa(tmp_path_factory.mktemp("ecapa") / "small-ecapa")


@pytest.fixture(scope="module")
def ecapa(model_dir) -> EcapaEmbedder:
    return EcapaEmbedder(model_dir)


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "copy"))


def test_small_model_loads_as_an_embedder_with_its_declared_size(ecapa):
    assert isinstance(ecapa, Embedder)
    assert ecapa.dim == 32


def test_vectors_are_unit_length_float32_and_deterministic(ecapa, model_dir, utterances_of):
    clip = utterances_of("carol", 1)[0]
    vector = ecapa.embed(clip)
    assert vector.shape == (32,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(ecapa.embed(clip), vector)
    # A second load of the same files gives the same vectors.
    np.testing.assert_allclose(EcapaEmbedder(model_dir).embed(clip), vector, atol=1e-6)


def test_directory_has_the_hub_layout(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt", "classifier.ckpt",
         "label_encoder.txt"])


def test_same_speech_with_faint_line_noise_scores_near_one(ecapa, utterances_of):
    clip = utterances_of("dave", 1)[0]
    rng = np.random.default_rng(7)
    hiss = (rng.standard_normal(len(clip.samples)) * 1e-3).astype(np.float32)
    noisy = AudioClip(clip.samples + hiss, 16000)
    assert float(ecapa.embed(clip) @ ecapa.embed(noisy)) > 0.98


def test_batch_matches_one_at_a_time(ecapa, utterances_of):
    clips = utterances_of("alice", 3) + utterances_of("bob", 2, offset=3)
    assert len({len(c.samples) for c in clips}) == len(clips), "lengths must differ so padding is exercised"
    batch = ecapa.embed_batch(clips)
    single = np.stack([ecapa.embed(c) for c in clips])
    assert batch.shape == (5, 32) and batch.dtype == np.float32
    # Padded rows differ from single runs only through convolutions seeing the
    # padding past each clip's end (a few frames of near-silence here);
    # ignoring the relative lengths would cost ~0.01-0.02 of cosine.
    assert np.min(np.sum(batch * single, axis=1)) > 0.999
    np.testing.assert_allclose(batch[np.argmax([len(c.samples) for c in clips])],
                               single[np.argmax([len(c.samples) for c in clips])], atol=1e-5)
    assert ecapa.embed_batch([]).shape == (0, 32)


def test_telephone_rate_input_is_resampled_to_16_khz(ecapa, say):
    text = "Please check the balance of my savings account."
    wide, narrow = say("erin", text, 16000), say("erin", text, 8000)
    vector = ecapa.embed(narrow)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # Same speech through a band-limited channel: close, but not the same vector.
    assert 0.8 < float(vector @ ecapa.embed(wide)) < 0.99999


def test_empty_and_too_short_audio_are_refused(ecapa):
    with pytest.raises(EmptyAudioError):
        ecapa.embed(AudioClip(np.zeros(0, dtype=np.float32), 16000))
    with pytest.raises(TooLittleSpeechError, match="0.05 s"):
        ecapa.embed(AudioClip(np.full(800, 0.1, dtype=np.float32), 16000))


def test_model_id_is_declared_name_and_weights_hash(ecapa, model_dir):
    sha = hashlib.sha256((model_dir / "embedding_model.ckpt").read_bytes()).hexdigest()
    assert ecapa.model_id == f"ecapa/small-ecapa-test/{sha[:12]}"
    assert check_ecapa_dir(model_dir).model_id == ecapa.model_id


def test_model_id_survives_moving_the_folder(ecapa, model_dir, tmp_path):
    moved = Path(shutil.copytree(model_dir, tmp_path / "somewhere-else"))
    assert check_ecapa_dir(moved).model_id == ecapa.model_id


def test_other_weights_give_another_model_id_and_other_vectors(ecapa, tmp_path, utterances_of):
    other = EcapaEmbedder(build_small_ecapa(tmp_path / "reseeded", seed=1))
    assert other.model_id != ecapa.model_id
    assert other.model_id.startswith("ecapa/small-ecapa-test/")
    clip = utterances_of("frank", 1)[0]
    assert float(other.embed(clip) @ ecapa.embed(clip)) < 0.99


def test_loading_opens_no_network_connection_and_writes_nothing(model_copy, monkeypatch):
    """The yaml names a hub repository (as the real one does); the files beside it must be used."""
    assert "pretrained_path: voiceauth/" in (model_copy / "hyperparams.yaml").read_text()
    attempts = []
    real_connect = socket.socket.connect

    def refuse_connect(sock, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    before = sorted((p.name, p.stat().st_size) for p in model_copy.iterdir())
    embedder = EcapaEmbedder(model_copy)
    monkeypatch.setattr(socket.socket, "connect", real_connect)
    assert attempts == []
    assert embedder.dim == 32
    assert sorted((p.name, p.stat().st_size) for p in model_copy.iterdir()) == before


def test_speechbrain_savedir_layout_loads_too(model_copy, ecapa, utterances_of):
    # from_hparams(savedir=...) stores the label encoder as label_encoder.ckpt.
    (model_copy / "label_encoder.txt").rename(model_copy / "label_encoder.ckpt")
    clip = utterances_of("alice", 1)[0]
    np.testing.assert_allclose(EcapaEmbedder(model_copy).embed(clip), ecapa.embed(clip), atol=1e-6)


def test_embedding_normalisation_statistics_are_optional(tmp_path, utterances_of):
    # mean_var_norm_emb.ckpt is only needed when hyperparams.yaml declares it;
    # embeddings never use it (encode_batch runs with normalize=False).
    without = EcapaEmbedder(build_small_ecapa(tmp_path / "no-norm", embedding_norm=False))
    assert not (without.model_dir / "mean_var_norm_emb.ckpt").exists()
    assert without.dim == 32


@pytest.mark.parametrize("missing", ["embedding_model.ckpt", "hyperparams.yaml", "classifier.ckpt",
                                     "label_encoder.txt", "mean_var_norm_emb.ckpt"])
def test_missing_file_is_named_with_the_command_that_fetches_the_model(model_copy, missing):
    (model_copy / missing).unlink()
    with pytest.raises(ModelNotAvailableError) as caught:
        EcapaEmbedder(model_copy)
    message = str(caught.value)
    assert missing in message
    assert f"ivr models pull ecapa --to {model_copy}" in message


def test_missing_directory_says_how_to_fetch_it(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="does not exist.*ivr models pull ecapa --to"):
        EcapaEmbedder(tmp_path / "nowhere")


def test_empty_checkpoint_is_reported_as_an_interrupted_copy(model_copy):
    (model_copy / "embedding_model.ckpt").write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="embedding_model.ckpt is empty"):
        EcapaEmbedder(model_copy)


def test_corrupt_checkpoint_is_model_not_available(model_copy):
    (model_copy / "embedding_model.ckpt").write_bytes(b"this is not a torch checkpoint" * 10)
    with pytest.raises(ModelNotAvailableError, match="cannot load the ECAPA-TDNN model.*ivr models pull"):
        EcapaEmbedder(model_copy)


def test_checkpoint_of_another_architecture_is_refused_not_half_loaded(model_copy):
    import torch

    state = torch.load(model_copy / "embedding_model.ckpt", weights_only=True)
    # Drop the final layer: SpeechBrain alone would only log a warning and
    # leave that layer random.
    truncated = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torch.save(truncated, model_copy / "embedding_model.ckpt")
    with pytest.raises(ModelNotAvailableError, match="does not match the network"):
        EcapaEmbedder(model_copy)


def test_broken_hyperparams_is_model_not_available(model_copy):
    (model_copy / "hyperparams.yaml").write_text("embedding_model: [unclosed\n")
    with pytest.raises(ModelNotAvailableError, match="hyperparams.yaml"):
        EcapaEmbedder(model_copy)


def test_pull_without_a_reachable_hub_fails_fast_and_says_what_to_do(tmp_path, monkeypatch):
    # Port 9 (discard) on loopback is closed: the connection is refused at once.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as caught:
        pull_ecapa(tmp_path / "ecapa")
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "cannot reach the model hub" in message
    assert "http://127.0.0.1:9" in message
    assert "copy the folder" in message
    assert not (tmp_path / "ecapa").exists(), "a failed pull must not leave a folder behind"
