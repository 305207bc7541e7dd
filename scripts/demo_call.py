#!/usr/bin/env python3
"""A real demonstration call: phone calls through Asterisk into the worker, on embedded defaults.

The offline ``ivr demo`` shows the biometric core; this shows the product a
contact centre would run.  It starts the lab Asterisk (scripts/lab, a Debian
chroot, built once), starts the worker (``VoiceAuthService``, what ``ivr serve``
runs) in this process with a fresh data directory, imports a demo customer
with a PIN as ``ivr customers import`` does, and then places real SIP calls
with sipp:

1. Ana enrols by phone on the enrolment line: account, PIN, consent key,
   then she reads sentences;
2. Ana calls the verification line and claims her account;
3. Luis (an impostor) calls and claims Ana's account.

The table printed at the end is what the dialplan itself saw: the lab
dialplan reports the VOICEAUTH_* channel variables as an AMI UserEvent after
each call.  The callers are espeak-ng voices, the prompts the shipped
espeak-ng prompt set, so the calls take as long as real ones (about a minute
for the enrolment).

    .venv/bin/python scripts/demo_call.py      # as root (the lab chroot); sipp and espeak-ng installed

Any ``VOICEAUTH_*`` setting in the environment is ignored (except the lab's
``VOICEAUTH_LAB_*``): the demonstration must never write into a configured
production database.  The lab is stopped afterwards unless it was already
running (also when the demo is ended with Ctrl-C or SIGTERM); the chroot is
kept for the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.lab.asterisk import Lab, LabUnavailable  # noqa: E402
from scripts.lab.lifetime import running_lab  # noqa: E402
from scripts.lab.callers import (  # noqa: E402
    DialplanResults,
    keys,
    pause,
    place_call,
    running_worker,
    speak,
    speech_file,
)

ACCOUNT, PIN = "4572", "2580"
# Generated prompts are cached here (shared with the lab tests): building them takes a while.
PROMPT_CACHE = REPO / ".lab" / "prompts"
# What ANA reads on the enrolment line: the offline demo's sentences and two more, so a
# sentence the worker cut short can be made up for (the file loops until the call ends).
EXTRA_ENROL_TEXTS = (
    "Necesito bloquear mi tarjeta de crédito porque creo que la perdí ayer en el centro.",
    "Quiero saber si ya llegó la transferencia que me enviaron desde el exterior.",
)


class DemoError(RuntimeError):
    """The demonstration cannot run here; the message says what to do."""


def preflight() -> None:
    if os.geteuid() != 0:
        raise DemoError("the phone demo needs root: the lab Asterisk runs in a chroot (run it with sudo)")
    missing = [tool for tool in ("debootstrap", "sipp", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing {', '.join(missing)}: run scripts/bootstrap.sh (Debian packages "
                        "debootstrap, sip-tester, espeak-ng)")


def port_free(port: int) -> bool:
    """Nothing listens there (a connect test: connections in TIME_WAIT from earlier runs do not count)."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def embedded_defaults_only() -> None:
    """Forget VOICEAUTH_* settings of this shell (a production database URL, keys, an SMTP relay)."""
    for name in [n for n in os.environ if n.startswith("VOICEAUTH_") and not n.startswith("VOICEAUTH_LAB_")]:
        del os.environ[name]


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f} s] {text}", flush=True)


def caller_audio(work: Path) -> dict[str, Path]:
    """The callers' speech as sipp streams it: 8 kHz mu-law, sentences separated by pauses."""
    from ivr.demo import ANA, ENROL_TEXTS, IMPOSTOR_TEXT, LUIS, VERIFY_TEXT
    from ivr.synth import espeak
    from voiceprints.audio.resample import resample

    def sentences(voice, texts) -> list:  # type: ignore[no-untyped-def]
        return [resample(espeak(voice, text), 8000).samples for text in texts]

    return {
        "enrol": speech_file(work / "ana-enrol.ulaw", sentences(ANA, (*ENROL_TEXTS, *EXTRA_ENROL_TEXTS))),
        "genuine": speech_file(work / "ana.ulaw", sentences(ANA, (VERIFY_TEXT,))),
        "impostor": speech_file(work / "luis.ulaw", sentences(LUIS, (IMPOSTOR_TEXT,))),
    }


def import_demo_customer(settings, work: Path) -> str:  # type: ignore[no-untyped-def]
    """What `ivr customers import customers.csv` does: contact data and a PIN, hashed with the server pepper."""
    from ivr.db.engine import open_database
    from ivr.knowledge.importer import import_customers_csv
    from ivr.knowledge.service import KnowledgeService
    from ivr.secrets import load_server_secrets

    csv_file = work / "customers.csv"
    csv_file.write_text("external_id,phone,email,preferred_channel,language,pin\n"
                        f"{ACCOUNT},+573001234567,ana.demo@example.com,sms,es,{PIN}\n")
    db = open_database(settings.core().database_url())
    try:
        pepper = load_server_secrets(settings.secrets, settings.data_dir).knowledge_pepper
        report = import_customers_csv(db, csv_file, knowledge=KnowledgeService(db, pepper=pepper))
    finally:
        db.dispose()
    return f"{report.customers_added} customer added, {report.answers_stored} answer stored (hashed)"


