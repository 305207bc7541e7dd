#!/usr/bin/env python
"""Accuracy benchmark on the real recordings in ../shared/data (never copied into the project).

Conditions: {LibriSpeech eval+cohort, FSDD digit strings} x {original, telephone} x {pairs, enrol3, engine}
x {cosine, AS-norm, centred AS-norm, centred z-norm}. Every clip goes through the engine's quality gate and
embedder (voiceprints/evaluation); *engine* enrols through the engine and decides every claim at the shipped
thresholds. Prints the README's Markdown tables and writes JSON.

    .venv/bin/python scripts/bench_accuracy.py [--data ../shared/data] [--json bench-accuracy.json]
        [--model auto|ge2e|seres2net|fused] [--protocols pairs,enrol3,engine] [--datasets librispeech,fsdd]

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
from voiceprints.embedding.select import load_embedder  # noqa: E402
from voiceprints.engine import VoiceprintEngine  # noqa: E402
from voiceprints.evaluation.run import evaluate  # noqa: E402
from voiceprints.scoring.normalise import METHODS  # noqa: E402
from voiceprints.store.sql import open_store  # noqa: E402

LABELS = {"none": "cosine", "asnorm": "AS-norm", "centred-asnorm": "centred + AS-norm",
          "centred-znorm": "centred z-norm"}


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


# Deployment simulation: the cohort's single recordings (>= 12 s) cut into four equal pieces; the first
# three enrol, the fourth claims, and every enrolled speaker is every other's impostor; the population is
# the enrolled speakers only, as in a deployment. Pieces are short (~2-3 s of speech each), so this set runs
# with enrolment and verification speech minimums lowered to 5 s / 2 s (SPLIT_OVERRIDES). It exists to
# check how well the population's impostor tail predicts the FAR of claims, on ~30,000 impostor claims.
SPLIT_MIN_SECONDS = 12.0
SPLIT_OVERRIDES = {"min_total_speech_s": 5.0, "min_speech_s": 2.0}


def split_manifest(data: Path, out: Path) -> Path:
    rows = []
    for r in csv.DictReader((data / "manifest.csv").open()):
        if r["role"] != "cohort" or float(r["seconds"]) < SPLIT_MIN_SECONDS:
            continue
        x, rate = sf.read(data / r["path"], dtype="float32")
        quarter = len(x) // 4
        for k in range(4):
            wav = out / "split" / f"{r['speaker']}_{k}.wav"
            if not wav.exists():
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(wav, x[k * quarter:(k + 1) * quarter], rate, subtype="PCM_16")
            rows.append({"path": str(wav), "speaker": r["speaker"], "utterance_id": f"{r['speaker']}_{k}",
                         "role": "eval"})
    return _write(out / "split.csv", rows)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "speaker", "utterance_id", "role"])
        w.writeheader()
        w.writerows(rows)
    return path


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--datasets", default="librispeech,fsdd,split")
    ap.add_argument("--protocols", default="pairs,enrol3,engine")
    ap.add_argument("--normalisations", default=",".join(METHODS))
    ap.add_argument("--model", default=None, help="auto, ge2e, seres2net or fused (default: the configured one)")
    args = ap.parse_args()
    if not (args.data / "manifest.csv").exists():
        print(f"no recordings at {args.data} (expected ../shared/data/manifest.csv); nothing to measure")
        return 1
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    core = settings.core()
    if args.model:
        core.model.embedder = args.model  # type: ignore[assignment]
    cache = settings.data_dir / "cache"
    embedder, store = load_embedder(core.model), open_store(core)
    engine = VoiceprintEngine(embedder, store, core)
    relaxed = core.model_copy(deep=True)
    relaxed.enrolment.min_total_speech_s = SPLIT_OVERRIDES["min_total_speech_s"]
    relaxed.verification.min_speech_s = SPLIT_OVERRIDES["min_speech_s"]
    engines = {"split": VoiceprintEngine(embedder, store, relaxed)}
    manifests = {"librispeech": lambda: librispeech_manifest(args.data, cache / "bench"),
                 "fsdd": lambda: fsdd_strings_manifest(args.data, cache / "bench"),
                 "split": lambda: split_manifest(args.data, cache / "bench")}
    norms = args.normalisations.split(",")
    results, research, deployed = [], [], []
    for name in args.datasets.split(","):
        manifest = manifests[name]()
        for channel in ("original", "telephone"):
            for protocol in args.protocols.split(","):
                if name == "split" and protocol != "engine":
                    continue  # pieces of one recording: only the deployment view is meaningful
                t0 = time.perf_counter()
                res = evaluate(manifest, engines.get(name, engine), channel=channel, protocol=protocol,  # type: ignore[arg-type]
                               normalisations=norms, cache_dir=cache / "probes", progress=False)
                for c in res.conditions:
                    r, e = c.report, c.engine
                    label = f"| {name} | {channel} | {protocol} | {LABELS[c.normalisation]} "
                    if r is not None:
                        pts = [("n/a" if p.frr is None else f"{p.frr * 100:.2f}") +
                               ("" if p.frr is not None else f" ({p.observed_frr * 100:.1f})") for p in r.frr_at]
                        research.append(f"{label}| {r.eer * 100:.2f} | {r.min_dcf:.3f} | {pts[0]} | {pts[1]} "
                                        f"| {r.n_target}/{r.n_nontarget} |")
                    if e is not None:
                        used = e.thresholds.get(c.normalisation) or next(iter(e.thresholds.values()), {})
                        deployed.append(
                            f"{label}| {e.enrolled} | {_pct(e.genuine_accept_rate, 1)} | "
                            f"{_pct(e.genuine.rate(e.genuine.grey), 1)} | {_pct(e.far, 3)} ({e.impostor.accept}) | "
                            f"{_pct(e.far_upper_95(), 3)} | {e.genuine.scored}/{e.impostor.scored} | "
                            f"{e.genuine.gated + e.impostor.gated} | "
                            + ("" if not used else f"{used['accept']:.2f} / {used['reject']:.2f}")
                            + (f" (cosine fallback: {e.fallback_trials})" if e.fallback_trials else "") + " |")
                    print((research[-1] if r is not None and e is None else deployed[-1] if e else ""), flush=True)
                for note in res.notes:
                    print(f"  note ({name}, {channel}, {protocol}): {note}", flush=True)
                results.append(res.to_dict() | {"seconds": round(time.perf_counter() - t0, 1)})
    print(f"\nmodel {engine.model_id}\n")
    print("| data | channel | protocol | scoring | EER % | minDCF(0.01) | FRR@FAR1% | FRR@FAR0.1% | trials (tar/non) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(research))
    print("\n| data | channel | protocol | scoring | enrolled | genuine accepted % | genuine grey % | FAR % (FA) "
          "| FAR 95 % upper % | scored claims (gen/imp) | gated by quality | accept / reject thresholds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(deployed))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
