"""Prompts: an admin's recording of a name replaces the generated one, for callers and for Asterisk."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from ivr.prompts.sources import LayeredPromptSource, prompt_directories
from ivr.transports.asterisk.sounds import install_for_asterisk


def write_wav(path: Path, seconds: float, rate: int, value: float = 0.25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.full(int(seconds * rate), value) * 32767).astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


async def test_admin_recording_replaces_the_generated_prompt_of_the_same_name(tmp_path: Path):
    generated, override = tmp_path / "generated", tmp_path / "override"
    write_wav(generated / "es" / "verify-speak.wav", 1.0, 8000, value=0.1)
    write_wav(generated / "es" / "enter-account.wav", 1.0, 8000, value=0.1)
    write_wav(override / "es" / "verify-speak.wav", 0.5, 8000, value=0.5)
    source = LayeredPromptSource(prompt_directories(generated, override))
    replaced = np.frombuffer(await source.audio("verify-speak", "es"), dtype="<i2")
    kept = np.frombuffer(await source.audio("enter-account", "es"), dtype="<i2")
    assert len(replaced) == 4000 and abs(replaced.mean() / 32767 - 0.5) < 0.01
    assert len(kept) == 8000 and abs(kept.mean() / 32767 - 0.1) < 0.01


async def test_missing_prompts_and_names_outside_the_directory_give_nothing(tmp_path: Path):
    write_wav(tmp_path / "gen" / "en" / "x.wav", 0.1, 8000)
    write_wav(tmp_path / "secret.wav", 0.1, 8000)
    source = LayeredPromptSource(prompt_directories(tmp_path / "gen", None))
    assert await source.audio("nope", "en") is None
    assert await source.audio("x", "fr") is None
    assert await source.audio("../../secret", "en") is None
    assert await source.audio("secret", "..") is None


def test_prompts_are_installed_for_asterisk_as_8_khz_wav_with_the_override_winning(tmp_path: Path):
    generated, override, sounds = tmp_path / "generated", tmp_path / "override", tmp_path / "sounds"
    write_wav(generated / "en" / "verify-failed.wav", 1.0, 8000, value=0.1)
    write_wav(generated / "en" / "enroll-offer.wav", 1.0, 8000, value=0.1)
    write_wav(override / "en" / "verify-failed.wav", 2.0, 48000, value=0.4)  # a studio recording
    assert install_for_asterisk(prompt_directories(generated, override), sounds) == 2
    rate, samples = read_wav(sounds / "voiceauth" / "en" / "verify-failed.wav")
    assert rate == 8000 and len(samples) == 16000
    assert abs(np.median(samples) / 32767 - 0.4) < 0.01
    rate, samples = read_wav(sounds / "voiceauth" / "en" / "enroll-offer.wav")
    assert rate == 8000 and abs(np.median(samples) / 32767 - 0.1) < 0.01
    assert not list((sounds / "voiceauth" / "en").glob("*.tmp"))
