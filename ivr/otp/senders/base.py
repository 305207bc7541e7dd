"""The sender interface: hand a code to a phone or a mailbox, report what happened.

A sender never raises for delivery problems; it returns a ``DeliveryResult``
whose ``error`` tells the flow what kind of problem it was (a wrong number is
worth telling the caller, an outage is worth falling back to another factor)
and whose ``message`` is safe to log: masked destination, never the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ivr.contacts import Contact


class DeliveryErrorKind(str, Enum):
    # The provider or mail server could not be reached (refused, reset, 5xx).
    UNREACHABLE = "unreachable"
    # The provider answered and refused (credentials, policy, rate limits).
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    # The number or address itself is wrong or cannot receive this channel.
    INVALID_DESTINATION = "invalid_destination"


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    provider_id: str | None = None
    error: DeliveryErrorKind | None = None
    message: str = ""

    @classmethod
    def delivered(cls, provider_id: str | None, message: str) -> DeliveryResult:
        return cls(ok=True, provider_id=provider_id, message=message)

    @classmethod
    def failed(cls, error: DeliveryErrorKind, message: str) -> DeliveryResult:
        return cls(ok=False, error=error, message=message)


@dataclass(frozen=True)
class Notice:
    """A message about the account that is not a code (ivr.notices): e-mail subject and body, SMS text."""

    subject: str
    body: str
    sms: str


class OtpSender(Protocol):
    async def send(self, destination: Contact, code: str, language: str, *, valid_for_s: int) -> DeliveryResult:
        """Send ``code`` in ``language``; ``valid_for_s`` is what the message says about expiry."""
        ...


class NoticeSender(Protocol):
    """E-mail and SMS senders also carry notices ("your voiceprint was replaced") to the contact on file."""

    async def notify(self, destination: Contact, notice: Notice, language: str) -> DeliveryResult: ...
