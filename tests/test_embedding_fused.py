"""Two speaker models as one embedder: how fused vectors are laid out, named and scored."""

from __future__ import annotations

import numpy as np
import pytest

from voiceprints.audio.telephone import telephone_channel
from voiceprints.embedding.base import layout_of
from voiceprints.embedding.fused import FusedEmbedder
from voiceprints.scoring.cosine import cosine


@pytest.fixture(scope="module")
def fused():
    from voiceprints.embedding.ge2e import Ge2eEmbedder
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    return FusedEmbedder([Ge2eEmbedder(), SeRes2NetEmbedder()])


def test_a_fused_vector_is_each_models_vector_side_by_side(fused, utterances_of):
    ge2e, seres2net = fused.parts
    clip = telephone_channel(utterances_of("carol", 1)[0])
    vector = fused.embed(clip)
    assert fused.dim == 256 + 512 and layout_of(fused) == (256, 512) and vector.shape == (768,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vector[:256] * np.sqrt(2), ge2e.embed(clip), atol=1e-5)
    np.testing.assert_allclose(vector[256:] * np.sqrt(2), seres2net.embed(clip), atol=1e-5)


def test_the_plain_cosine_of_fused_vectors_is_the_mean_of_the_models_cosines(fused, utterances_of):
    a, b = (fused.embed(telephone_channel(c)) for c in (utterances_of("dave", 1)[0], utterances_of("erin", 1)[0]))
    per_model = [cosine(a[:256], b[:256]), cosine(a[256:], b[256:])]
    assert cosine(a, b) == pytest.approx(np.mean(per_model), abs=1e-5)


def test_the_model_id_names_both_models_so_upgrading_either_needs_reenrolment(fused):
    ge2e, seres2net = fused.parts
    assert fused.model_id == f"fused/{ge2e.model_id}+{seres2net.model_id}"
    assert len(fused.model_id) <= 128  # fits the store's model_id column


def test_batch_and_single_embeddings_agree(fused, utterances_of):
    clips = [telephone_channel(c) for c in utterances_of("alice", 2)]
    np.testing.assert_allclose(fused.embed_batch(clips), np.stack([fused.embed(c) for c in clips]), atol=1e-5)


def test_fusing_needs_two_models(fused):
    with pytest.raises(ValueError, match="at least two"):
        FusedEmbedder(fused.parts[:1])
