"""Whoever starts the lab Asterisk stops it, also on Ctrl-C and SIGTERM; a lab running before stays running.

The phone demo, the load bench and the lab fixture all hold the lab with
``scripts.lab.lifetime.running_lab``. Here a separate Python process does what
the phone demo does (the lab held around ``asyncio.run`` with a sipp caller in
flight) and is interrupted: afterwards no process may remain in the chroot
(nor the caller) unless the lab was running before, and then the same
Asterisk must still run.

Starts and stops the shared lab: run inside ``flock /tmp/voiceauth-lab.lock``
like every lab test. The lab is left as it was found.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.lab.asterisk import REPO, Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# What a script does: hold the lab around asyncio.run, a sipp caller running, until interrupted.
# The caller sends one OPTIONS to a port nobody answers on and waits: it stays up until stopped.
SCRIPT = textwrap.dedent("""
    import asyncio, dataclasses, socket, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from scripts.lab.asterisk import Lab, run_sipp
    from scripts.lab.lifetime import running_lab

    async def call(lab, work):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            nobody = dataclasses.replace(lab, sip_port=s.getsockname()[1])
        caller = asyncio.create_task(run_sipp(nobody, work / "idle.xml", "999", workdir=work, sip_port=5399,
                                              media_port=7990, timeout=120))
        await asyncio.sleep(1.0)
        print("calling", flush=True)
        await caller

    lab = Lab()
    try:
        with running_lab(lab) as was_running:
            print("lab up, was running:", was_running, flush=True)
            asyncio.run(call(lab, Path({work!r})))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")
IDLE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="idle caller">
  <send>
    <![CDATA[
      OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:idle@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="100000"/>
</scenario>
"""


@pytest.fixture
def lab(asterisk: Lab) -> Lab:
    """The lab (built and started by the session's ``asterisk``); afterwards running again if it was
    running before (other lab tests use it)."""
    lab = Lab()
    was_running = lab.pid() is not None
    yield lab
    if was_running and lab.pid() is None:
        lab.start()
    elif not was_running and lab.pid() is not None:
        lab.stop()


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_and_interrupt(lab: Lab, work: Path, sig: signal.Signals) -> tuple[int, str]:
    (work / "idle.xml").write_text(IDLE)
    child = subprocess.Popen([sys.executable, "-c", SCRIPT.format(repo=str(REPO), work=str(work))],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line)
            if line.startswith("calling"):
                break
        assert lines and lines[-1].startswith("calling"), "".join(lines)
        caller = [pid for pid in processes_with(str(work / "idle.xml")) if pid != child.pid]
        assert caller, "the sipp caller is not running"
        child.send_signal(sig)
        out, _ = child.communicate(timeout=90)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = "".join(lines) + out
    assert processes_with(str(work / "idle.xml")) == [], "the sipp caller outlived the script:\n" + output
    return child.returncode, output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_script_interrupted_stops_the_lab_it_started(lab, sig, tmp_path):
    if lab.pid() is not None:
        lab.stop()
    assert lab.processes() == []
    code, output = run_and_interrupt(lab, tmp_path, sig)
    assert code == 130 and "lab up, was running: False" in output and "interrupted" in output, output
    assert lab.pid() is None
    assert lab.processes() == [], f"left running in {lab.directory}: {lab.processes()}\n{output}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_script_interrupted_leaves_a_lab_that_was_running_before(lab, sig, tmp_path):
    lab.start()
    before = lab.pid()
    assert before is not None
    code, output = run_and_interrupt(lab, tmp_path, sig)
    assert code == 130 and "lab up, was running: True" in output, output
    assert lab.pid() == before
    assert "Asterisk" in lab.rx("core show version")


def test_stopping_also_ends_an_asterisk_whose_start_was_cut_short(lab):
    """An Asterisk running in the chroot without its pid file (start interrupted) is still ours to stop."""
    lab.start()
    pid = lab.pid()
    (lab.directory / "run/asterisk/asterisk.pid").unlink()
    assert lab.pid() is None and pid in lab.processes()
    lab.stop()
    assert lab.processes() == []
