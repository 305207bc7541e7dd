"""Where prompts come from (``VOICEAUTH_PROMPTS__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class PromptSettings(BaseModel):
    # Generated prompts (espeak-ng), rebuilt at start when missing.  None:
    # ``<data_dir>/prompts``.
    generated_dir: Path | None = None
    # An admin's own recordings, same layout (<lang>/<name>.wav), searched
    # first: a file there replaces the generated prompt of the same name.
    override_dir: Path | None = None
    # For FastAGI and the dialplan's own Playback(): copy the prompts (8 kHz
    # WAV) into Asterisk's sounds directory as voiceauth/<lang>/<name>.wav.
    # Only works when the worker shares a filesystem with Asterisk.
    asterisk_sounds_dir: Path | None = None
