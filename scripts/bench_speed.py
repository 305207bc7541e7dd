#!/usr/bin/env python
"""Speed benchmark: embedding real-time factor, verify latency, 1:N identification, storage cost.

    .venv/bin/python scripts/bench_speed.py [--data ../shared/data] [--sizes 10000,100000,1000000]

Uses real LibriSpeech speech from ../shared/data when present, else espeak-ng speech.
Timings are wall-clock on this machine; each figure is a median over repeats after warm-up.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceprints.audio.clip import AudioClip  # noqa: E402
from voiceprints.audio.io import read_audio  # noqa: E402
from voiceprints.audio.resample import resample  # noqa: E402
from voiceprints.audio.telephone import telephone_channel  # noqa: E402


def speech_clips(data: Path, n: int) -> list[AudioClip]:
    if (data / "manifest.csv").exists():
        rows = [r for r in csv.DictReader((data / "manifest.csv").open()) if r["role"] == "eval"][:n]
        return [read_audio(data / r["path"]) for r in rows]
    from tests.speech import SPEAKERS, utterances

    return utterances(SPEAKERS["alice"], n)


def ms(values: list[float]) -> str:
    v = sorted(values)
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    return f"median {statistics.median(v) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (n={len(v)})"


def bench_embedding(clips: list[AudioClip]) -> None:
    import torch

    from voiceprints.embedding.ge2e import Ge2eEmbedder

    phone = [resample(telephone_channel(c), 16000) for c in clips]
    audio_s = sum(c.duration_s for c in phone)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        emb = Ge2eEmbedder(torch_threads=threads)
        emb.embed(phone[0])  # warm-up
        t0 = time.perf_counter()
        for c in phone:
            emb.embed(c)
        rtf = (time.perf_counter() - t0) / audio_s
        print(f"GE2E embedding, one stream, {threads} thread(s): RTF {rtf:.4f} ({audio_s:.0f} s of audio)")
    # Two single-threaded workers in parallel: the service's deployment model on 2 cores.
    torch.set_num_threads(1)
    emb = Ge2eEmbedder(torch_threads=1)
    emb.embed(phone[0])
    halves = [phone[0::2], phone[1::2]]
    t0 = time.perf_counter()
    workers = [threading.Thread(target=lambda cs=cs: [emb.embed(c) for c in cs]) for cs in halves]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rtf = (time.perf_counter() - t0) / audio_s
    print(f"GE2E embedding, two workers x 1 thread: aggregate RTF {rtf:.4f} (throughput {1 / rtf:.0f}x real time)")
    try:
        from voiceprints.embedding.fused import FusedEmbedder
        from voiceprints.embedding.seres2net import SeRes2NetEmbedder

        seres2net = SeRes2NetEmbedder(torch_threads=1)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"SE-Res2Net not measured: {exc}")
        return
    for name, model in (("SE-Res2Net", seres2net), ("GE2E + SE-Res2Net fused", FusedEmbedder([emb, seres2net]))):
        model.embed(phone[0])
        t0 = time.perf_counter()
        for c in phone:
            model.embed(c)
        rtf = (time.perf_counter() - t0) / audio_s
        print(f"{name} embedding, one stream, 1 thread: RTF {rtf:.4f}")


def bench_verify(clips: list[AudioClip], model: str) -> None:
    import torch

    from voiceprints.config import CoreConfig
    from voiceprints.engine import open_engine

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOICEAUTH_KEYS", "")
        config = CoreConfig(data_dir=Path(tmp))
        config.model.embedder = model  # type: ignore[assignment]
        # ~10 speakers are enrolled below: let the normaliser run, as it does in production (>= 20 callers).
        config.verification.min_cohort_size = 3
        engine = open_engine(config)
        # Enrol every eval speaker so AS-norm has a cohort, as in production.
        phone = [telephone_channel(c) for c in clips]
        for i in range(0, len(phone) - 3, 4):
            try:
                engine.enroll(f"spk{i}", phone[i:i + 3])
            except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                print(f"  (enrolment of spk{i} skipped: {exc})")
        probe = AudioClip(phone[3].samples[: 8000 * 4], 8000)  # ~3 s of net speech
        engine.verify("spk0", probe)  # warm-up
        times = []
        for _ in range(40):
            t0 = time.perf_counter()
            engine.verify("spk0", probe)
            times.append(time.perf_counter() - t0)
        net = engine.detector.net_speech_seconds(probe)
        # The fastest run is what an otherwise idle core gives; the median includes whatever else runs.
        print(f"verify decision ({engine.model_id}), {net:.1f} s net speech ({probe.duration_s:.1f} s audio), "
              f"1 thread: {ms(times)}, fastest {min(times) * 1000:.1f} ms; load average {os.getloadavg()[0]:.1f}")


def real_embeddings(clips: list[AudioClip]) -> np.ndarray:
    """GE2E embeddings of ``clips`` after the telephone channel and VAD, as callers would give them."""
    from voiceprints.audio.vad import SpeechDetector
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    embedder, detector = Ge2eEmbedder(torch_threads=1), SpeechDetector(2)
    return np.stack([embedder.embed(detector.speech_only(telephone_channel(c))) for c in clips])


def bench_identify(sizes: list[int], real: np.ndarray | None) -> None:
    """Top-5 over n voiceprints: time per query, exactness against a full float32 pass, memory.

    The population is GE2E-shaped (scripts/synthetic_voiceprints.py, fitted to
    the real embeddings when there are any). Half of the real embeddings are
    enrolled among the synthetic ones and the other half are the queries (the
    same speakers, other recordings), with 30 synthetic callers besides.
    """
    import torch

    from scripts.synthetic_voiceprints import caller_of, voiceprint_population
    from voiceprints.scoring.identify import IdentificationIndex

    one_core = os.environ.get("OPENBLAS_NUM_THREADS") == "1"
    if one_core:
        torch.set_num_threads(1)  # the int8 first pass runs in torch, the float32 one in OpenBLAS
    rng = np.random.default_rng(0)
    print(f"identification: {'one core' if one_core else 'all cores'}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    for n in sizes:
        m = voiceprint_population(n, 256, real=real, seed=n)
        enrolled = real[0::2] if real is not None else np.zeros((0, 256), np.float32)
        m[: len(enrolled)] = enrolled
        ids = [f"s{i}" for i in range(n)]
        queries = list(real[1::2]) if real is not None else []
        queries += [caller_of(m[i], rng) for i in rng.choice(n, 30, replace=False)]
        queries = [(q / np.linalg.norm(q)).astype(np.float32) for q in queries]
        for label, quantise_from in (("", None), (" (float32 only, before)", n + 1)):
            if quantise_from is not None and n < 1_000_000:
                continue  # the before-figure only where it matters
            kwargs = {} if quantise_from is None else {"quantise_from": quantise_from}
            index = IdentificationIndex.from_matrix("bench", ids, m, **kwargs)
            for q in queries[:3]:
                index.top_k(q, 5)  # warm-up
            times = []
            for _ in range(3 if quantise_from is None else 1):
                for q in queries:
                    t0 = time.perf_counter()
                    index.top_k(q, 5)
                    times.append(time.perf_counter() - t0)
            extra = ""
            if index.quantised:
                same, sizes_seen = 0, []
                for q in queries:
                    exact = np.argsort(-(m @ q), kind="stable")[:5]
                    same += [f"s{i}" for i in exact] == [sid for sid, _ in index.top_k(q, 5)]
                    sizes_seen.append(len(index._snap.quantised.top(m, q, 5)[0]))  # diagnostics only
                extra = (f"; int8 first pass: top-5 identical to float32 for {same}/{len(queries)} queries"
                         f" ({len(queries) - 30} real), rows rescored median {int(np.median(sizes_seen))}, "
                         f"max {max(sizes_seen)}")
            print(f"identify top-5 over {n:>9,} voiceprints{label}: {ms(times)}; "
                  f"vectors in RAM {index.nbytes() / 2**20:.0f} MiB{extra}")
            del index
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def bench_storage(count: int = 2000, pg_url: str | None = None) -> None:
    from voiceprints.config import CoreConfig
    from voiceprints.store.base import EnrolmentMeta
    from voiceprints.store.sql import open_store

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CoreConfig(data_dir=Path(tmp)))
        t0 = time.perf_counter()
        for i in range(count):
            v = rng.standard_normal(256).astype(np.float32)
            store.save_voiceprint(f"s{i}", "bench/ge2e", v / np.linalg.norm(v), EnrolmentMeta(3, 12.0, {}))
        write = (time.perf_counter() - t0) / count
        t0 = time.perf_counter()
        store.load_matrix("bench/ge2e")
        load = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).glob("voiceprints.db*"))
        print(f"store (SQLite): {size / count:.0f} bytes per voiceprint on disk (256-d, encrypted), "
              f"{write * 1000:.1f} ms per enrolment write, load of {count} for 1:N in {load * 1000:.0f} ms")
    if pg_url:
        bench_storage_postgresql(pg_url, count * 5)


def bench_storage_postgresql(url: str, count: int) -> None:
    """Bytes per voiceprint in PostgreSQL (tables with their indexes and TOAST), in a throw-away database."""
    import secrets as random_names

    import psycopg
    from sqlalchemy.engine import make_url

    from voiceprints.config import CoreConfig, StoreConfig
    from voiceprints.store.base import EnrolmentMeta
    from voiceprints.store.crypto import KeyRing
    from voiceprints.store.sql import open_store

    admin = make_url(url).set(drivername="postgresql")
    name = f"bench_storage_{random_names.token_hex(4)}"
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        os.environ["VOICEAUTH_BENCH_KEYS"] = KeyRing.generate().serialise().strip()
        with tempfile.TemporaryDirectory() as tmp:
            config = CoreConfig(data_dir=Path(tmp), store=StoreConfig(
                url=make_url(url).set(database=name).render_as_string(hide_password=False),
                key_env="VOICEAUTH_BENCH_KEYS"))
            rng = np.random.default_rng(2)
            with open_store(config) as store:
                t0 = time.perf_counter()
                for i in range(count):
                    v = rng.standard_normal(256).astype(np.float32)
                    store.save_voiceprint(f"{1000000 + i}", "bench/ge2e", v / np.linalg.norm(v),
                                          EnrolmentMeta(3, 12.0, {"consistency": 0.9, "min_snr_db": 25.0}))
                write = (time.perf_counter() - t0) / count
                with store.engine.connect() as conn:
                    size = conn.exec_driver_sql(
                        "SELECT pg_total_relation_size('voiceprints') + pg_total_relation_size('speakers')").scalar()
        print(f"store (PostgreSQL): {size / count:.0f} bytes per voiceprint ({count} voiceprints, tables, TOAST and "
              f"indexes), {write * 1000:.1f} ms per enrolment write")
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--skip", default="", help="comma list of: embedding,verify,identify,storage")
    ap.add_argument("--model", default="auto", help="embedder of the verify benchmark (auto: fused when available)")
    ap.add_argument("--pg-url", default=None, help="also measure storage in PostgreSQL (a throw-away database is "
                                                   "created through this URL, e.g. postgresql://postgres@127.0.0.1/test)")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    clips = speech_clips(args.data, 40)
    if "embedding" not in skip:
        bench_embedding(clips)
    if "verify" not in skip:
        bench_verify(clips, args.model)
    if "identify" not in skip:
        real = real_embeddings(clips) if (args.data / "manifest.csv").exists() else None
        bench_identify([int(s) for s in args.sizes.split(",")], real)
    if "storage" not in skip:
        bench_storage(pg_url=args.pg_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
