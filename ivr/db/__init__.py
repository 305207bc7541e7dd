"""The IVR's own tables (customers and fallback factors), separate from the voiceprint store."""

from ivr.db.base import Base
from ivr.db.engine import Database, open_database
from ivr.db.models import Customer, KnowledgeAnswer, OtpChallenge
from ivr.db.models_policy import AuditEvent, ConsentEvent, LimitEvent, LimitSubject, VoiceprintUse

__all__ = [
    "AuditEvent",
    "Base",
    "ConsentEvent",
    "Customer",
    "Database",
    "KnowledgeAnswer",
    "LimitEvent",
    "LimitSubject",
    "OtpChallenge",
    "VoiceprintUse",
    "open_database",
]
