"""Replay detection: is this attempt a recording of one of the account's earlier calls?

Flows call, on the engine's executor (all synchronous):

* ``fp = fingerprint(clip)`` of the attempt's audio;
* ``check_replay(fp, SqlFingerprintStore(store).references(account), threshold)``
  gives a :class:`ReplayCheck` with ``replay`` and a ``reason``;
* then ``SqlFingerprintStore(store).add(account, fp, "verification")`` so the
  next attempt is compared with this one too (also at enrolment, "enrolment").
"""

from voiceprints.replay.fingerprint import Fingerprint, fingerprint
from voiceprints.replay.match import ReplayCheck, ReplayReference, check_replay, match_score

__all__ = ["Fingerprint", "ReplayCheck", "ReplayReference", "check_replay", "fingerprint", "match_score"]
