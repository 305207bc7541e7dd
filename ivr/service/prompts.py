"""Where the worker's prompts come from: an admin's recordings first, then the generated set.

Admins replace prompts by dropping a WAV of the same name into the override
directory (``<lang>/<name>.wav``, any rate, mono or stereo); nothing else
changes.  The generated set (espeak-ng, ``ivr prompts build``) is made at start
when it is missing, so a fresh install speaks out of the box.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import wave
from pathlib import Path
from typing import Callable, Sequence

from ivr.transports.audiosocket import SAMPLE_RATE, DirectoryPromptSource

log = logging.getLogger(__name__)

PromptBuilder = Callable[[Path], object]
"""``build(out_dir)``: writes ``out_dir/<lang>/<name>.wav`` (the lead's ``ivr.prompts.build_prompts``)."""


class LayeredPromptSource:
    """A :class:`~ivr.transports.audiosocket.PromptSource` over several directories, first match wins."""

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


def install_for_asterisk(directories: Sequence[Path], sounds_dir: Path) -> int:
    """Copy every prompt into ``sounds_dir/voiceauth/<lang>/<name>.wav`` as 8 kHz 16-bit mono WAV.

    For FastAGI's STREAM FILE and the dialplan's own ``Playback()``: Asterisk
    plays ``.wav`` only at 8 kHz, so recordings at studio rates are converted.
    Earlier directories win (the override first), like for AudioSocket calls.
    Files are replaced atomically so Asterisk never plays half a file.
    Returns how many files were written.
    """
    chosen: dict[tuple[str, str], Path] = {}
    for root in reversed([Path(d) for d in directories]):
        if not root.is_dir():
            continue
        for wav in sorted(root.glob("*/*.wav")):
            chosen[(wav.parent.name, wav.stem)] = wav
    written = 0
    for (language, name), source in sorted(chosen.items()):
        pcm = DirectoryPromptSource._load(source)
        if pcm is None:
            continue
        target_dir = sounds_dir / "voiceauth" / language
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{name}.wav"
        fd, tmp = tempfile.mkstemp(dir=target_dir, suffix=".tmp")
        os.close(fd)
        with wave.open(tmp, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(pcm)
        os.chmod(tmp, 0o644)  # Asterisk runs as its own user
        os.replace(tmp, target)
        written += 1
    log.info("installed %d prompts into %s", written, sounds_dir / "voiceauth")
    return written
