"""One-time codes by SMS through Twilio Programmable Messaging."""

from __future__ import annotations

import logging

from twilio.rest import Client

from ivr.contacts import Contact, mask_phone
from ivr.otp import messages
from ivr.otp.senders.base import DeliveryErrorKind, DeliveryResult, Notice
from ivr.otp.senders.twilio_rest import DEFAULT_TIMEOUT_S, TwilioCallFailed, call_twilio

log = logging.getLogger(__name__)


class TwilioSmsSender:
    def __init__(
        self,
        client: Client,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("TwilioSmsSender needs a from_number or a messaging_service_sid to send from")
        self._client = client
        self._from = from_number
        self._service = messaging_service_sid
        self._timeout_s = timeout_s

    async def send(self, destination: Contact, code: str, language: str, *, valid_for_s: int) -> DeliveryResult:
        return await self._text(destination, "code", messages.sms_text(code, language, valid_for_s))

    async def notify(self, destination: Contact, notice: Notice, language: str) -> DeliveryResult:
        return await self._text(destination, "notice", notice.sms)

    async def _text(self, destination: Contact, what: str, body: str) -> DeliveryResult:
        if not destination.phone_e164:
            return DeliveryResult.failed(DeliveryErrorKind.INVALID_DESTINATION, "the customer has no phone number")
        to = destination.phone_e164
        kwargs = {"to": to, "body": body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        else:
            kwargs["from_"] = self._from  # type: ignore[assignment]
        try:
            message = await call_twilio(
                lambda: self._client.messages.create(**kwargs), what="an SMS", timeout_s=self._timeout_s
            )
        except TwilioCallFailed as failure:
            log.warning("SMS %s to %s not sent: %s", what, mask_phone(to), failure)
            return DeliveryResult.failed(failure.kind, f"{failure} (to {mask_phone(to)})")
        log.info("SMS %s to %s queued as %s (%s)", what, mask_phone(to), message.sid, message.status)
        return DeliveryResult.delivered(message.sid, f"SMS to {mask_phone(to)} queued by Twilio ({message.status})")
