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


class IdentityLimit(LimitRule):
    # Per claimed identity: 5 failed factors in 15 minutes locks it for 30.
    # Five covers a caller fumbling a code twice and a bad line twice; an
    # attacker guessing 6-digit codes gets 5 in 10**6 per half hour.
    max_events: int = Field(default=5, ge=1)
    window_s: int = Field(default=15 * 60, ge=1)
    lock_s: int = Field(default=30 * 60, ge=1)
    counts: Literal["failures", "attempts"] = "failures"


class CallerLimit(LimitRule):
    # Per caller number: 20 calls an hour is far above anyone's own use and
    # stops one line walking through account numbers.
    max_events: int = Field(default=20, ge=1)
    window_s: int = Field(default=60 * 60, ge=1)
    lock_s: int = Field(default=60 * 60, ge=1)
    counts: Literal["failures", "attempts"] = "attempts"


class LimitsConfig(BaseModel):
    identity: IdentityLimit = IdentityLimit()
    caller: CallerLimit = CallerLimit()
