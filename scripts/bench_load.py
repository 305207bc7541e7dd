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

Asterisk mode needs root (the lab chroot), sipp, espeak-ng.  Every caller is the same
synthetic genuine speaker (the demo's voice, ``ivr.demo.ANA``) claiming the
same enrolled account (extension 7NNNN gives the account, so there is no
keypad step): the load is the engine's, not the store's.  Uses the shipped
(generated) prompts, so the worker also streams real prompt audio to every
caller.  The worker, sipp and the lab Asterisk it started are stopped at the
end, also on Ctrl-C or SIGTERM; a lab that was running before stays running.

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

ACCOUNT = "4711"
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


def run_level(lab: Lab, worker: subprocess.Popen, http_port: int, log: Path, scenario: Path, work: Path,
              concurrency: int, calls: int, call_s: float, burst: bool = False,
              extra: tuple[str, ...] = ()) -> Level:
    offset = len(log.read_text().splitlines())
    cpu0, busy0, t0 = cpu_seconds(worker.pid), system_busy(), time.monotonic()
    # Steady: new calls per second that keep ~concurrency calls up, their decisions spread out.
    # Burst: every call of the level within about a second, so their decisions collide.
    rate = float(concurrency) if burst else max(1.0, concurrency / call_s)
    sipp = subprocess.Popen(
        ["sipp", "-sf", str(scenario), "-s", f"7{ACCOUNT}", "-i", "127.0.0.1", "-p", "5090",
         "-mi", "127.0.0.1", "-mp", "20000", "-l", str(concurrency), "-m", str(calls), "-r", f"{rate:.2f}",
         "-rp", "1000", "-timeout", f"{int(call_s * 6 + 60)}", "-nostdin", "-trace_err", *extra,
         f"127.0.0.1:{lab.sip_port}"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak, peak_calls = 0.0, 0
    try:
        while sipp.poll() is None:
            peak = max(peak, rss_mb(worker.pid))
            peak_calls = max(peak_calls, in_progress(http_port))
            time.sleep(0.5)
    finally:
        stop_process(sipp, 5)
    wall = time.monotonic() - t0
    cpu1, busy1 = cpu_seconds(worker.pid), system_busy()
    time.sleep(1.0)  # the last "call end" lines
    results: dict[str, int] = {}
    decision, durations = [], []
    for line in log.read_text().splitlines()[offset:]:
        match = _CALL_END.search(line)
        if match:
            results[match["result"]] = results.get(match["result"], 0) + 1
            durations.append(float(match["dur"]))
            if match["decision"]:
                decision.append(float(match["decision"]))
    answered = sum(results.values())
    return Level(
        concurrency, calls, answered, results.pop("PASS", 0), results, decision, durations,
        cpu_pct=100 * (cpu1 - cpu0) / wall, peak_rss_mb=peak, peak_in_progress=peak_calls,
        system_cpu_pct=100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), wall_s=wall)


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


def enrol(env: dict[str, str], work: Path) -> None:
    import soundfile
    from ivr.demo import ENROL_TEXTS

    files = []
    for i, text in enumerate(ENROL_TEXTS):
        files.append(work / f"enrol{i}.wav")
        soundfile.write(files[-1], speech_8k(text), 8000)
    subprocess.run([str(IVR), "enroll", ACCOUNT, *map(str, files)], env=env, check=True,
                   capture_output=True, timeout=300)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def print_table(rows: list[Level]) -> None:
    header = ("concurrent", "peak seen", "placed", "answered", "PASS", "other", "decision p50 s", "p95 s",
              "max s", "call p50 s", "worker CPU %", "machine CPU %", "peak RSS MB")
    table = [header]
    for r in rows:
        other = ",".join(f"{k}:{v}" for k, v in sorted(r.other.items())) or "-"
        table.append((
            str(r.concurrency), str(r.peak_in_progress), str(r.placed), str(r.answered), str(r.passed), other,
            f"{percentile(r.decision, 50):.2f}", f"{percentile(r.decision, 95):.2f}",
            f"{max(r.decision, default=float('nan')):.2f}", f"{percentile(r.durations, 50):.1f}",
            f"{r.cpu_pct:.0f}", f"{r.system_cpu_pct:.0f}", f"{r.peak_rss_mb:.0f}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("| " + " | ".join(cell.rjust(width) for cell, width in zip(row, widths)) + " |")


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
            print(f"worker log: {work / 'worker.log'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(rows)
    limit = 0.3 if args.sip else 1.0
    ok = [r.concurrency for r in rows if r.decision and percentile(r.decision, 95) <= limit
          and r.answered == r.placed]
    print(f"\nhighest level with every call answered and decision p95 <= {limit:g} s: {max(ok) if ok else 'none'}")
    return 0


def bench(lab: Lab, work: Path, args: argparse.Namespace, rows: list[Level]) -> None:
    """Enrol the caller, start ``ivr serve``, run every level; appends one row per level to ``rows``."""
    http_port = free_port()
    env = {**os.environ, "VOICEAUTH_DATA_DIR": str(work / "data"),
           "VOICEAUTH_AMI__PORT": str(lab.ami_port), "VOICEAUTH_AMI__USERNAME": lab.ami_user,
           "VOICEAUTH_AMI__SECRET": lab.ami_secret, "VOICEAUTH_AUDIOSOCKET__PORT": str(lab.audiosocket_port),
           "VOICEAUTH_FASTAGI__PORT": str(lab.agi_port), "VOICEAUTH_HTTP__PORT": str(http_port),
           "VOICEAUTH_PROMPTS__GENERATED_DIR": str(REPO / ".lab" / "prompts"),
           "VOICEAUTH_AUDIOSOCKET__MAX_CALLS": str(max(args.levels) + 10)}
    print(f"work dir {work}; enrolling the caller's account", flush=True)
    enrol(env, work)

    from ivr.demo import IMPOSTOR_TEXT, VERIFY_TEXT

    # The caller's speech loops until the worker hangs up: two sentences are plenty.
    speech = speech_file(work / "caller.ulaw", [speech_8k(VERIFY_TEXT), speech_8k(IMPOSTOR_TEXT)])
    scenario = work / "bench.xml"
    scenario.write_text(render([speak(speech)], caller="bench", ending="wait_bye", wait_ms=120000))
    log = work / "worker.log"
    with open(log, "wb") as out:
        # Its own session: the terminal's Ctrl-C reaches this script only, which then stops the worker.
        worker = subprocess.Popen([str(IVR), "serve"], env=env, stdout=out, stderr=out,
                                  start_new_session=True)
    try:
        wait_ready(http_port, worker, 300)
        # One call alone first: the call length without contention sets the call rate of each level.
        solo = run_level(lab, worker, http_port, log, scenario, work, 1, 1, 12.0)
        call_s = solo.durations[0] if solo.durations else 12.0
        print(f"single call: {call_s:.1f} s, decision {solo.decision}", flush=True)
        for level in args.levels:
            calls = level if args.burst else max(level, int(level * args.calls_per_level))
            rows.append(run_level(lab, worker, http_port, log, scenario, work, level, calls, call_s,
                                  burst=args.burst))
            print(f"  level {level} done in {rows[-1].wall_s:.0f} s", flush=True)
    finally:
        stop_process(worker, 60)


# -- SIP endpoint mode -------------------------------------------------------------------------

def bench_sip(lab: Lab, work: Path, args: argparse.Namespace, rows: list[Level]) -> None:
    """Enrol one account per concurrent caller, start ``ivr serve`` with the SIP endpoint, run every level."""
    from ivr.demo import IMPOSTOR_TEXT, VERIFY_TEXT

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
           "VOICEAUTH_LIMITS__TRUNK__MAX_EVENTS": "100000", "VOICEAUTH_LIMITS__CALLER__MAX_EVENTS": "100000",
           "VOICEAUTH_LIMITS__WITHHELD__MAX_EVENTS": "100000",
           # One voice under every account: plain cosine, as in the other modes.
           "VOICEAUTH_VERIFICATION__NORMALISATION": "none"}
    # A fresh account for every call: the same recording twice on one account is (rightly) a replay.
    plan = [level if args.burst else max(level, int(level * args.calls_per_level)) for level in args.levels]
    accounts = [f"{50000 + n}" for n in range(1 + sum(plan))]
    print(f"work dir {work}; enrolling {len(accounts)} accounts", flush=True)
    enrol_accounts(env, accounts)
    speech = speech_file(work / "caller.ulaw", [speech_8k(VERIFY_TEXT), speech_8k(IMPOSTOR_TEXT)])
    scenario = work / "bench_sip.xml"
    # The dialled number is 81<account>, the account taken in turn from the injection file.
    text = render([speak(speech)], caller="bench", ending="wait_bye", wait_ms=120000)
    scenario.write_text(text.replace("[service]", "81[field0]"))
    unused = iter(accounts)

    def injection(calls: int) -> tuple[str, ...]:
        """sipp's injection file for the next ``calls`` calls: accounts no call has used yet."""
        path = work / f"accounts-{calls}-{time.monotonic_ns()}.csv"
        path.write_text("SEQUENTIAL\n" + "".join(f"{next(unused)};\n" for _ in range(calls)))
        return ("-inf", str(path))

    log = work / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([str(IVR), "serve"], env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        wait_ready(http_port, worker, 300)
        solo = run_level(lab, worker, http_port, log, scenario, work, 1, 1, 12.0, extra=injection(1))
        call_s = solo.durations[0] if solo.durations else 12.0
        print(f"single call: {call_s:.1f} s, decision {solo.decision}", flush=True)
        for level, calls in zip(args.levels, plan):
            rows.append(run_level(lab, worker, http_port, log, scenario, work, level, calls, call_s,
                                  burst=args.burst, extra=injection(calls)))
            print(f"  level {level} done in {rows[-1].wall_s:.0f} s, load average "
                  f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    finally:
        stop_process(worker, 60)


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
    print_table(rows)
    ok = [r.concurrency for r in rows if r.decision and percentile(r.decision, 95) <= 0.3
          and r.answered == r.placed]
    print(f"\nhighest level with every call answered and decision p95 <= 0.3 s: {max(ok) if ok else 'none'}")
    return 0


def enrol_accounts(env: dict[str, str], accounts: list[str]) -> None:
    """One voice (the demo's Ana) enrolled under every account, in one process (one model load)."""
    script = (
        "import sys\n"
        "from ivr.demo import ANA, ENROL_TEXTS\n"
        "from ivr.settings import Settings\n"
        "from ivr.synth import espeak\n"
        "from voiceprints.audio.resample import resample\n"
        "from voiceprints.engine import open_engine\n"
        "engine = open_engine(Settings().core())\n"
        "prepared = engine.prepare_enrolment([resample(espeak(ANA, t), 8000) for t in ENROL_TEXTS])\n"
        "for account in sys.argv[1:]:\n"
        "    engine.store_enrolment(account, prepared)\n"
        "engine.close()\n")
    subprocess.run([sys.executable, "-c", script, *accounts], env=env, check=True, timeout=900,
                   capture_output=True)


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
        for level in args.levels:
            calls = level if args.burst else max(level, int(level * args.calls_per_level))
            rows.append(await twilio_level(worker, http_port, log, level, calls, 0.0 if args.burst else call_s,
                                           accounts, one_call))
            print(f"  level {level} done in {rows[-1].wall_s:.0f} s, load average "
                  f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
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
    results: dict[str, int] = {}
    decision, durations = [], []
    for line in log.read_text().splitlines()[offset:]:
        match = _CALL_END.search(line)
        if match:
            results[match["result"]] = results.get(match["result"], 0) + 1
            durations.append(float(match["dur"]))
            if match["decision"]:
                decision.append(float(match["decision"]))
    answered = sum(results.values())
    return Level(concurrency, calls, answered, results.pop("PASS", 0), results, decision, durations,
                 cpu_pct=100 * (cpu1 - cpu0) / wall, peak_rss_mb=peak["rss"], peak_in_progress=peak["calls"],
                 system_cpu_pct=100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), wall_s=wall)


if __name__ == "__main__":
    sys.exit(main())
