#!/usr/bin/env python3
"""How many simultaneous verification calls one worker sustains (decision p95 <= 1 s after enough speech).

Drives real calls through the lab Asterisk (scripts/lab) with sipp into a real
``ivr serve`` process, at several concurrency levels, and prints one row per
level: calls placed and answered, results, decision latency percentiles (from
the worker's "call end ... decision=" log lines: time from "enough speech
collected" to the decision), the worker's CPU (% of one core, from
/proc/<pid>/stat) and peak RSS.

    .venv/bin/python scripts/bench_load.py                    # levels 10 20 30 40
    .venv/bin/python scripts/bench_load.py --levels 5 10 --calls-per-level 2
    .venv/bin/python scripts/bench_load.py --burst            # every call of a level at once
    .venv/bin/python scripts/bench_load.py --twilio --levels 50 100   # Twilio Media Streams, no Asterisk
    .venv/bin/python scripts/bench_load.py --sip --levels 10 20       # the SIP endpoint (pyVoIP) dialled by Asterisk
    .venv/bin/python scripts/bench_load.py --workers 2 --population 100000 --levels 100 200 250

Asterisk mode needs root (the lab chroot), sipp, espeak-ng.  Every caller is the same
synthetic genuine speaker (the demo's voice, ``ivr.demo.ANA``), calling from a
number of its own and claiming an account of its own (extension 7NNNN gives
the account, so there is no keypad step; one authentication per account at a
time and replay detection are security rules, and no limit is raised), every
account enrolled with that voice.  Uses the shipped (generated) prompts, so
the worker also streams real prompt audio to every caller.  The worker, sipp
and the lab Asterisk it started are stopped at the end, also on Ctrl-C or
SIGTERM; a lab that was running before stays running.

``--workers 2``: two ``ivr serve`` processes on one PostgreSQL database (a
fresh one on the local server, dropped afterwards), with keys and secrets
from ``ivr keys generate``; the lab dialplan sends even accounts to the first
and odd ones to the second (what a TCP balancer would do).
``--population N``: N more voiceprints of other (synthetic) speakers in the
store, shaped like real ones: perturbations of a few espeak-ng voices' real
embeddings, per model part; decisions normalise against them as in a bank.

``--twilio``: the caller is the Twilio simulator (scripts/lab/twilio_caller.py)
speaking the Media Streams wire format to ``ivr serve`` with Twilio switched
on, over loopback: signed webhook, one stream per call with 20 ms μ-law
frames in real time, the shipped prompts played back with marks, the
``<Connect>`` action. Each concurrent caller claims an account of its own
(one authentication per account at a time is a security rule), all enrolled
with the same voice. The simulator runs in this process and takes CPU from
the same cores: the machine's load average is printed with each level.

``--sip``: sipp calls the lab Asterisk, whose dialplan dials the worker's SIP
endpoint (``ivr serve`` with ``VOICEAUTH_SIP__ENABLED``, registered to the lab
as ``voiceauth-sip``) with ``81<account>``: the media goes sipp -> Asterisk ->
pyVoIP's RTP threads -> the worker's loop. Each call claims an account of its
own (sipp injection file, in turn), all enrolled with the same voice, as in
the Twilio mode; the criterion is decision p95 <= 0.3 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.lab.asterisk import Lab  # noqa: E402
from scripts.lab.lifetime import running_lab  # noqa: E402
from scripts.lab.callers import render, speak, speech_file  # noqa: E402

# The synthetic population's base voices (never the caller's): espeak-ng variants.
POPULATION_VOICES = (("es+m1", 40), ("es+f2", 70), ("en-us+m3", 35), ("en-us+f4", 75), ("es-419+m4", 45),
                     ("pt+f1", 60), ("en+m2", 50), ("es+f5", 80))
IVR = Path(sys.executable).with_name("ivr")  # the command of the environment running this bench
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CALL_END = re.compile(r"call end \S+ .*flow=verify .*result=(?P<result>\S+) .*duration=(?P<dur>[\d.]+)s"
                       r"(?: decision=(?P<decision>[\d.]+)s)?")


@dataclass
class Level:
    concurrency: int
    placed: int
    answered: int
    passed: int
    other: dict[str, int]
    decision: list[float]
    durations: list[float]
    cpu_pct: float
    peak_rss_mb: float
    peak_in_progress: int
    system_cpu_pct: float
    wall_s: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def system_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def in_progress(http_port: int) -> int:
    """Calls the worker is handling now, from its own gauge."""
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=2).text
    except httpx.TransportError:
        return 0
    return int(sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("voiceauth_calls_in_progress{")))


def wait_ready(port: int, process: subprocess.Popen, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ivr serve exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("ivr serve did not become ready")


@dataclass
class Worker:
    process: subprocess.Popen
    http_port: int
    log: Path


def run_level(lab: Lab, workers: list[Worker], scenario: Path, work: Path, accounts: list[str],
              concurrency: int, calls: int, call_s: float, burst: bool = False, dial: str = "7") -> Level:
    """``calls`` calls, each from its own number claiming its own account (the next ``calls`` of ``accounts``),
    dialling ``dial`` + account (the scenario's request user is the injection file's field0)."""
    offsets = [len(w.log.read_text().splitlines()) for w in workers]
    pids = [w.process.pid for w in workers]
    cpu0, busy0, t0 = sum(map(cpu_seconds, pids)), system_busy(), time.monotonic()
    # Steady: new calls per second that keep ~concurrency calls up, their decisions spread out.
    # Burst: every call of the level within about a second, so their decisions collide.
    rate = float(concurrency) if burst else max(1.0, concurrency / call_s)
    injection = work / "callers.csv"
    injection.write_text("SEQUENTIAL\n" + "".join(f"{dial}{a};+1555{a.zfill(7)};\n" for a in accounts[:calls]))
    del accounts[:calls]
    sipp = subprocess.Popen(
        ["sipp", "-sf", str(scenario), "-inf", str(injection), "-i", "127.0.0.1", "-p", "5090",
         "-mi", "127.0.0.1", "-mp", "20000", "-l", str(concurrency), "-m", str(calls), "-r", f"{rate:.2f}",
         "-rp", "1000", "-timeout", f"{int(call_s * 6 + 60)}", "-nostdin", "-trace_err",
         f"127.0.0.1:{lab.sip_port}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak, peak_calls = 0.0, 0
    try:
        while sipp.poll() is None:
            peak = max(peak, max(map(rss_mb, pids)))
            peak_calls = max(peak_calls, sum(in_progress(w.http_port) for w in workers))
            time.sleep(0.5)
    finally:
        stop_process(sipp, 5)
    wall = time.monotonic() - t0
    cpu1, busy1 = sum(map(cpu_seconds, pids)), system_busy()
    time.sleep(1.0)  # the last "call end" lines
    lines = [line for w, offset in zip(workers, offsets) for line in w.log.read_text().splitlines()[offset:]]
    results, decision, durations = call_ends(lines)
    answered = sum(results.values())
    return Level(
        concurrency, calls, answered, results.pop("PASS", 0), results, decision, durations,
        cpu_pct=100 * (cpu1 - cpu0) / wall, peak_rss_mb=peak, peak_in_progress=peak_calls,
        system_cpu_pct=100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), wall_s=wall)


def call_ends(lines: list[str]) -> tuple[dict[str, int], list[float], list[float]]:
    """Results, decision latencies and call durations from the workers' "call end" log lines."""
    results: dict[str, int] = {}
    decision, durations = [], []
    for line in lines:
        match = _CALL_END.search(line)
        if match:
            results[match["result"]] = results.get(match["result"], 0) + 1
            durations.append(float(match["dur"]))
            if match["decision"]:
                decision.append(float(match["decision"]))
    return results, decision, durations


