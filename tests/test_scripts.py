"""The user-facing scripts stand on their own and clean up after themselves (no lab needed here).

The lab side (Asterisk stopped after Ctrl-C / SIGTERM, a running lab left
alone) is in tests/lab/test_lab_lifetime.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["demo_call.py", "bench_load.py", "bench_bulk_enrol.py"])
def test_the_phone_demo_and_the_load_bench_do_not_need_the_test_package(script):
    """A user runs them from a checkout (or a copy) without tests/: nothing of it may be imported."""
    probe = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("script", {str(REPO / "scripts" / script)!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["script"] = module
        spec.loader.exec_module(module)
        assert callable(module.main)
        print(sorted(name for name in sys.modules if name == "tests" or name.startswith("tests.")))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# A script's shape: clean-up in ``finally``, work in plain code or inside asyncio.run.
CHILD = textwrap.dedent("""
    import asyncio, sys, time
    sys.path.insert(0, {repo!r})
    from scripts.lab.lifetime import terminate_like_interrupt

    async def work():
        try:
            print("working", flush=True)
            await asyncio.sleep(60)
        finally:
            print("task cleaned up", flush=True)

    try:
        with terminate_like_interrupt():
            try:
                if {in_asyncio!r}:
                    asyncio.run(work())
                else:
                    print("working", flush=True)
                    time.sleep(60)
            finally:
                print("script cleaned up", flush=True)
    except KeyboardInterrupt:
        sys.exit(130)
""")


@pytest.mark.parametrize("in_asyncio", [False, True], ids=["plain", "asyncio.run"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_sigterm_runs_the_same_clean_up_as_ctrl_c(sig, in_asyncio):
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), in_asyncio=in_asyncio)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "working"
        child.send_signal(sig)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    expected = (["task cleaned up"] if in_asyncio else []) + ["script cleaned up"]
    assert out.split("\n")[:-1] == expected
