"""Drive the lab Asterisk (scripts/lab) and the sipp caller from the lab tests, the demo and the load bench.

The chroot is built once (about a minute, needs the Debian mirror) and reused
afterwards; scripts.lab.lifetime starts and stops it around a block of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.asterisk.ami import AmiClient

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "lab"
SCENARIOS = SCRIPTS / "scenarios"


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
    # The engine's SIP endpoint registers as this user (scripts/lab/etc/pjsip.conf); the dialplan reads
    # its results from the worker's HTTP endpoint on this port.
    sip_user: str = "voiceauth-sip"
    sip_secret: str = "voiceauth-lab-sip"
    sip_results_port: int = 19093
    ami_secret: str = "voiceauth-lab"  # matches scripts/lab/etc/manager.conf

    def ami_client(self, **kwargs: float) -> "AmiClient":
        """An AMI client logged in as the lab's manager user (connect with ``async with``)."""
        from ivr.transports.asterisk.ami import AmiClient

        return AmiClient("127.0.0.1", self.ami_port, username=self.ami_user, secret=self.ami_secret, **kwargs)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "VOICEAUTH_LAB_DIR": str(self.directory),
            "VOICEAUTH_LAB_SIP_PORT": str(self.sip_port),
            "VOICEAUTH_LAB_AMI_PORT": str(self.ami_port),
            "VOICEAUTH_LAB_AUDIOSOCKET": f"127.0.0.1:{self.audiosocket_port}",
            "VOICEAUTH_LAB_AGI": f"127.0.0.1:{self.agi_port}",
            "VOICEAUTH_LAB_SIP_RESULTS": f"http://127.0.0.1:{self.sip_results_port}",
        }

    def _script(self, name: str, *args: str, timeout: float,
                own_session: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPTS / name), *args], env=self._env(), capture_output=True, text=True, timeout=timeout,
            start_new_session=own_session,
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
        # In a session of its own: the Ctrl-C that ends a script must not also cut its clean-up short.
        result = self._script("stop.sh", str(self.directory), timeout=timeout, own_session=True)
        if result.returncode != 0:
            raise RuntimeError("lab Asterisk did not stop:\n" + result.stdout + result.stderr)

    def pid(self) -> int | None:
        """The lab Asterisk's process id while it runs (status.sh: its pid file, checked against /proc)."""
        result = self._script("status.sh", str(self.directory), timeout=15)
        return int(result.stdout.split()[0]) if result.returncode == 0 and result.stdout.strip() else None

    def processes(self) -> list[int]:
        """Every process rooted in the lab chroot (Asterisk, CLI clients): what a stopped lab leaves: none."""
        root = str(self.directory.resolve())
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == root:
                        found.append(int(entry.name))
                except OSError:  # gone meanwhile, or not ours to inspect
                    continue
        return found

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
        start_new_session=True,  # ended by this function only (below), not by the terminal's Ctrl-C
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout + 15)
    except asyncio.TimeoutError:
        process.kill()
        out, err = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (Ctrl-C, SIGTERM): no sipp outlives its caller
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return SippResult(process.returncode or 0, out.decode(errors="replace")[-3000:],
                      err.decode(errors="replace")[-3000:], time.monotonic() - started)

