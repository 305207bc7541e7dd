#!/usr/bin/env python
"""Attack-defence benchmark on the real recordings in ../shared/data (never copied into the project).

For each defence of issue 8, the detection rate on simulated attacks, the
false-alarm rate on genuine callers, and the CPU cost of one check on one core:

* liveness  - digit-string challenge against the caller's own digit templates (FSDD)
* replay    - fingerprints of earlier calls against a simulated loudspeaker replay
* spoof     - AASIST synthetic-voice risk on telephone audio (espeak-ng synthetic speech)
* watchlist - 1:N screen of a caller against a fraudster list of real speakers

Everything goes through the telephone channel (voiceprints/audio/telephone.py).

    OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/bench_attacks.py [--data ../shared/data]
        [--only liveness,replay,spoof,watchlist] [--json bench-attacks.json] [--cache DIR]

Slow parts (AASIST scores, embeddings) are cached under --cache, so re-running
a section to look at another threshold takes seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceprints.audio.clip import AudioClip  # noqa: E402
from voiceprints.audio.io import read_audio  # noqa: E402
from voiceprints.audio.replay_sim import simulate_replay  # noqa: E402
from voiceprints.audio.telephone import telephone_channel  # noqa: E402

FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


# --- data ----------------------------------------------------------------------
class Data:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows = list(csv.DictReader((root / "manifest.csv").open()))

    def librispeech(self, role: str) -> list[tuple[str, Path]]:
        return [(r["speaker"], self.root / r["path"]) for r in self.rows if r["role"] == role]

    def digit(self, digit: int, speaker: str, take: int) -> AudioClip:
        data, rate = sf.read(self.root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav", dtype="float32")
        return AudioClip(data if data.ndim == 1 else data.mean(axis=1), rate)

    def digit_string(self, digits: str, speaker: str, takes: list[int], rng: np.random.Generator) -> AudioClip:
        """One speaker's isolated digits joined into a string, with 0-250 ms of low noise between them
        (a caller reading digits, sometimes running them together), at 8 kHz before the channel."""
        parts = [np.zeros(800, np.float32)]
        for ch, take in zip(digits, takes):
            parts.append(self.digit(int(ch), speaker, take).samples)
            parts.append((rng.standard_normal(int(rng.integers(0, 2000))) * 1e-3).astype(np.float32))
        return AudioClip(np.concatenate(parts), 8000)


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def time_per_call(fn: Callable[[], object], repeat: int = 20) -> tuple[float, float]:
    """Median and p95 wall time in ms of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


# --- synthetic speech (espeak-ng) ----------------------------------------------------
ESPEAK_VOICES = ("en-us+f2", "en+m3", "en-gb+f4", "en-gb-scotland+m1", "en-029+f3", "en-us+m7",
                 "es+f1", "es+m2", "es-419+f3", "es-419+m4", "en+klatt", "es+Alicia")
ESPEAK_TEXTS = (
    "My account number is four five seven two, and I would like to check my balance today.",
    "I am calling about the payment I made last week, it has not arrived yet.",
    "Please transfer me to someone who can help with my credit card statement.",
    "Quisiera saber el saldo de mi cuenta y los movimientos de esta semana.",
    "Llamo porque mi tarjeta nueva todavía no ha llegado a mi casa.",
)


def espeak_clips() -> list[AudioClip]:
    from ivr.synth import Voice, espeak

    clips = []
    for i, voice in enumerate(ESPEAK_VOICES):
        for j, text in enumerate(ESPEAK_TEXTS):
            clips.append(espeak(Voice(voice, voice, 30 + (7 * i + 11 * j) % 50, 140 + (13 * i + 5 * j) % 40), text))
    return clips


