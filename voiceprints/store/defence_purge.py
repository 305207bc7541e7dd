"""Retention of what the attack defences keep: replay fingerprints, asked digit strings, expired
watchlist entries. Meant to run with the daily purge (``ivr purge``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from voiceprints.config import CoreConfig
from voiceprints.store.sql import SqlVoiceprintStore

__all__ = ["DefencePurge", "purge_defence_data"]


@dataclass(frozen=True)
class DefencePurge:
    replay_fingerprints: int  # older than VOICEAUTH_REPLAY__RETENTION_DAYS
    liveness_challenges: int  # asked before the reuse period: nothing needs them any more
    watchlist_entries: int  # past their expiry (entries made from a call's audio)
    recent_calls: int  # call embeddings older than VOICEAUTH_WATCHLIST__CALL_MEMORY_DAYS

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def purge_defence_data(store: SqlVoiceprintStore, config: CoreConfig, now: dt.datetime | None = None
                       ) -> DefencePurge:
    from voiceprints.liveness.store import SqlChallengeHistory
    from voiceprints.replay.store import SqlFingerprintStore
    from voiceprints.watchlist.calls import SqlCallEmbeddings
    from voiceprints.watchlist.store import SqlWatchlistStore

    now = now or store.clock()
    return DefencePurge(
        replay_fingerprints=SqlFingerprintStore(store).purge(now - dt.timedelta(days=config.replay.retention_days)),
        liveness_challenges=SqlChallengeHistory(store).purge(now - dt.timedelta(days=config.liveness.reuse_days)),
        watchlist_entries=SqlWatchlistStore(store).purge_expired(now),
        recent_calls=SqlCallEmbeddings(store).purge(now - dt.timedelta(days=config.watchlist.call_memory_days)),
    )
