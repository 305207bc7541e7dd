"""The audit log of authentication attempts: record, filter, export, summarise, purge."""

from ivr.audit.export import CSV_COLUMNS, factors_text, write_csv, write_json
from ivr.audit.log import AuditEntry, AuditLog, AuditRecord, AuditUnavailableError, scrub
from ivr.audit.summary import DailySummary, daily_summary, summarise

__all__ = [
    "CSV_COLUMNS",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "AuditUnavailableError",
    "DailySummary",
    "daily_summary",
    "factors_text",
    "scrub",
    "summarise",
    "write_csv",
    "write_json",
]
