"""Consent and retention settings (``VOICEAUTH_CONSENT__*``, ``VOICEAUTH_RETENTION__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsentConfig(BaseModel):
    # The version of the privacy notice the consent prompt reads out; stored
    # with every consent so it can be shown what a caller agreed to. Change
    # it whenever the notice changes.
    policy_version: str = Field("2025-01", min_length=1, max_length=32)


class RetentionConfig(BaseModel):
    # A voiceprint nobody has used for a year serves no purpose any more
    # (Ley 1581 / GDPR storage limitation); None keeps voiceprints forever.
    voiceprint_unused_days: int | None = Field(365, ge=1)
    # Audit rows: a year covers disputes and fraud investigations.
    audit_days: int | None = Field(365, ge=1)
    # One-time-code challenges are only useful during the call, plus a day
    # for troubleshooting delivery problems.
    otp_challenge_days: float = Field(1.0, gt=0)
