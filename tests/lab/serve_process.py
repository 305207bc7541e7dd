"""A real ``ivr serve`` process for lab tests: started with environment settings, awaited until ready."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

IVR = Path(sys.executable).with_name("ivr")


async def start_serve(env: dict[str, str], http_port: int, log_path: Path) -> asyncio.subprocess.Process:
    """``ivr serve`` with ``env``; returns once ``/readyz`` says ready (fails the test with its log otherwise)."""
    log = open(log_path, "w+b")
    process = await asyncio.create_subprocess_exec(str(IVR), "serve", "--grace", "1", env=env, stdout=log,
                                                   stderr=log)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
        deadline = time.monotonic() + 180  # model import on a busy 2-core machine
        while True:
            if process.returncode is not None:
                pytest.fail(f"ivr serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"ivr serve not ready in time:\n{log_path.read_text()}")
            await asyncio.sleep(0.5)


async def stop_serve(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()
