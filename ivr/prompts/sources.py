"""Where a call's prompts come from: an admin's recordings first, then the generated set.

Every transport plays prompts from a :class:`PromptSource`: 8 kHz signed
16-bit mono PCM by name and language, the telephone's own rate, so the
real-time streaming loops do no DSP. Admins replace a prompt by dropping a
WAV of the same name into the override directory (``<lang>/<name>.wav``, any
rate, mono or stereo); nothing else changes. The generated set (espeak-ng,
``ivr prompts build``) is made at start when it is missing, so a fresh
install speaks out of the box.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Callable, Protocol, Sequence

# The rate of every prompt a source returns: narrowband telephony.
SAMPLE_RATE = 8000

_PROMPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

PromptBuilder = Callable[[Path], object]
"""``build(out_dir)``: writes ``out_dir/<lang>/<name>.wav`` (:func:`ivr.prompts.build.build_prompts`)."""


class PromptNotFound(LookupError):
    """A prompt has no audio for the call's language."""


class PromptSource(Protocol):
    async def audio(self, name: str, language: str) -> bytes | None:
        """The prompt as 8 kHz signed 16-bit little-endian mono PCM, or None if there is none."""
        ...


class DirectoryPromptSource:
    """Prompts from ``root/<language>/<name>.wav``, converted to 8 kHz slin16 once and cached.

    Recorded prompts come at studio rates (16-48 kHz); resampling once here
    keeps the real-time streaming loop free of DSP work.
    """

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)
        self._cache: dict[tuple[str, str], bytes | None] = {}

    async def audio(self, name: str, language: str) -> bytes | None:
        if not _PROMPT_NAME.match(name) or not _PROMPT_NAME.match(language):
            return None  # never let a name walk out of the prompt directory
        key = (language, name)
        if key not in self._cache:
            self._cache[key] = await asyncio.to_thread(load_pcm, self._root / language / f"{name}.wav")
        return self._cache[key]


def load_pcm(path: Path) -> bytes | None:
    """A WAV file as 8 kHz slin16 mono, or None when there is no such file."""
    if not path.is_file():
        return None
    from math import gcd

    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g)
    pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes()


class LayeredPromptSource:
    """A :class:`PromptSource` over several directories, first match wins."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self.directories = [Path(d) for d in directories]
        self._sources = [DirectoryPromptSource(d) for d in self.directories]

    async def audio(self, name: str, language: str) -> bytes | None:
        for source in self._sources:
            pcm = await source.audio(name, language)
            if pcm is not None:
                return pcm
        return None


def prompt_directories(generated: Path, override: Path | None) -> list[Path]:
    return [override, generated] if override is not None else [generated]


def _default_builder() -> PromptBuilder:
    from ivr.prompts.build import build_prompts  # espeak-ng catalogue; imported only when needed

    return build_prompts


async def ensure_generated(directory: Path, builder: PromptBuilder | None = None) -> None:
    """Make sure the generated prompt set exists (the builder skips or rewrites; it is deterministic)."""
    build = builder or _default_builder()
    directory.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(build, directory)
