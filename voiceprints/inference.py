"""One bounded queue in front of model inference, with back-pressure.

A worker has a few cores and many calls. Past a point, a caller waiting
for a free core waits longer than a one-time code would take, and every
caller behind them waits too; so at most ``workers`` inferences run, at most
``max_waiting`` wait, and past that a *sheddable* request (a verification the
call can replace with another factor) is refused at once with
:class:`EngineBusyError`. Work that must not be lost (storing an enrolment)
always queues.

Threads work because torch and numpy release the GIL during the heavy
numerics, so the event loop keeps serving calls meanwhile. A waiting request
whose caller hangs up is cancelled before it ever runs.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from voiceprints.errors import EngineBusyError

T = TypeVar("T")


class InferenceQueue:
    def __init__(self, workers: int, max_waiting: int) -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError(f"need workers >= 1 and max_waiting >= 0, got {workers} and {max_waiting}")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voiceprint")
        self._limit = workers + max_waiting
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False
        self.rejected = 0
        """Requests refused as busy since start (monotonic: the worker exports it as a metric)."""

    @property
    def pending(self) -> int:
        """Requests running or waiting now."""
        return self._pending

    @property
    def saturated(self) -> bool:
        """True while a sheddable request would be refused: the worker reports itself not ready."""
        return self._pending >= self._limit

    async def run(self, fn: Callable[..., T], *args: Any, shed: bool = False) -> T:
        """``fn(*args)`` on a worker thread; with ``shed``, EngineBusyError instead of joining a full queue."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the inference queue has been closed")
            if shed and self._pending >= self._limit:
                self.rejected += 1
                raise EngineBusyError(
                    f"{self._pending} inferences running or waiting (limit {self._limit}): the engine is busy")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        # Counted until the thread is done (or the request was cancelled before it started),
        # not until the awaiting caller gives up: a hung-up call's running inference still uses a core.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: Future[Any] | None) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        """Refuse new work, drop what waits, wait for what runs (at most ``workers``, each well under 1 s)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
