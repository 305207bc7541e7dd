"""``pytest --clock-shift-days=N``: run the tests with the wall clock N days away from today.

Why: a test that pins a date while the code under test reads the real clock passes the day it is
written and fails weeks later, in every submission's CI at once. Running the suite with the wall
clock a year ahead (and a year back) finds such tests the day they are written; `.ci/run` does it.

Only the wall clock of this Python process moves (``time.time``, ``datetime.now``, ``date.today``,
via time-machine, ticking): ``time.monotonic`` and ``time.sleep`` stay real, so timeouts, asyncio
and threads behave as usual. Child processes (the lab Asterisk, ``ivr serve`` started by a test)
keep the real clock; tests that compare their times with this process's belong to the lab, which
is not run shifted.
"""

from __future__ import annotations

import datetime as dt

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days", type=int, default=0, metavar="N",
        help="move this process's wall clock N days (negative: back) for the whole run, to find tests "
             "that depend on the day they run",
    )


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--clock-shift-days")
    if not days:
        return
    import time_machine

    traveller = time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days), tick=True)
    traveller.start()
    config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    days = config.getoption("--clock-shift-days")
    if not days:
        return None
    return f"wall clock shifted {days:+d} days: today is {dt.date.today().isoformat()} for these tests"
