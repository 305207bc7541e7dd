"""Drive the lab Asterisk (scripts/lab) and the sipp caller from tests.

One Asterisk serves the whole test session; the chroot is built once (about a
minute, needs the Debian mirror) and reused from .lab/chroot afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.ami import AmiClient

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "lab"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


class LabUnavailable(RuntimeError):
    """The lab cannot run here; the message says what is missing."""


@dataclass
class Lab:
    directory: Path = field(default_factory=lambda: Path(os.environ.get("VOICEAUTH_LAB_DIR", REPO / ".lab" / "chroot")))
    sip_port: int = 5060
    ami_port: int = 5038
    audiosocket_port: int = 9092
    agi_port: int = 4573
    ami_user: str = "voiceauth"
    ami_secret: str = "voiceauth-lab"  # matches scripts/lab/etc/manager.conf

    def ami_client(self, **kwargs: float) -> "AmiClient":
        """An AMI client logged in as the lab's manager user (connect with ``async with``)."""
        from ivr.transports.ami import AmiClient

        return AmiClient("127.0.0.1", self.ami_port, username=self.ami_user, secret=self.ami_secret, **kwargs)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VOICEAUTH_LAB_DIR": str(self.directory),
            "VOICEAUTH_LAB_SIP_PORT": str(self.sip_port),
            "VOICEAUTH_LAB_AMI_PORT": str(self.ami_port),
            "VOICEAUTH_LAB_AUDIOSOCKET": f"127.0.0.1:{self.audiosocket_port}",
            "VOICEAUTH_LAB_AGI": f"127.0.0.1:{self.agi_port}",
        }

    def _script(self, name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPTS / name), *args], env=self._env(), capture_output=True, text=True, timeout=timeout
        )

    @property
    def built(self) -> bool:
        return (self.directory / ".voiceauth-lab-complete").is_file()

    def build(self, timeout: float = 900) -> None:
        if os.geteuid() != 0:
            raise LabUnavailable("the lab needs root (debootstrap, chroot, mount)")
        result = self._script("build.sh", str(self.directory), timeout=timeout)
        if result.returncode != 0:
            raise LabUnavailable(
                "could not build the lab Asterisk chroot (debootstrap needs the Debian mirror):\n" + result.stdout + result.stderr
            )

    def start(self, timeout: float = 120) -> None:
        result = self._script("start.sh", str(self.directory), timeout=timeout)
        if result.returncode != 0:
            raise LabUnavailable("lab Asterisk did not start:\n" + result.stdout + result.stderr)

    def stop(self, timeout: float = 60) -> None:
        result = self._script("stop.sh", str(self.directory), timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError("lab Asterisk did not stop:\n" + result.stdout + result.stderr)

    def rx(self, command: str, timeout: float = 15) -> str:
        result = self._script("rx.sh", command, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed: {result.stderr}")
        return result.stdout

    def wait_rx(self, command: str, expect: str, timeout: float) -> str:
        """Poll a CLI command until its output contains ``expect`` (bounded)."""
        deadline = time.monotonic() + timeout
        output = ""
        while time.monotonic() < deadline:
            try:
                output = self.rx(command)
            except RuntimeError:
                output = ""
            if expect in output:
                return output
            time.sleep(0.2)
        raise AssertionError(f"{command!r} never showed {expect!r} within {timeout} s; last output:\n{output}")


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


async def sipp_call(
    lab: Lab,
    scenario: str,
    *,
    exten: str,
    audio: Path,
    digits: str,
    workdir: Path,
    speech_ms: int = 3000,
    wait_ms: int = 20000,
    hold_ms: int = 1000,
    timeout: float = 45,
) -> SippResult:
    """Place one call with sipp (as an asyncio subprocess, so servers in this loop keep serving)."""
    text = (SCENARIOS / scenario).read_text()
    for key, value in {
        "@AUDIO@": audio.name,  # sipp resolves it relative to its working directory
        "@DIGITS@": digits,
        "@SPEECH_MS@": str(speech_ms),
        "@WAIT_MS@": str(wait_ms),
        "@HOLD_MS@": str(hold_ms),
    }.items():
        text = text.replace(key, value)
    scenario_file = workdir / f"{exten}-{scenario}"
    scenario_file.write_text(text)
    if audio.parent != workdir:
        (workdir / audio.name).write_bytes(audio.read_bytes())
    return await run_sipp(lab, scenario_file, exten, workdir=workdir, sip_port=5070, media_port=6000,
                          timeout=timeout)


async def run_sipp(lab: Lab, scenario: Path, exten: str, *, workdir: Path, sip_port: int, media_port: int,
                   timeout: float) -> SippResult:
    """One sipp call as an asyncio subprocess (so servers in this loop keep serving), bounded in time."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf", str(scenario),
        "-s", exten,
        "-i", "127.0.0.1", "-p", str(sip_port),
        "-mi", "127.0.0.1", "-mp", str(media_port),
        "-m", "1",
        "-timeout", f"{int(timeout)}", "-timeout_error",
        "-nostdin",
        f"127.0.0.1:{lab.sip_port}",
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout + 15)
    except asyncio.TimeoutError:
        process.kill()
        out, err = await process.communicate()
    return SippResult(process.returncode or 0, out.decode(errors="replace")[-3000:],
                      err.decode(errors="replace")[-3000:], time.monotonic() - started)
