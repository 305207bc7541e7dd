"""Ways of getting a one-time code to the caller: e-mail, SMS, voice call."""

from ivr.otp.senders.base import DeliveryErrorKind, DeliveryResult, OtpSender
from ivr.otp.senders.smtp import SmtpConfig, SmtpOtpSender
from ivr.otp.senders.twilio_sms import TwilioSmsSender
from ivr.otp.senders.twilio_voice import TwilioVoiceSender

__all__ = [
    "DeliveryErrorKind",
    "DeliveryResult",
    "OtpSender",
    "SmtpConfig",
    "SmtpOtpSender",
    "TwilioSmsSender",
    "TwilioVoiceSender",
]
