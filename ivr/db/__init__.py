"""The IVR's own tables (customers and fallback factors), separate from the voiceprint store."""

from ivr.db.base import Base
from ivr.db.engine import Database, open_database
from ivr.db.models import Customer, KnowledgeAnswer, OtpChallenge

__all__ = ["Base", "Customer", "Database", "KnowledgeAnswer", "OtpChallenge", "open_database"]
