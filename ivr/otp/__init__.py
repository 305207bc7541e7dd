"""One-time codes keyed in on the phone keypad: the step-up factor when the voice is not enough."""

from ivr.otp.backends import ChallengeHandle, LocalOtpBackend, OtpBackend, TwilioVerifyBackend
from ivr.otp.config import OtpConfig
from ivr.otp.errors import NoDestinationError, OtpDeliveryError, OtpError, OtpUnavailableError, ResendRefused
from ivr.otp.service import IssuedCode, OtpResult, OtpService, OtpVerification

__all__ = [
    "ChallengeHandle",
    "IssuedCode",
    "LocalOtpBackend",
    "NoDestinationError",
    "OtpBackend",
    "OtpConfig",
    "OtpDeliveryError",
    "OtpError",
    "OtpResult",
    "OtpService",
    "OtpUnavailableError",
    "OtpVerification",
    "ResendRefused",
    "TwilioVerifyBackend",
]
