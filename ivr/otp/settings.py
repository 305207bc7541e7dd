"""How one-time codes reach callers, as admins configure it (VOICEAUTH_OTP__*).

Channels are enabled by configuring them: e-mail when an SMTP host is set,
SMS and voice calls when Twilio credentials and a sender are set. With none
configured, the one-time-code factor is simply unavailable and the policy
moves on to knowledge questions or an agent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from ivr.otp.config import OtpConfig
from ivr.otp.senders.smtp import SmtpConfig


class TwilioSettings(BaseModel):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    # Sender of SMS and voice calls (E.164), or a Messaging Service for SMS.
    from_number: str | None = None
    messaging_service_sid: str | None = None
    # For backend "twilio-verify": Twilio generates and checks the code.
    verify_service_sid: str | None = None
    # A slow provider must not leave the caller in silence: give up after this.
    timeout_s: float = Field(10.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_token)


class OtpSettings(BaseModel):
    # "local": this engine makes, hashes and checks codes and sends them through
    # the channels below; "twilio-verify": Twilio Verify does all of that.
    backend: Literal["local", "twilio-verify"] = "local"
    code: OtpConfig = OtpConfig()
    smtp: SmtpConfig | None = None
    twilio: TwilioSettings = TwilioSettings()
