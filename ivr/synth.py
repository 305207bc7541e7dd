"""Speech synthesis with espeak-ng: the shipped prompt set, demo voices and test speakers.

espeak-ng is a Debian package (installed by scripts/bootstrap.sh), deterministic
for a given voice/pitch/speed/text, and speaks Spanish and English — which is
what makes generated prompts and synthetic callers reproducible.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from voiceprints.audio.clip import AudioClip


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice variant with its own pitch (0-99) and speed (words per minute)."""

    name: str
    voice: str
    pitch: int = 50
    speed: int = 160


def espeak(voice: Voice, text: str) -> AudioClip:
    """Speak ``text``; returns the clip at espeak-ng's native rate (22,050 Hz)."""
    if shutil.which("espeak-ng") is None:
        raise SynthesisError("espeak-ng is not installed: run scripts/bootstrap.sh (Debian package espeak-ng)")
    try:
        wav = subprocess.run(
            ["espeak-ng", "-v", voice.voice, "-p", str(voice.pitch), "-s", str(voice.speed), "--stdout", text],
            check=True, capture_output=True, timeout=60,
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise SynthesisError(f"espeak-ng failed for voice {voice.voice}: {exc.stderr.decode(errors='replace')}") from None
    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return AudioClip(np.asarray(data, dtype=np.float32), rate)
