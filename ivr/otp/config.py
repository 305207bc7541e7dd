"""Settings of locally generated one-time codes; each default says why."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OtpConfig(BaseModel):
    # 6 digits: 1 in 1,000,000 per guess, and still easy to key in on a phone
    # keypad while listening to a prompt (NIST SP 800-63B asks for >= 6).
    length: int = Field(6, ge=4, le=10)
    # 5 minutes covers SMS/e-mail delivery delays and the caller reading the
    # code back, while keeping the guessing window short.
    ttl_s: int = Field(300, ge=30, le=3600)
    # With 3 tries an attacker's chance per challenge is 3 in 10**length.
    max_attempts: int = Field(3, ge=1, le=10)
    # Two resends cover a lost SMS and a wrong channel without turning the
    # IVR into an SMS cannon against someone's phone.
    max_resends: int = Field(2, ge=0, le=10)
    # Carriers can take 10-20 s to deliver an SMS; resending sooner mostly
    # produces two codes on the phone, only the last of which works.
    resend_cooldown_s: int = Field(30, ge=0, le=600)
    # Codes sent to one customer, whatever line or caller asked for them: a
    # customer needs one or two a day; more is someone using the IVR to flood
    # their phone or mailbox (SMS bombing) or to farm codes.
    max_sends_per_hour: int = Field(5, ge=1, le=100)
    max_sends_per_day: int = Field(10, ge=1, le=1000)
