"""Random digit strings for the liveness challenge, never asked twice of an account within a period.

A challenge the caller could not have known in advance is what makes a
recording useless: a replay says an old string. Strings come from the
operating system's CSPRNG (``secrets``), so they cannot be predicted from
earlier ones.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Protocol

__all__ = ["ChallengeExhaustedError", "ChallengeHistory", "new_challenge", "random_digits"]

# 10^4 strings of 4 digits: with a 30-day reuse period and a few calls a
# month an account never runs out, and a redraw is almost never needed.
_MAX_DRAWS = 50
# After that many redraws (a tiny space, e.g. in a test, or a flood of
# challenges) a space this small is listed and an unused string picked from it.
_MAX_ENUMERATED = 100_000


class ChallengeHistory(Protocol):
    """Where recently asked strings are remembered (``voiceprints.liveness.store.SqlChallengeHistory``)."""

    def recent(self, account: str, since: dt.datetime) -> set[str]: ...

    def record(self, account: str, digits: str, at: dt.datetime) -> None: ...


def random_digits(min_digits: int = 4, max_digits: int = 6) -> str:
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
    length = min_digits + secrets.randbelow(max_digits - min_digits + 1)
    return "".join(str(secrets.randbelow(10)) for _ in range(length))


def new_challenge(account: str, history: ChallengeHistory, *, min_digits: int = 4, max_digits: int = 6,
                  reuse_days: float = 30.0, now: dt.datetime) -> str:
    """A fresh string for ``account``, not among those asked in the last ``reuse_days``; recorded as asked."""
    used = history.recent(account, now - dt.timedelta(days=reuse_days)) if reuse_days > 0 else set()
    for _ in range(_MAX_DRAWS):
        digits = random_digits(min_digits, max_digits)
        if digits not in used:
            history.record(account, digits, now)
            return digits
    if sum(10 ** n for n in range(min_digits, max_digits + 1)) <= _MAX_ENUMERATED:
        unused = [f"{i:0{n}d}" for n in range(min_digits, max_digits + 1) for i in range(10 ** n)
                  if f"{i:0{n}d}" not in used]
        if unused:
            digits = secrets.choice(unused)
            history.record(account, digits, now)
            return digits
    raise ChallengeExhaustedError(
        f"every digit string of {min_digits}-{max_digits} digits was asked of account {account!r} in the last "
        f"{reuse_days:g} days; shorten VOICEAUTH_LIVENESS__REUSE_DAYS or allow longer strings")


class ChallengeExhaustedError(RuntimeError):
    """No unused digit string is left for the account within the reuse period."""
