"""The engine's one inference queue: off the event loop, bounded, and "busy" instead of an endless wait."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from voiceprints.errors import EngineBusyError
from voiceprints.inference import InferenceQueue


class Gate:
    """A stand-in inference that holds its thread until released, counting how many run at once."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self._lock = threading.Lock()
        self.running = self.peak = self.calls = 0

    def __call__(self, value: int = 0) -> int:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            assert self.open.wait(30), "the test never released the gate"
            return value
        finally:
            with self._lock:
                self.running -= 1


async def until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.open.set()


async def test_no_more_than_the_workers_run_and_every_result_comes_back(gate):
    queue = InferenceQueue(workers=2, max_waiting=10)
    tasks = [asyncio.create_task(queue.run(gate, i)) for i in range(6)]
    await until(lambda: gate.running == 2)
    assert queue.pending == 6
    gate.open.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 30) == list(range(6))
    assert gate.peak == 2 and queue.pending == 0
    queue.close()


async def test_past_the_bound_a_sheddable_request_is_refused_at_once_and_counted(gate):
    queue = InferenceQueue(workers=1, max_waiting=1)
    running = asyncio.create_task(queue.run(gate))
    waiting = asyncio.create_task(queue.run(gate))
    await until(lambda: gate.running == 1)
    assert queue.saturated
    started = time.monotonic()
    with pytest.raises(EngineBusyError, match="busy"):
        await queue.run(gate, shed=True)
    assert time.monotonic() - started < 0.5 and queue.rejected == 1
    # Work that must not be lost (an enrolment being stored) still queues.
    kept = asyncio.create_task(queue.run(gate, 7))
    gate.open.set()
    assert await asyncio.wait_for(asyncio.gather(running, waiting, kept), 30) == [0, 0, 7]
    assert not queue.saturated and queue.pending == 0
    assert await queue.run(gate, 3, shed=True) == 3  # room again: served
    queue.close()


async def test_a_waiting_request_whose_caller_hangs_up_never_runs_and_frees_its_place(gate):
    queue = InferenceQueue(workers=1, max_waiting=1)
    first = asyncio.create_task(queue.run(gate))
    queued = asyncio.create_task(queue.run(gate))
    await until(lambda: gate.running == 1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert queue.pending == 1 and not queue.saturated
    gate.open.set()
    await asyncio.wait_for(first, 30)
    assert gate.calls == 1 and queue.pending == 0
    queue.close()


async def test_a_running_inference_holds_its_place_until_its_thread_is_done(gate):
    """A hung-up caller's inference still uses a core: it is counted until it ends."""
    queue = InferenceQueue(workers=1, max_waiting=0)
    running = asyncio.create_task(queue.run(gate))
    await until(lambda: gate.running == 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    with pytest.raises(EngineBusyError):
        await queue.run(gate, shed=True)
    gate.open.set()
    await until(lambda: queue.pending == 0)
    queue.close()


async def test_the_event_loop_keeps_ticking_while_inferences_run():
    queue = InferenceQueue(workers=2, max_waiting=4)
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        for _ in range(10_000):  # bounded; stops long before this
            ticks.append(time.perf_counter())
            if stop.is_set():
                return
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.wait_for(asyncio.gather(*(queue.run(time.sleep, 0.3) for _ in range(4))), 30)
    finally:
        stop.set()
        await ticking
        queue.close()
    # Run on the loop, each 0.3 s inference would freeze it.
    assert len(ticks) > 10 and np.diff(ticks).max() < 0.15


async def test_errors_reach_the_caller_and_release_the_place():
    queue = InferenceQueue(workers=1, max_waiting=0)

    def broken() -> None:
        raise ValueError("model failed")

    with pytest.raises(ValueError, match="model failed"):
        await queue.run(broken)
    assert queue.pending == 0 and await queue.run(int, "5", shed=True) == 5
    queue.close()


async def test_a_closed_queue_refuses_work_and_bad_bounds_are_refused():
    queue = InferenceQueue(workers=1, max_waiting=0)
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.run(int, "1")
    with pytest.raises(ValueError, match="workers"):
        InferenceQueue(workers=0, max_waiting=1)
