"""Typed errors of the one-time-code factor."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.otp.senders.base import DeliveryResult


class OtpError(Exception):
    code = "otp_error"


class ResendRefused(OtpError):
    """No new code was sent; ``reason`` is ``too_many_resends``, ``cooldown`` or ``closed``."""

    code = "otp_resend_refused"

    def __init__(self, message: str, *, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


class OtpDeliveryError(OtpError):
    """The code could not be handed to the caller's phone or mailbox; the flow should use another factor."""

    code = "otp_delivery_failed"

    def __init__(self, delivery: DeliveryResult) -> None:
        super().__init__(delivery.message)
        self.delivery = delivery


class OtpUnavailableError(OtpError):
    """The code service (e.g. Twilio Verify) could not be asked; the entry is neither right nor wrong."""

    code = "otp_unavailable"


class NoDestinationError(OtpError):
    """The customer has no address for the requested channel."""

    code = "otp_no_destination"


class SendCapReached(OtpError):
    """No code was sent: the customer already received as many as the hourly or daily cap allows."""

    code = "otp_send_cap_reached"
