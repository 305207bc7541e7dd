"""Prompts for Asterisk's own players: FastAGI's STREAM FILE and the dialplan's ``Playback()``."""

from __future__ import annotations

import logging
import os
import tempfile
import wave
from pathlib import Path
from typing import Sequence

from ivr.prompts.sources import SAMPLE_RATE, load_pcm

log = logging.getLogger(__name__)


def install_for_asterisk(directories: Sequence[Path], sounds_dir: Path) -> int:
    """Copy every prompt into ``sounds_dir/voiceauth/<lang>/<name>.wav`` as 8 kHz 16-bit mono WAV.

    Asterisk plays ``.wav`` only at 8 kHz, so recordings at studio rates are
    converted. Earlier directories win (the override first), as for calls
    the worker plays itself. Files are replaced atomically so Asterisk never
    plays half a file. Returns how many files were written.
    """
    chosen: dict[tuple[str, str], Path] = {}
    for root in reversed([Path(d) for d in directories]):
        if not root.is_dir():
            continue
        for wav in sorted(root.glob("*/*.wav")):
            chosen[(wav.parent.name, wav.stem)] = wav
    written = 0
    for (language, name), source in sorted(chosen.items()):
        pcm = load_pcm(source)
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
