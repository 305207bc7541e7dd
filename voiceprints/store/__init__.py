"""Persistence of voiceprints and calibrations, encrypted at rest.

``open_store(config)`` is the usual entry point; ``SqlVoiceprintStore`` works
on SQLite and PostgreSQL, and ``KeyRing`` holds the AES-256-GCM keys.
"""

from voiceprints.store.base import (
    Calibration,
    EnrolmentMeta,
    Voiceprint,
    VoiceprintStore,
    VoiceprintSummary,
)
from voiceprints.store.crypto import KeyRing
from voiceprints.store.sql import SqlVoiceprintStore, open_store

__all__ = [
    "Calibration",
    "EnrolmentMeta",
    "KeyRing",
    "SqlVoiceprintStore",
    "Voiceprint",
    "VoiceprintStore",
    "VoiceprintSummary",
    "open_store",
]