async def run_calls(lab: Lab, work: Path, clock: Clock) -> list[tuple[str, dict[str, str]]]:
    from ivr.settings import Settings

    (work / "data").mkdir()
    settings = Settings(
        data_dir=work / "data",
        ami={"port": lab.ami_port, "username": lab.ami_user, "secret": lab.ami_secret},
        audiosocket={"port": lab.audiosocket_port},
        fastagi={"port": lab.agi_port},
        http={"port": 0},
        prompts={"generated_dir": PROMPT_CACHE},
        service={"shutdown_grace_s": 5},
    )
    clock.say(f"customer {ACCOUNT} with PIN {PIN}: " + import_demo_customer(settings, work)
              + "; no one-time-code channel configured, so the enrolment line asks for the PIN")
    clock.say("synthesising the callers' voices (espeak-ng: ana, and luis as the impostor)")
    audio = await asyncio.to_thread(caller_audio, work)
    clock.say("starting the worker (model, encrypted SQLite store, prompts, AMI login)")
    async with running_worker(settings), lab.ami_client() as ami:
        await ami.wait_connected(10)
        results = DialplanResults(ami)
        try:
            return await _calls(lab, work, audio, results, clock)
        finally:
            results.close()


async def _calls(lab: Lab, work: Path, audio: dict[str, Path], results: DialplanResults,
                 clock: Clock) -> list[tuple[str, dict[str, str]]]:
    clock.say(f"call 1: ana enrols on extension 200 (account {ACCOUNT}#, PIN {PIN}#, consent 1, "
              "then she reads sentences; about a minute with the spoken prompts)")
    # Keys typed during a prompt are kept, so the caller may type ahead; the speech loops
    # until the worker hangs up, and the worker only keeps what is said after each prompt.
    enrol = [pause(1000), keys(f"{ACCOUNT}#"), pause(3000), keys(f"{PIN}#"), pause(3000), keys("1"),
             pause(2000), speak(audio["enrol"])]
    await place_call(lab, "200", enrol, caller="ana-enrols", workdir=work, audio=[audio["enrol"]],
                     wait_ms=150000, timeout=180)
    rows = [("ana enrols by phone (ext 200)", await results.of("ana-enrols", timeout=20))]
    def verify(speech: Path) -> list:  # type: ignore[type-arg]
        return [pause(1000), keys(f"{ACCOUNT}#"), pause(3000), speak(speech)]

    # One after the other: a second call claiming an account while another is authenticating it
    # is refused outright (one authentication per account at a time), which would hide the voice check.
    clock.say("call 2 on extension 100: ana claims her account")
    await place_call(lab, "100", verify(audio["genuine"]), caller="ana-calls", workdir=work,
                     audio=[audio["genuine"]], wait_ms=60000)
    clock.say("call 3 on extension 100: luis claims ana's account")
    await place_call(lab, "100", verify(audio["impostor"]), caller="luis-claims-ana", workdir=work,
                     audio=[audio["impostor"]], wait_ms=60000)
    rows.append(("ana calls, claims her account", await results.of("ana-calls", timeout=20)))
    rows.append(("luis (impostor) claims ana's account", await results.of("luis-claims-ana", timeout=20)))
    return rows


def table(rows: list[tuple[str, dict[str, str]]]) -> str:
    """One line per call, its reason in full below it (the lab dialplan turned its commas into '/')."""
    header = ("call", "VOICEAUTH_RESULT", "METHOD", "SCORE")
    lines = [(title, r.get("Result", ""), r.get("Method", ""), r.get("Score", "")) for title, r in rows]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(v.ljust(w) for v, w in zip(header, widths)).rstrip()]
    out.append("-" * len(out[0]))
    for (title, result), line in zip(rows, lines):
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
        out.append("    " + result.get("Reason", "").replace("/ ", ", "))
    return "\n".join(out)


def succeeded(rows: list[tuple[str, dict[str, str]]]) -> bool:
    enrol, genuine, impostor = (r for _, r in rows)
    return (enrol.get("Result") == "ENROLLED" and genuine.get("Result") == "PASS"
            and impostor.get("Result") != "PASS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab Asterisk running afterwards")
    args = parser.parse_args(argv)
    embedded_defaults_only()
    # Only the worker's errors: its first-run warnings (new keys in a throw-away directory) are noise here.
    logging.basicConfig(level=logging.ERROR, format="  worker: %(levelname)s %(name)s: %(message)s")
    clock = Clock()
    try:
        preflight()
        lab = Lab()
        for port in (lab.audiosocket_port, lab.agi_port):
            if not port_free(port):
                raise DemoError(f"127.0.0.1:{port} is in use (an `ivr serve` running?); stop it and try again")
        if not lab.built:
            clock.say(f"building the lab Asterisk in {lab.directory} (once; about two minutes, needs the Debian mirror)")
            lab.build()
    except (DemoError, LabUnavailable, subprocess.TimeoutExpired) as exc:
        print(f"phone demo not run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("phone demo interrupted", file=sys.stderr)
        return 130
    clock.say("starting the lab Asterisk 22 on 127.0.0.1 (SIP 5060, AMI 5038)")
    try:
        # Stopped again afterwards, also on Ctrl-C or SIGTERM, unless it was running before.
        with running_lab(lab, keep=args.keep_lab) as was_running:
            with tempfile.TemporaryDirectory(prefix="voiceauth-demo-call-") as tmp:
                rows = asyncio.run(run_calls(lab, Path(tmp), clock))
    except (LabUnavailable, subprocess.TimeoutExpired) as exc:
        print(f"phone demo not run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nphone demo interrupted; the worker, the callers and the lab Asterisk it started are stopped",
              file=sys.stderr)
        return 130
    if not (was_running or args.keep_lab):
        clock.say("lab Asterisk stopped (the chroot stays for the next run)")
    print()
    print("What the dialplan saw (VOICEAUTH_* channel variables, reported by Asterisk over AMI):")
    print(table(rows))
    if not succeeded(rows):
        print("\nunexpected: ana should be ENROLLED and PASS, luis should not PASS", file=sys.stderr)
        return 1
    clock.say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
