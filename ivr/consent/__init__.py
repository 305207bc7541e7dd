"""Consent before enrolment, opt-out with erasure, and retention limits with a purge.

Exports other than the settings groups are resolved on first use, so that
the settings can import ``ConsentConfig`` without the database layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ivr.consent.config import ConsentConfig, RetentionConfig

if TYPE_CHECKING:
    from ivr.consent.registry import (
        ConsentRecord,
        ConsentRegistry,
        ConsentState,
        EnrolPermission,
        OptOutResult,
    )
    from ivr.consent.retention import PurgeReport, last_voiceprint_use, purge, record_voiceprint_use

_LAZY = {
    **dict.fromkeys(
        ("ConsentRecord", "ConsentRegistry", "ConsentState", "EnrolPermission", "OptOutResult"),
        "ivr.consent.registry",
    ),
    **dict.fromkeys(
        ("PurgeReport", "last_voiceprint_use", "purge", "record_voiceprint_use"), "ivr.consent.retention"
    ),
}

__all__ = [
    "ConsentConfig",
    "ConsentRecord",
    "ConsentRegistry",
    "ConsentState",
    "EnrolPermission",
    "OptOutResult",
    "PurgeReport",
    "RetentionConfig",
    "last_voiceprint_use",
    "purge",
    "record_voiceprint_use",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
