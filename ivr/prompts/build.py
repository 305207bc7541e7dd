"""Generate the shipped prompt set with espeak-ng, reproducibly.

Output: ``<out>/<lang>/<name>.wav``, 8 kHz 16-bit mono (what both AudioSocket
and Asterisk's sound-file search expect). A prompt is regenerated only when
its text or voice changed (a hash in ``<out>/.built.json``), so starting the
service twice costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ivr.prompts.catalog import PROMPTS, VOICES
from ivr.synth import Voice, espeak
from voiceprints.audio.io import write_wav
from voiceprints.audio.resample import resample

RATE = 8000
STAMP = ".built.json"


def _digest(lang: str, text: str) -> str:
    return hashlib.sha1(f"{VOICES[lang]}|{text}".encode()).hexdigest()[:16]


def build_prompts(out_dir: Path, languages: tuple[str, ...] = ("en", "es")) -> int:
    """Write missing or changed prompts; returns how many were generated."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_path = out_dir / STAMP
    built: dict[str, str] = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    made = 0
    for name, texts in PROMPTS.items():
        for lang in languages:
            text = texts[lang]
            key, digest = f"{lang}/{name}", _digest(lang, text)
            target = out_dir / lang / f"{name}.wav"
            if built.get(key) == digest and target.exists():
                continue
            clip = resample(espeak(Voice(name, VOICES[lang], pitch=50, speed=150), text), RATE)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_wav(target, clip)
            built[key] = digest
            made += 1
    stamp_path.write_text(json.dumps(built, indent=1, sort_keys=True))
    return made
