#!/usr/bin/env python
"""Bulk enrolment rate: accounts per minute of ``ivr enroll --manifest``, run as an admin runs it.

    .venv/bin/python scripts/bench_bulk_enrol.py [--accounts 300] [--processes 1] [--stereo]
                                                 [--data ../shared/data] [--store-url postgresql+psycopg://...]

Recordings: real LibriSpeech speech from ../shared/data when present (else
espeak-ng speech), passed through the telephone channel (8 kHz) and written
to a temporary folder outside the project; each account gets three of one
speaker's recordings (with --stereo: one stereo call per account, the
caller's three answers on the left channel and another speaker as the agent
on the right). Consent is recorded with ``ivr consent import``; then the
enrolment is timed, wall clock, including the model load of each process.
With --processes N the manifest is split in N parts enrolled side by side.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceprints.audio.clip import AudioClip  # noqa: E402
from voiceprints.audio.io import read_audio  # noqa: E402
from voiceprints.audio.telephone import telephone_channel  # noqa: E402


def speakers(data: Path) -> dict[str, list[AudioClip]]:
    """Speaker -> recordings: LibriSpeech eval speakers (10 x 10), else six espeak-ng voices."""
    if (data / "manifest.csv").exists():
        found: dict[str, list[AudioClip]] = {}
        for row in csv.DictReader((data / "manifest.csv").open()):
            if row["role"] == "eval" and row["path"].startswith("librispeech"):
                found.setdefault(row["speaker"], []).append(read_audio(data / row["path"]))
        return found
    from ivr.synth import Voice, espeak
    from voiceprints.audio.resample import resample

    voices = [Voice("v1", "en-us+f2", 70, 150), Voice("v2", "en+m3", 35, 165), Voice("v3", "en-gb+f4", 60, 140),
              Voice("v4", "en-gb-scotland+m1", 45, 175), Voice("v5", "en-029+f3", 80, 155)]
    texts = ["My account number is four five seven two, and I would like to check my balance today.",
             "I am calling about the payment I made last week, it has not arrived yet.",
             "Please transfer me to someone who can help with my credit card statement.",
             "I would like to update the address on my account because I moved last month.",
             "Could you tell me when my new card will be delivered to my home?"]
    return {v.name: [resample(espeak(v, t), 16000) for t in texts] for v in voices}


def write_calls(folder: Path, voices: dict[str, list[AudioClip]], accounts: int, stereo: bool) -> Path:
    """The recordings and the manifest; accounts cycle through every 3-recording combination of each speaker."""
    phone = {name: [telephone_channel(c) for c in clips] for name, clips in voices.items()}
    names = sorted(phone)
    combos = itertools.cycle([(name, combo) for name in names
                              for combo in itertools.combinations(range(len(phone[name])), 3)])
    rows = []
    written: dict[tuple[str, int], Path] = {}
    for i in range(accounts):
        name, combo = next(combos)
        if stereo:
            agent = names[(names.index(name) + 1) % len(names)]
            left = np.concatenate([phone[name][j].samples for j in combo])
            right = np.concatenate([phone[agent][j % len(phone[agent])].samples for j in combo])
            n = max(len(left), len(right))
            path = folder / f"call{i:06d}.wav"
            sf.write(path, np.stack([np.pad(left, (0, n - len(left))), np.pad(right, (0, n - len(right)))], 1), 8000)
            rows.append((f"{100000 + i}", path.name, "left"))
            continue
        files = []
        for j in combo:
            if (name, j) not in written:
                written[(name, j)] = folder / f"{name}-{j}.wav"
                sf.write(written[(name, j)], phone[name][j].samples, 8000, subtype="PCM_16")
            files.append(written[(name, j)].name)
        rows.append((f"{100000 + i}", ";".join(files), ""))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["account", "files", "channel"])
        writer.writerows(rows)
    return manifest


def split(manifest: Path, parts: int) -> list[Path]:
    lines = manifest.read_text().splitlines()
    out = []
    for k in range(parts):
        path = manifest.with_name(f"part{k}.csv")
        path.write_text("\n".join([lines[0], *lines[1 + k::parts]]) + "\n")
        out.append(path)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--stereo", action="store_true")
    ap.add_argument("--store-url", default=None, help="default: SQLite in a temporary data directory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        folder = Path(tmp)
        voices = speakers(args.data)
        manifest = write_calls(folder, voices, args.accounts, args.stereo)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "VOICEAUTH_DATA_DIR": str(folder / "data")}
        if args.store_url:
            env["VOICEAUTH_STORE__URL"] = args.store_url
            for line in subprocess.run([sys.executable, "-m", "ivr.cli.app", "keys", "generate"], env=env,
                                       capture_output=True, text=True, check=True).stdout.splitlines():
                if line and not line.startswith("#"):
                    name, value = line.split("=", 1)
                    env[name] = value
        ivr = [sys.executable, "-m", "ivr.cli.app"]
        subprocess.run([*ivr, "consent", "import", str(manifest), "--channel", "bench"], env=env, check=True,
                       capture_output=True)
        parts = split(manifest, args.processes) if args.processes > 1 else [manifest]
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        runs = [subprocess.Popen([*ivr, "enroll", "--manifest", str(p), "--no-progress", "--no-notify", "--json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in parts]
        reports = []
        for run in runs:
            out, err = run.communicate()
            if run.returncode not in (0, 6):
                print(err, file=sys.stderr)
                return 1
            reports.append(json.loads(out))
        wall = time.perf_counter() - started
        enrolled = sum(r["enrolled"] for r in reports)
        failed = sum(r["failed"] for r in reports)
        per_row = [json.loads(line)["seconds"] for p in parts
                   for line in p.with_name(p.name + ".progress").read_text().splitlines()[1:]]
        source = "LibriSpeech" if (args.data / "manifest.csv").exists() else "espeak-ng"
        for r in reports:  # first, so the summary is the last line
            for f in r["failures"][:5]:
                print(f"  failed line {f['line']}: {f['code']}: {f['detail']}")
        print(f"bulk enrolment, {args.accounts} accounts ({source}, telephone 8 kHz, "
              f"{'one stereo call' if args.stereo else 'three recordings'} each), {args.processes} process(es), "
              f"store {'PostgreSQL' if args.store_url else 'SQLite'}: {enrolled} enrolled, {failed} failed in "
              f"{wall:.1f} s = {enrolled / wall * 60:.0f} accounts/min (model load included); per account median "
              f"{statistics.median(per_row) * 1000:.0f} ms; load average {load0:.2f} -> {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
