"""Lockout and rate limits per claimed identity and per caller number, shared by all workers.

Exports are resolved on first use, so that the settings can import
``LimitsConfig`` without pulling in the database layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ivr.limits.config import CallerLimit, IdentityLimit, LimitRule, LimitsConfig
from ivr.limits.errors import LimitsUnavailableError

if TYPE_CHECKING:
    from ivr.limits.service import Limits, LimitState, LockInfo

_LAZY = {"Limits": "ivr.limits.service", "LimitState": "ivr.limits.service", "LockInfo": "ivr.limits.service"}

__all__ = [
    "CallerLimit",
    "IdentityLimit",
    "LimitRule",
    "LimitState",
    "Limits",
    "LimitsConfig",
    "LimitsUnavailableError",
    "LockInfo",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