def stop_process(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: nothing this bench started outlives it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def speech_8k(text: str) -> np.ndarray:
    """The caller's voice (the demo's ANA) saying ``text``, as the phone line carries it: 8 kHz."""
    from ivr.demo import ANA
    from ivr.synth import espeak
    from voiceprints.audio.resample import resample

    return resample(espeak(ANA, text), 8000).samples


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def print_table(rows: list[Level]) -> None:
    header = ("concurrent", "peak seen", "placed", "answered", "PASS", "other", "decision p50 s", "p95 s",
              "max s", "call p50 s", "workers' CPU %", "CPU s per call", "machine CPU %", "peak RSS MB per worker")
    table = [header]
    for r in rows:
        other = ",".join(f"{k}:{v}" for k, v in sorted(r.other.items())) or "-"
        table.append((
            str(r.concurrency), str(r.peak_in_progress), str(r.placed), str(r.answered), str(r.passed), other,
            f"{percentile(r.decision, 50):.2f}", f"{percentile(r.decision, 95):.2f}",
            f"{max(r.decision, default=float('nan')):.2f}", f"{percentile(r.durations, 50):.1f}",
            f"{r.cpu_pct:.0f}", f"{r.cpu_pct * r.wall_s / 100 / max(1, r.answered):.2f}", f"{r.system_cpu_pct:.0f}",
            f"{r.peak_rss_mb:.0f}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("| " + " | ".join(cell.rjust(width) for cell, width in zip(row, widths)) + " |")


def print_summary(rows: list[Level]) -> None:
    print_table(rows)
    ok = [r.concurrency for r in rows if r.decision and percentile(r.decision, 95) <= 0.3
          and r.answered == r.placed]
    print(f"\nhighest level with every call answered and decision p95 <= 0.3 s: {max(ok) if ok else 'none'}")


def call_plan(args: argparse.Namespace) -> list[int]:
    """Calls placed at each level: the level itself in a burst, else ``--calls-per-level`` times it."""
    return [level if args.burst else max(level, int(level * args.calls_per_level)) for level in args.levels]


def caller_scenario(work: Path) -> Path:
    """sipp's caller: dials the injection file's field0 from the number in field1 and speaks until hung up."""
    from ivr.demo import IMPOSTOR_TEXT, VERIFY_TEXT

    # The caller's speech loops until the worker hangs up: two sentences are plenty.
    speech = speech_file(work / "caller.ulaw", [speech_8k(VERIFY_TEXT), speech_8k(IMPOSTOR_TEXT)])
    scenario = work / "caller.xml"
    scenario.write_text(render([speak(speech)], caller="[field1]", ending="wait_bye", wait_ms=120000)
                        .replace("[service]", "[field0]"))
    return scenario


def run_levels(lab: Lab, workers: list[Worker], work: Path, accounts: list[str], args: argparse.Namespace,
               rows: list[Level], dial: str = "7") -> None:
    """One call alone, then every level of ``args``; appends one row per level to ``rows``."""
    scenario = caller_scenario(work)
    # The call length without contention sets the call rate of each level.
    solo = run_level(lab, workers, scenario, work, accounts, 1, 1, 12.0, dial=dial)
    call_s = solo.durations[0] if solo.durations else 12.0
    print(f"single call: {call_s:.1f} s, decision {solo.decision}, result {solo.passed and 'PASS' or solo.other}",
          flush=True)
    for level, calls in zip(args.levels, call_plan(args)):
        rows.append(run_level(lab, workers, scenario, work, accounts, level, calls, call_s, burst=args.burst,
                              dial=dial))
        print_level_done(rows[-1])


def print_level_done(row: Level) -> None:
    print(f"  level {row.concurrency} done in {row.wall_s:.0f} s, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=[10, 20, 30, 40])
    parser.add_argument("--calls-per-level", type=float, default=2.0,
                        help="calls placed per level, as a multiple of its concurrency")
    parser.add_argument("--burst", action="store_true",
                        help="worst case: each level's calls all start within ~1 s (one wave per level)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (worker log)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab Asterisk running afterwards")
    parser.add_argument("--twilio", action="store_true",
                        help="callers are Twilio Media Streams (the simulator) instead of sipp through Asterisk")
    parser.add_argument("--sip", action="store_true",
                        help="Asterisk dials the worker's SIP endpoint (pyVoIP) instead of AudioSocket")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1,
                        help="ivr serve processes; 2 share a fresh PostgreSQL database on 127.0.0.1:5432")
    parser.add_argument("--population", type=int, default=0,
                        help="voiceprints of other (synthetic) speakers added to the store, e.g. 100000")
    args = parser.parse_args()
    if args.twilio:
        return twilio_main(args)
    for tool in ("sipp", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")

    lab = Lab()
    if not lab.built:
        lab.build()
    work = Path(tempfile.mkdtemp(prefix="bench_load."))
    rows: list[Level] = []
    try:
        # Stopped again afterwards, also on Ctrl-C or SIGTERM, unless it was running before.
        with running_lab(lab, keep=args.keep_lab):
            (bench_sip if args.sip else bench)(lab, work, args, rows)
    except KeyboardInterrupt:
        print("\ninterrupted: the worker, sipp and the lab Asterisk this bench started are stopped",
              file=sys.stderr)
        if rows:
            print_table(rows)
        return 130
    finally:
        if args.keep:
            print(f"worker logs: {work}/worker-*.log")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_summary(rows)
    return 0


def bench(lab: Lab, work: Path, args: argparse.Namespace, rows: list[Level]) -> None:
    """Enrol the callers' accounts, start the workers, run every level; appends one row per level to ``rows``."""
    with contextlib.ExitStack() as stack:
        env = {**os.environ, "VOICEAUTH_AMI__PORT": str(lab.ami_port), "VOICEAUTH_AMI__USERNAME": lab.ami_user,
               "VOICEAUTH_AMI__SECRET": lab.ami_secret,
               "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
               # Capacity settings sized to the test (one Asterisk is one peer carrying every call);
               # no attempt limit is raised.
               "VOICEAUTH_AUDIOSOCKET__MAX_CALLS": str(max(args.levels) + 10),
               "VOICEAUTH_AUDIOSOCKET__MAX_PER_PEER": str(max(args.levels) + 10),
               # One voice under every caller's account makes a degenerate cohort (the "other speakers"
               # include the caller many times over): score plain cosine, as the Twilio mode does.
               "VOICEAUTH_VERIFICATION__NORMALISATION": "none"}
        if args.workers > 1:
            env.update(shared_database(stack))
        accounts = [f"{1000 + n}" for n in range(1 + sum(call_plan(args)))]
        print(f"work dir {work}; enrolling {len(accounts)} accounts"
              + (f" and {args.population} other voiceprints" if args.population else ""), flush=True)
        started = time.monotonic()
        enrol_accounts({**env, "VOICEAUTH_DATA_DIR": str(work / "data-0")}, accounts, args.population)
        print(f"store ready in {time.monotonic() - started:.0f} s", flush=True)
        workers: list[Worker] = []
        stack.callback(lambda: [stop_process(w.process, 60) for w in workers])
        for n in range(args.workers):
            http_port = free_port()
            audiosocket = lab.audiosocket_port if n == 0 else free_port()
            log = work / f"worker-{n}.log"
            with open(log, "wb") as out:
                # Its own session: the terminal's Ctrl-C reaches this script only, which then stops the worker.
                process = subprocess.Popen(
                    [str(IVR), "serve"], stdout=out, stderr=out, start_new_session=True,
                    env={**env, "VOICEAUTH_DATA_DIR": str(work / f"data-{n}"), "VOICEAUTH_HTTP__PORT": str(http_port),
                         "VOICEAUTH_AUDIOSOCKET__PORT": str(audiosocket),
                         "VOICEAUTH_FASTAGI__PORT": str(lab.agi_port if n == 0 else free_port())})
            workers.append(Worker(process, http_port, log))
            wait_ready(http_port, process, 300)
            if n == 1:
                set_lab_global(lab, "VOICEAUTH_WORKER_2", f"127.0.0.1:{audiosocket}")
        run_levels(lab, workers, work, accounts, args, rows)


def shared_database(stack: contextlib.ExitStack) -> dict[str, str]:
    """A fresh PostgreSQL database (dropped on exit) and the keys and secrets every worker must share."""
    import psycopg

    name = f"bench_load_{os.getpid()}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_")}
    generated = subprocess.run([str(IVR), "keys", "generate"], env=base, capture_output=True, text=True,
                               timeout=120, check=True).stdout
    env = dict(line.split("=", 1) for line in generated.splitlines() if line.startswith("VOICEAUTH_"))
    env["VOICEAUTH_STORE__URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return env


def set_lab_global(lab: Lab, name: str, value: str) -> None:
    """A dialplan global of the running lab (the lab's 7NNNN extension reads VOICEAUTH_WORKER_2)."""
    subprocess.run(["chroot", str(lab.directory), "asterisk", "-rx", f"dialplan set global {name} {value}"],
                   check=True, capture_output=True, timeout=30)


# -- SIP endpoint mode -------------------------------------------------------------------------

def bench_sip(lab: Lab, work: Path, args: argparse.Namespace, rows: list[Level]) -> None:
    """Enrol one account per call, start ``ivr serve`` with the SIP endpoint, run every level."""
    most = max(args.levels)
    http_port = lab.sip_results_port  # where the lab dialplan's CURL() reads results
    env = {**os.environ, "VOICEAUTH_DATA_DIR": str(work / "data"), "VOICEAUTH_AMI__ENABLED": "false",
           "VOICEAUTH_FASTAGI__ENABLED": "false", "VOICEAUTH_AUDIOSOCKET__PORT": str(free_port()),
           "VOICEAUTH_HTTP__PORT": str(http_port),
           "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
           "VOICEAUTH_SIP__ENABLED": "true", "VOICEAUTH_SIP__REGISTRAR_PORT": str(lab.sip_port),
           "VOICEAUTH_SIP__USERNAME": lab.sip_user, "VOICEAUTH_SIP__PASSWORD": lab.sip_secret,
           "VOICEAUTH_SIP__ROUTES": '{"81": "verify"}', "VOICEAUTH_SIP__MAX_CALLS": str(most + 20),
           # sipp's own media ports start at 20000 (run_level): keep the endpoint's RTP out of their way.
           "VOICEAUTH_SIP__RTP_PORT_LOW": "30000", "VOICEAUTH_SIP__RTP_PORT_HIGH": "30999",
           # One voice under every account: plain cosine, as in the other modes.
           "VOICEAUTH_VERIFICATION__NORMALISATION": "none"}
    # A fresh account for every call: the same recording twice on one account is (rightly) a replay.
    accounts = [f"{50000 + n}" for n in range(1 + sum(call_plan(args)))]
    print(f"work dir {work}; enrolling {len(accounts)} accounts", flush=True)
    enrol_accounts(env, accounts)
    log = work / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(IVR), "serve"], env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        wait_ready(http_port, process, 300)
        # The dialled number is 81<account>: the endpoint's route for the verify flow.
        run_levels(lab, [Worker(process, http_port, log)], work, accounts, args, rows, dial="81")
    finally:
        stop_process(process, 60)


# -- Twilio Media Streams mode ------------------------------------------------------------------

TWILIO_TOKEN = "bench-auth-token"


def twilio_main(args: argparse.Namespace) -> int:
    import asyncio

    for tool in ("espeak-ng",):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="bench_twilio."))
    rows: list[Level] = []
    try:
        asyncio.run(bench_twilio(work, args, rows))
    except KeyboardInterrupt:
        print("\ninterrupted: the worker this bench started is stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"worker log: {work / 'worker.log'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_summary(rows)
    return 0


def enrol_accounts(env: dict[str, str], accounts: list[str], population: int = 0) -> None:
    """One voice (the demo's Ana) enrolled under every account, and ``population`` other voiceprints, in one
    process (one model load)."""
    subprocess.run([sys.executable, "-m", "scripts.bench_load", "--prepare-store", str(population), *accounts],
                   env=env, check=True, timeout=1800, cwd=REPO)


def prepare_store(population: int, accounts: list[str]) -> None:
    """(In the subprocess of ``enrol_accounts``, configured by the environment.)"""
    from ivr.demo import ANA, ENROL_TEXTS
    from ivr.settings import Settings
    from ivr.synth import Voice, espeak
    from voiceprints.audio.resample import resample
    from voiceprints.engine import open_engine

    engine = open_engine(Settings().core())
    try:
        prepared = engine.prepare_enrolment([resample(espeak(ANA, t), 8000) for t in ENROL_TEXTS])
        for account in accounts:
            engine.store_enrolment(account, prepared)
        if population:
            bases = np.stack([engine.embedder.embed(resample(espeak(Voice(v, v, pitch=p), t), 8000))
                              for v, p in POPULATION_VOICES for t in ENROL_TEXTS[:2]])
            add_population(engine, bases, population)
    finally:
        engine.close()


def add_population(engine, bases: np.ndarray, n: int, batch: int = 2000) -> None:  # type: ignore[no-untyped-def]
    """``n`` voiceprints near real ones of other voices: a base embedding plus noise in each model's part,
    each part renormalised (a fused voiceprint is per-model unit parts, scaled)."""
    from voiceprints.embedding.base import layout_of
    from voiceprints.store.crypto import record_aad, vector_to_bytes
    from voiceprints.store.models import VoiceprintRow

    store, model_id = engine.store, engine.model_id
    bounds = np.cumsum((0, *layout_of(engine.embedder)))
    parts = list(zip(bounds[:-1], bounds[1:]))
    rng = np.random.default_rng(0)
    for start in range(0, n, batch):
        size = min(batch, n - start)
        rows = bases[rng.integers(0, len(bases), size)].astype(np.float64)
        for lo, hi in parts:
            part = rows[:, lo:hi] + 0.6 * rng.standard_normal((size, hi - lo)) / np.sqrt(hi - lo)
            scale = np.linalg.norm(rows[:, lo:hi], axis=1, keepdims=True)
            rows[:, lo:hi] = part / np.linalg.norm(part, axis=1, keepdims=True) * scale
        vectors = rows.astype(np.float32)
        with store.write_session() as session:
            values = []
            for i, vector in enumerate(vectors):
                speaker = f"s{start + i:07d}"
                key_id, blob = store.keyring.encrypt(vector_to_bytes(vector), record_aad(speaker, model_id))
                values.append({"speaker_id": store.upsert_speaker(session, speaker), "model_id": model_id,
                               "key_id": key_id, "ciphertext": blob, "dim": vector.size, "utterance_count": 3,
                               "net_speech_s": 10.0, "quality": {}})
            session.execute(store.insert(VoiceprintRow), values)


async def bench_twilio(work: Path, args: argparse.Namespace, rows: list[Level]) -> None:
    import asyncio

    from scripts.lab.reactions import Say
    from scripts.lab.twilio_caller import TwilioSimulator
    from voiceprints.audio.clip import AudioClip

    http_port = free_port()
    most = max(args.levels)
    env = {**os.environ, "VOICEAUTH_DATA_DIR": str(work / "data"), "VOICEAUTH_AMI__ENABLED": "false",
           "VOICEAUTH_FASTAGI__ENABLED": "false", "VOICEAUTH_AUDIOSOCKET__PORT": str(free_port()),
           "VOICEAUTH_HTTP__PORT": str(http_port),
           "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
           "VOICEAUTH_TWILIO__AUTH_TOKEN": TWILIO_TOKEN,
           "VOICEAUTH_TWILIO__PUBLIC_URL": f"http://127.0.0.1:{http_port}",
           "VOICEAUTH_TWILIO__RESULT_URL": "https://ivr.example/after", "VOICEAUTH_TWILIO__MAX_CALLS": str(most + 20),
           # Every caller is a new number on one trunk: the trunk's rate is not what is measured here.
           "VOICEAUTH_LIMITS__TRUNK__MAX_EVENTS": "100000",
           # One voice under every account makes a degenerate cohort (all "other speakers" are the
           # caller): score plain cosine, as the Asterisk mode does with its single account.
           "VOICEAUTH_VERIFICATION__NORMALISATION": "none"}
    accounts = [f"{5000 + n}" for n in range(most + 10)]
    print(f"work dir {work}; enrolling {len(accounts)} accounts", flush=True)
    enrol_accounts(env, accounts)

    from ivr.demo import ANA, IMPOSTOR_TEXT, VERIFY_TEXT
    from ivr.synth import espeak
    from voiceprints.audio.resample import resample

    speech = np.concatenate([resample(espeak(ANA, VERIFY_TEXT), 8000).samples,
                             resample(espeak(ANA, IMPOSTOR_TEXT), 8000).samples])
    answer = Say(AudioClip(speech, 8000), 1.0)
    log = work / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([str(IVR), "serve"], env=env, stdout=out, stderr=out, start_new_session=True)
    sim = TwilioSimulator(f"http://127.0.0.1:{http_port}", TWILIO_TOKEN, max_connections=most + 20, timeout_s=60)
    try:
        await asyncio.to_thread(wait_ready, http_port, worker, 300)
        numbers = iter(range(10**6))

        async def one_call(account: str) -> None:
            try:
                await sim.call({"verify-speak": [answer]}, f"flow=verify&account={account}",
                               caller=f"+1555{next(numbers):07d}", max_s=120)
            except Exception as exc:  # noqa: BLE001 - counted as unanswered
                print(f"  call failed: {exc!r}", file=sys.stderr)

        solo = await twilio_level(worker, http_port, log, 1, 1, 12.0, accounts, one_call)
        call_s = solo.durations[0] if solo.durations else 12.0
        print(f"single call: {call_s:.1f} s, decision {solo.decision}", flush=True)
        for level, calls in zip(args.levels, call_plan(args)):
            rows.append(await twilio_level(worker, http_port, log, level, calls, 0.0 if args.burst else call_s,
                                           accounts, one_call))
            print_level_done(rows[-1])
    finally:
        await sim.aclose()
        stop_process(worker, 60)


async def twilio_level(worker: subprocess.Popen, http_port: int, log: Path, concurrency: int, calls: int,
                       call_s: float, accounts: list[str], one_call) -> Level:  # type: ignore[no-untyped-def]
    """``calls`` calls, at most ``concurrency`` at once, started evenly over one call length (0: all at once)."""
    import asyncio

    offset = len(log.read_text().splitlines())
    cpu0, busy0, t0 = cpu_seconds(worker.pid), system_busy(), time.monotonic()
    free = asyncio.Queue()
    for account in accounts[:concurrency]:
        free.put_nowait(account)
    peak = {"rss": 0.0, "calls": 0}

    async def watch() -> None:
        while True:
            peak["rss"] = max(peak["rss"], rss_mb(worker.pid))
            peak["calls"] = max(peak["calls"], await asyncio.to_thread(in_progress, http_port))
            await asyncio.sleep(0.5)

    async def place() -> None:
        account = await free.get()
        try:
            await one_call(account)
        finally:
            free.put_nowait(account)

    watcher = asyncio.create_task(watch())
    gap = call_s / concurrency if call_s else 0.0
    tasks = []
    for _ in range(calls):
        tasks.append(asyncio.create_task(place()))
        if gap:
            await asyncio.sleep(gap)
    await asyncio.gather(*tasks)
    watcher.cancel()
    wall = time.monotonic() - t0
    cpu1, busy1 = cpu_seconds(worker.pid), system_busy()
    await asyncio.sleep(1.0)
    results, decision, durations = call_ends(log.read_text().splitlines()[offset:])
    answered = sum(results.values())
    return Level(concurrency, calls, answered, results.pop("PASS", 0), results, decision, durations,
                 cpu_pct=100 * (cpu1 - cpu0) / wall, peak_rss_mb=peak["rss"], peak_in_progress=peak["calls"],
                 system_cpu_pct=100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), wall_s=wall)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--prepare-store"]:
        prepare_store(int(sys.argv[2]), sys.argv[3:])
        sys.exit(0)
    sys.exit(main())
