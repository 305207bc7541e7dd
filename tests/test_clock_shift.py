"""The time-bomb guard (tests/clock_shift.py) catches a test that depends on the day it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A time bomb of the kind that broke CI: the code under test stamps with a clock the test does not
# control (here SQLite's), the test compares it with the Python clock. It passes on the real clock only.
BOMB = '''
import datetime as dt
import sqlite3
import time


def test_row_stamped_now():
    (stamp,) = sqlite3.connect(":memory:").execute("SELECT strftime('%s', 'now')").fetchone()
    assert abs(int(stamp) - dt.datetime.now(dt.timezone.utc).timestamp()) < 3600


def test_elapsed_time_and_sleep_stay_real():
    start = time.monotonic()
    time.sleep(0.05)
    assert 0.04 < time.monotonic() - start < 5
'''


def run_bomb(tmp_path: Path, days: int) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_bomb.py").write_text(BOMB)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.clock_shift",
         f"--clock-shift-days={days}", "--rootdir", str(tmp_path), str(tmp_path / "test_bomb.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_on_the_real_clock_the_bomb_passes(tmp_path):
    result = run_bomb(tmp_path, 0)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


@pytest.mark.parametrize("days", [400, -400])
def test_a_shifted_clock_sets_the_bomb_off_and_leaves_elapsed_time_alone(tmp_path, days):
    result = run_bomb(tmp_path, days)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "test_row_stamped_now" in result.stdout
    assert f"wall clock shifted {days:+d} days" in result.stdout
