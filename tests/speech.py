"""Synthetic test speakers made with espeak-ng, so tests never need downloaded data.

Different espeak-ng voice variants, pitches and speeds act as different
speakers; they are different enough for GE2E to tell apart, which is all the
mechanics tests need (accuracy is measured by the benchmarks on real speech).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from ivr.synth import Voice, espeak
from voiceprints.audio.clip import AudioClip

SENTENCES = (
    "My account number is four five seven two, and I would like to check my balance today.",
    "I am calling about the payment I made last week, it has not arrived yet.",
    "Please transfer me to someone who can help with my credit card statement.",
    "The weather has been lovely this morning, so I went for a long walk by the river.",
    "I would like to update the address on my account because I moved last month.",
    "Could you tell me when my new card will be delivered to my home?",
    "Yesterday I tried to log in to the website but the password did not work.",
    "My voice is my password, please verify me and let me speak to an agent.",
)


Speaker = Voice


SPEAKERS = {
    "alice": Speaker("alice", "en-us+f2", 70, 150),
    "bob": Speaker("bob", "en+m3", 35, 165),
    "carol": Speaker("carol", "en-gb+f4", 60, 140),
    "dave": Speaker("dave", "en-gb-scotland+m1", 45, 175),
    "erin": Speaker("erin", "en-029+f3", 80, 155),
    "frank": Speaker("frank", "en-us+m7", 25, 145),
}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synth(speaker: Speaker, text: str, sample_rate: int = 16000, cache_dir: Path | None = None) -> AudioClip:
    """Speak ``text`` in ``speaker``'s voice; returns mono float audio at ``sample_rate``."""
    key = hashlib.sha1(f"{speaker}|{text}|{sample_rate}".encode()).hexdigest()[:16]
    cached = cache_dir / f"{key}.wav" if cache_dir else None
    if cached is not None and cached.exists():
        data, rate = sf.read(cached, dtype="float32")
        return AudioClip(data, rate)
    spoken = espeak(speaker, text)
    data, rate = spoken.samples, spoken.sample_rate
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = np.gcd(rate, sample_rate)
        data = resample_poly(data, sample_rate // g, rate // g).astype(np.float32)
    # Pad with a little low-level noise on both sides, as a real answer would have.
    rng = np.random.default_rng(int(key, 16) % 2**32)
    pad = (rng.standard_normal(int(0.3 * sample_rate)) * 1e-3).astype(np.float32)
    data = np.concatenate([pad, data, pad])
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        sf.write(cached, data, sample_rate, subtype="PCM_16")
    return AudioClip(data, sample_rate)


def utterances(speaker: Speaker, count: int, sample_rate: int = 16000, cache_dir: Path | None = None,
               offset: int = 0) -> list[AudioClip]:
    return [synth(speaker, SENTENCES[(offset + i) % len(SENTENCES)], sample_rate, cache_dir) for i in range(count)]
