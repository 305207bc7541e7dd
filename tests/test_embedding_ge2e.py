"""The built-in GE2E embedder: tells synthetic speakers apart at any input rate; traceable model_id."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding import Embedder, Ge2eEmbedder
from voiceprints.errors import CorruptAudioError, EmptyAudioError


@pytest.fixture(scope="module")
def ge2e() -> Ge2eEmbedder:
    return Ge2eEmbedder()


@pytest.fixture(scope="module")
def voices(utterances_of) -> dict[str, list[AudioClip]]:
    # alice, bob and erin are espeak voices that differ in variant, pitch and
    # speed; three different sentences each.
    return {name: utterances_of(name, 3) for name in ("alice", "bob", "erin")}


def test_it_is_an_embedder_with_256_dimensions(ge2e):
    assert isinstance(ge2e, Embedder)
    assert ge2e.dim == 256


def test_vectors_are_unit_length_float32(ge2e, utterances_of):
    vector = ge2e.embed(utterances_of("alice", 1)[0])
    assert vector.shape == (256,)
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_same_speaker_different_sentences_score_clearly_above_different_speakers(ge2e, voices):
    vectors = {name: ge2e.embed_batch(clips) for name, clips in voices.items()}
    sentences = range(3)
    genuine = [float(vectors[n][i] @ vectors[n][j])
               for n in vectors for i, j in itertools.combinations(sentences, 2)]
    impostor = [float(vectors[a][i] @ vectors[b][j])
                for a, b in itertools.combinations(vectors, 2)
                for i, j in itertools.permutations(sentences, 2)]
    assert len(genuine) == 9 and len(impostor) == 18
    # Every genuine pair beats every impostor pair, with room to spare
    # (measured: genuine >= 0.91, impostor <= 0.74 for these voices).
    assert min(genuine) - max(impostor) > 0.1, (sorted(genuine), sorted(impostor))


def test_telephone_rate_audio_is_resampled_and_still_recognised(ge2e, say, voices):
    narrowband = say("alice", "I would like to hear my balance and pay my bill.", 8000)
    assert narrowband.sample_rate == 8000
    vector = ge2e.embed(narrowband)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    to_alice = [float(vector @ v) for v in ge2e.embed_batch(voices["alice"])]
    to_bob = [float(vector @ v) for v in ge2e.embed_batch(voices["bob"])]
    assert min(to_alice) - max(to_bob) > 0.1, (to_alice, to_bob)


def test_embedding_the_same_audio_twice_gives_the_same_vector(ge2e, voices):
    clip = voices["bob"][0]
    np.testing.assert_array_equal(ge2e.embed(clip), ge2e.embed(clip))


def test_clip_shorter_than_one_window_still_embeds(ge2e, voices):
    clip = voices["alice"][0]
    half_second = AudioClip(clip.samples[8000:16000], 16000)
    vector = ge2e.embed(half_second)
    assert vector.shape == (256,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_empty_audio_is_refused_with_a_clear_error(ge2e):
    with pytest.raises(EmptyAudioError, match="empty"):
        ge2e.embed(AudioClip(np.zeros(0, dtype=np.float32), 16000))
    with pytest.raises(EmptyAudioError):
        ge2e.embed_batch([AudioClip(np.zeros(16000, dtype=np.float32), 16000),
                          AudioClip(np.zeros(0, dtype=np.float32), 8000)])


def test_nan_samples_are_refused_instead_of_becoming_a_nan_voiceprint(ge2e):
    samples = np.full(16000, 0.1, dtype=np.float32)
    samples[100] = np.nan
    with pytest.raises(CorruptAudioError, match="NaN"):
        ge2e.embed(AudioClip(samples, 16000))


def test_batch_gives_resemblyzers_own_embed_utterance_vectors(ge2e, voices):
    """embed_batch is a batched re-implementation; it must agree with the reference per clip."""
    from resemblyzer import VoiceEncoder

    reference = VoiceEncoder(device="cpu", verbose=False)
    long = AudioClip.concatenate(voices["erin"])
    short = AudioClip(voices["alice"][1].samples[:12000], 16000)
    # Exactly one 1.6 s window, and one sample more (the window-count boundary).
    exact = AudioClip(voices["bob"][0].samples[:25600], 16000)
    exact_plus = AudioClip(voices["bob"][0].samples[:25601], 16000)
    clips = [voices["alice"][0], short, long, exact, exact_plus, voices["bob"][2]]
    batch = ge2e.embed_batch(clips)
    assert batch.shape == (len(clips), 256) and batch.dtype == np.float32
    for clip, row in zip(clips, batch):
        expected = reference.embed_utterance(clip.samples)
        np.testing.assert_allclose(row, expected, atol=1e-5)
        np.testing.assert_allclose(row, ge2e.embed(clip), atol=1e-5)


def test_batch_of_nothing_is_an_empty_matrix(ge2e):
    assert ge2e.embed_batch([]).shape == (0, 256)


def test_model_id_names_the_resemblyzer_version_and_the_weights_hash(ge2e):
    import importlib.metadata

    package = Path(list(importlib.util.find_spec("resemblyzer").submodule_search_locations)[0])
    weights = package / "pretrained.pt"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    version = importlib.metadata.version("resemblyzer")
    assert ge2e.model_id == f"ge2e/resemblyzer-{version}/{sha[:12]}"
    assert Ge2eEmbedder().model_id == ge2e.model_id
