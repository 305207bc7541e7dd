"""Values derived from every enrolled voiceprint, kept in step with the store off the caller's path.

A cohort normaliser or an identification index decrypts every voiceprint of
the model to build: seconds at 100,000 voiceprints. A caller must not pay
that, and no worker may keep using a voiceprint that was erased anywhere:

* built once at first use (the worker's warm-up does it, not a caller);
* after an enrolment by any worker (the store's change journal), a value
  that can take the new voiceprint directly does (the identification index:
  a few rows read, nothing rebuilt); otherwise, and every ``ttl_s``, it is
  rebuilt on a background thread while calls keep the previous value (a new
  enrolment joins the cohort a moment later, which changes no decision's
  meaning);
* dropped at once when an erasure by any worker touches it; the next caller
  waits for the rebuild, because an erased voiceprint is never used, not
  even for a moment. A build that began before the erasure is not kept.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Enrolments seen at one look that a value absorbs directly; more (a bulk enrolment) mean a rebuild.
ABSORB_AT_MOST = 64


class DerivedValue(Generic[T]):
    def __init__(self, name: str, build: Callable[[], T], holds_any: Callable[[T, frozenset[str]], bool],
                 *, ttl_s: float, background: Executor,
                 absorb: Callable[[T, frozenset[str]], None] | None = None) -> None:
        self.name = name
        self._build = build
        self._holds_any = holds_any
        self._absorb = absorb
        self._ttl_s = ttl_s
        self._background = background
        self._lock = threading.Lock()
        self._value: T | None = None
        self._built_at = 0.0
        self._stale = False
        self._refreshing = False
        # Bumped by every erasure: a build that started before one is handed to its caller, not kept.
        self._era = 0
        # Bumped by every enrolment: a build that started before one is kept, but rebuilt again.
        self._enrolments = 0
        self.rebuilds = 0
        """Builds kept since start (for tests and logs)."""

    def get(self) -> T:
        with self._lock:
            value, era = self._value, self._era
            due = self._stale or time.monotonic() - self._built_at >= self._ttl_s
        if value is None:
            return self._build_and_keep(era)
        if due:
            self._refresh_later()
        return value

    def enrolled(self, speakers: frozenset[str]) -> None:
        """``speakers`` enrolled: absorb them now when small enough, else rebuild at the next use, in the background."""
        with self._lock:
            self._enrolments += 1
            value = self._value
        if value is None:
            return
        if self._absorb is not None and len(speakers) <= ABSORB_AT_MOST:
            self._absorb(value, speakers)
            return
        with self._lock:
            self._stale = True

    def erased(self, speakers: frozenset[str]) -> None:
        with self._lock:
            self._era += 1
            if self._value is not None and self._holds_any(self._value, speakers):
                self._value = None

    def forget(self) -> None:
        """Drop the value whatever it holds (the change journal may have moved on without us)."""
        with self._lock:
            self._era += 1
            self._value = None

    def _build_and_keep(self, era: int) -> T:
        with self._lock:
            enrolments = self._enrolments
        value = self._build()
        with self._lock:
            if self._era == era:
                self._value, self._built_at = value, time.monotonic()
                self._stale = self._enrolments != enrolments  # it may have missed them: again, in the background
                self.rebuilds += 1
        return value

    def _refresh_later(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing, era = True, self._era
        try:
            self._background.submit(self._refresh, era)
        except RuntimeError:  # shutting down: keep serving what we have
            with self._lock:
                self._refreshing = False

    def _refresh(self, era: int) -> None:
        started = time.monotonic()
        try:
            self._build_and_keep(era)
            log.debug("rebuilt the %s in %.2f s", self.name, time.monotonic() - started)
        except Exception:  # noqa: BLE001 - calls keep the previous value; the next use tries again
            log.exception("rebuilding the %s failed; calls keep the previous one", self.name)
        finally:
            with self._lock:
                self._refreshing = False
