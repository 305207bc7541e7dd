"""Fraudster watchlist: known fraudsters' voiceprints and a 1:N screen of every caller against them.

Flows call, on the engine's executor (all synchronous): build a
``WatchlistScreen(model_id, *SqlWatchlistStore(store).load_matrix(model_id),
threshold=..., uncentred_threshold=..., population=engine.enrolled_vectors())``
at start-up (and again after the list changes, or a minute later),
then ``screen.screen(embedding)`` for every verification and enrolment gives
a :class:`WatchlistResult` with ``hit`` and a ``reason``.
"""

from voiceprints.watchlist.screen import WatchlistResult, WatchlistScreen, entry_vector
from voiceprints.watchlist.store import SqlWatchlistStore, WatchlistEntry

__all__ = ["SqlWatchlistStore", "WatchlistEntry", "WatchlistResult", "WatchlistScreen", "entry_vector"]
