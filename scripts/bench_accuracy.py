#!/usr/bin/env python
"""Accuracy benchmark on the real recordings in ../shared/data (never copied into the project).

Conditions: {LibriSpeech eval+cohort, FSDD digit strings} x {original, telephone} x {pairs, enrol3}
x {cosine, AS-norm}. Prints a Markdown table (the one in the README) and writes JSON.

    .venv/bin/python scripts/bench_accuracy.py [--data ../shared/data] [--json bench-accuracy.json]

FSDD single digits (0.4 s) are too short for verification: each speaker's ten
digits of one take are concatenated into a 4-6 s string, like a caller reading
a number; those strings are written to the cache directory, not the project.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr.settings import Settings  # noqa: E402
from voiceprints.audio.vad import SpeechDetector  # noqa: E402
from voiceprints.embedding.select import load_embedder  # noqa: E402
from voiceprints.evaluation.run import evaluate  # noqa: E402


LABELS = {"none": "cosine", "asnorm": "AS-norm", "centred-asnorm": "centred + AS-norm"}


def librispeech_manifest(data: Path, out: Path) -> Path:
    rows = [r for r in csv.DictReader((data / "manifest.csv").open()) if r["role"] in ("eval", "cohort")]
    return _write(out / "librispeech.csv", [
        {"path": str((data / r["path"]).resolve()), "speaker": r["speaker"], "utterance_id": r["utterance_id"],
         "role": r["role"]} for r in rows])


def fsdd_strings_manifest(data: Path, out: Path) -> Path:
    takes: dict[tuple[str, str], dict[int, Path]] = defaultdict(dict)
    for r in csv.DictReader((data / "manifest.csv").open()):
        if r["role"] == "digits":
            digit, speaker, take = Path(r["path"]).stem.split("_")
            takes[(speaker, take)][int(digit)] = data / r["path"]
    rows = []
    gap = np.zeros(int(0.15 * 8000), dtype=np.float32)  # a short pause between digits, as when reading a number
    for (speaker, take), digits in sorted(takes.items()):
        if len(digits) < 10:
            continue
        wav = out / "fsdd" / f"{speaker}_{take}.wav"
        if not wav.exists():
            wav.parent.mkdir(parents=True, exist_ok=True)
            parts = []
            for d in range(10):
                x, rate = sf.read(digits[d], dtype="float32")
                parts += [x if x.ndim == 1 else x.mean(axis=1), gap]
            sf.write(wav, np.concatenate(parts), 8000, subtype="PCM_16")
        rows.append({"path": str(wav), "speaker": speaker, "utterance_id": f"{speaker}_{int(take):02d}", "role": "digits"})
    return _write(out / "fsdd_strings.csv", rows)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "speaker", "utterance_id", "role"])
        w.writeheader()
        w.writerows(rows)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--datasets", default="librispeech,fsdd")
    args = ap.parse_args()
    if not (args.data / "manifest.csv").exists():
        print(f"no recordings at {args.data} (expected ../shared/data/manifest.csv); nothing to measure")
        return 1
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    cache = settings.data_dir / "cache"
    embedder = load_embedder(settings.model)
    detector = SpeechDetector(settings.quality.vad_aggressiveness)
    manifests = {"librispeech": lambda: librispeech_manifest(args.data, cache / "bench"),
                 "fsdd": lambda: fsdd_strings_manifest(args.data, cache / "bench")}
    results = []
    print(f"model {embedder.model_id}\n")
    print("| data | channel | protocol | scoring | EER % | minDCF(0.01) | FRR@FAR1% | FRR@FAR0.1% | trials (tar/non) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        manifest = manifests[name]()
        for channel in ("original", "telephone"):
            for protocol in ("pairs", "enrol3"):
                t0 = time.perf_counter()
                res = evaluate(manifest, embedder, detector, channel=channel, protocol=protocol,  # type: ignore[arg-type]
                               normalisations=["none", "asnorm", "centred-asnorm"], cache_dir=cache / "embeddings",
                               top_n=settings.verification.cohort_top_n,
                               min_cohort_speakers=settings.verification.min_cohort_size, progress=False)
                for c in res.conditions:
                    r = c.report
                    pts = [("n/a" if p.frr is None else f"{p.frr * 100:.2f}") for p in r.frr_at]
                    print(f"| {name} | {channel} | {protocol} | {LABELS[c.normalisation]} "
                          f"| {r.eer * 100:.2f} | {r.min_dcf:.3f} | {pts[0]} | {pts[1]} | {r.n_target}/{r.n_nontarget} |",
                          flush=True)
                for note in res.notes:
                    print(f"| {name} | {channel} | {protocol} | | n/a | | | | {note} |")
                results.append(res.to_dict() | {"seconds": round(time.perf_counter() - t0, 1)})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
