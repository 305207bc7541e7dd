"""Attempt limits; a settings group (``VOICEAUTH_LIMITS__IDENTITY__MAX_EVENTS=5`` and so on)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LimitRule(BaseModel):
    # Reaching max_events counted events inside the sliding window locks the
    # subject for lock_s; events before a lock, a success or an unlock no
    # longer count afterwards.
    max_events: int = Field(..., ge=1)
    window_s: int = Field(..., ge=1)
    lock_s: int = Field(..., ge=1)
    counts: Literal["failures", "attempts"]
    # Each lock that follows another without a success in between lasts twice
    # as long (lock_s, 2 x, 4 x ...), up to max_lock_s: a patient attacker
    # gets fewer tries per day, a customer who fumbled once is not punished.
    escalate: bool = False
    max_lock_s: int = Field(24 * 60 * 60, ge=1)


class IdentityLimit(LimitRule):
    # Per claimed identity, on every line (verify, enrolment, opt-out): 5
    # failed tries in 15 minutes lock it for 30, then 60, 120... Five covers a
    # caller fumbling a code twice and a bad line twice; an attacker guessing
    # a 4-digit PIN gets 5 in 10**4 per half hour, and with doubling locks
    # about 40 tries in the first day, fewer every day after.
    max_events: int = Field(default=5, ge=1)
    window_s: int = Field(default=15 * 60, ge=1)
    lock_s: int = Field(default=30 * 60, ge=1)
    counts: Literal["failures", "attempts"] = "failures"
    escalate: bool = True


class CallerLimit(LimitRule):
    # Per caller number: 20 calls an hour is far above anyone's own use and
    # stops one line walking through account numbers.
    max_events: int = Field(default=20, ge=1)
    window_s: int = Field(default=60 * 60, ge=1)
    lock_s: int = Field(default=60 * 60, ge=1)
    counts: Literal["failures", "attempts"] = "attempts"


class WithheldLimit(LimitRule):
    # Callers with a withheld or invalid number share one bucket per trunk:
    # otherwise hiding the number would escape the per-number limit. Higher
    # than one number's limit (it is shared) but far below what walking
    # account numbers needs; such callers are still limited per account.
    max_events: int = Field(default=60, ge=1)
    window_s: int = Field(default=60 * 60, ge=1)
    lock_s: int = Field(default=15 * 60, ge=1)
    counts: Literal["failures", "attempts"] = "attempts"


class TrunkLimit(LimitRule):
    # Every call arriving on one trunk: a brake on floods from many spoofed
    # numbers. 600 a minute is twice what one worker pair decides (see
    # docs/admins.md, capacity); raise it with the number of workers.
    max_events: int = Field(default=600, ge=1)
    window_s: int = Field(default=60, ge=1)
    lock_s: int = Field(default=60, ge=1)
    counts: Literal["failures", "attempts"] = "attempts"


class LimitsConfig(BaseModel):
    identity: IdentityLimit = IdentityLimit()
    caller: CallerLimit = CallerLimit()
    withheld: WithheldLimit = WithheldLimit()
    trunk: TrunkLimit = TrunkLimit()
    # One authentication in progress per claimed account, across all
    # workers: a second call claiming it meanwhile is refused. The lease
    # expires after this long if a worker dies mid-call, and is renewed at
    # every factor; an enrolment call takes 1-3 minutes.
    lease_s: int = Field(default=5 * 60, ge=10)