# --- spoof ---------------------------------------------------------------------------
def bench_spoof(data: Data, cache: Path) -> dict[str, object]:
    import torch

    from voiceprints.spoof.detector import SpoofDetector

    torch.set_num_threads(1)
    detector = SpoofDetector.load(threshold=0.0, max_windows=1)
    path = cache / "spoof_scores.json"
    scores: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}
    rng = np.random.default_rng(8)

    def run(name: str, clips: Callable[[], list[AudioClip]]) -> list[float]:
        if name not in scores:
            t0 = time.time()
            scores[name] = [float(np.mean(detector.bonafide_logits(c))) for c in clips()]
            path.write_text(json.dumps(scores))
            print(f"  spoof: {name}: {len(scores[name])} clips in {time.time() - t0:.0f} s", file=sys.stderr)
        return scores[name]

    genuine_ls = run("genuine_librispeech", lambda: [telephone_channel(read_audio(p))
                                                     for _, p in data.librispeech("eval") + data.librispeech("cohort")])
    genuine_fsdd = run("genuine_fsdd", lambda: [
        telephone_channel(data.digit_string("0123456789", s, [t] * 10, rng)) for s in FSDD_SPEAKERS for t in range(0, 50, 5)])
    synthetic = run("synthetic_espeak", lambda: [telephone_channel(c) for c in espeak_clips()])
    replayed = run("replay_librispeech", lambda: [simulate_replay(read_audio(p), rng) for _, p in data.librispeech("eval")])
    genuine = np.array(genuine_ls + genuine_fsdd)
    synth = np.array(synthetic)
    # Threshold: flag below it; at most 1 % of genuine callers flagged.
    threshold = float(np.quantile(genuine, 0.01))
    default_flag = float(np.mean(genuine < 0.0))
    clip = telephone_channel(read_audio(data.librispeech("eval")[0][1]))
    ms1, p95_1 = time_per_call(lambda: detector.score(clip), repeat=5)
    detector2 = SpoofDetector(detector.model, 0.0, max_windows=2)
    ms2, _ = time_per_call(lambda: detector2.score(clip), repeat=3)
    return {
        "genuine_trials": len(genuine), "synthetic_trials": len(synth), "replay_trials": len(replayed),
        "genuine_median": float(np.median(genuine)), "synthetic_median": float(np.median(synth)),
        "replay_median": float(np.median(replayed)),
        "threshold_for_1pct_false_flags": threshold,
        "false_flags_at_threshold": float(np.mean(genuine < threshold)),
        "synthetic_detected_at_threshold": float(np.mean(synth < threshold)),
        "replay_detected_at_threshold": float(np.mean(np.array(replayed) < threshold)),
        "false_flags_at_default_0": default_flag,
        "synthetic_detected_at_default_0": float(np.mean(synth < 0.0)),
        "eer": _eer(genuine, synth),
        "ms_per_check_1_window": ms1, "ms_per_check_2_windows": ms2, "clip_s": clip.duration_s,
    }


def _eer(genuine: np.ndarray, attack: np.ndarray) -> float:
    """Equal error rate for scores where genuine is high and attack is low."""
    thresholds = np.unique(np.concatenate([genuine, attack]))
    frr = np.array([np.mean(genuine < t) for t in thresholds])
    far = np.array([np.mean(attack >= t) for t in thresholds])
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


SECTIONS: dict[str, Callable[[Data, Path], dict[str, object]]] = {
    "spoof": bench_spoof,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("VOICEAUTH_DATA_DIR", "/tmp/voiceauth-bench")) / "bench-attacks")
    args = parser.parse_args()
    if not (args.data / "manifest.csv").exists():
        sys.exit(f"no recordings at {args.data} (expected manifest.csv there); pass --data")
    args.cache.mkdir(parents=True, exist_ok=True)
    data = Data(args.data)
    results = {}
    for name in args.only.split(","):
        t0 = time.time()
        results[name] = SECTIONS[name](data, args.cache)
        print(f"== {name} ({time.time() - t0:.0f} s)", file=sys.stderr)
        print(json.dumps({name: results[name]}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
