"""Whoever starts the lab Asterisk stops it again: also on Ctrl-C and SIGTERM, and not when it was running before.

Used by the phone demo, the load bench and the lab tests' session fixture.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from scripts.lab.asterisk import Lab


@contextlib.contextmanager
def running_lab(lab: Lab, *, keep: bool = False) -> Iterator[bool]:
    """The lab Asterisk running for the block; yields whether it was running already.

    Afterwards it is stopped if this block started it (and ``keep`` is false),
    also when the block ends by an exception, Ctrl-C or SIGTERM (handled like
    Ctrl-C meanwhile, see :func:`terminate_like_interrupt`), and even when the
    start itself was interrupted half-way. A lab that was running before is left
    running: someone else is using it.
    """
    was_running = lab.pid() is not None
    with terminate_like_interrupt():
        try:
            lab.start()
            yield was_running
        finally:
            if not (was_running or keep):
                with signals_deferred():
                    lab.stop()


@contextlib.contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM does what Ctrl-C does, so ``finally`` clauses run for both.

    Python's default for SIGTERM is to die on the spot, skipping every clean-up;
    Ctrl-C raises KeyboardInterrupt (or, inside ``asyncio.run``, cancels the main
    task). The handler hands SIGTERM to whatever handles SIGINT at that moment.
    Only the main thread can set handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is over (a clean-up that must not be cut short).

    Then one KeyboardInterrupt stands for them. With :meth:`Lab.stop` (its script
    runs in a session of its own, out of reach of the terminal's Ctrl-C) a second
    Ctrl-C cannot leave Asterisk half-stopped; the block is bounded (stop.sh: seconds).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt
