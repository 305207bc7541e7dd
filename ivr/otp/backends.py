"""The interface call flows use for the one-time-code factor, and its two implementations.

``LocalOtpBackend``: codes generated and checked here (:class:`OtpService`),
delivered by one of our senders. ``TwilioVerifyBackend``: Twilio Verify
generates, delivers and checks the code; nothing about it is stored here.
Flows only see ``start`` / ``resend`` / ``check`` and a handle.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping, Protocol

from twilio.rest import Client

from ivr.contacts import mask_email, mask_phone
from ivr.db.customers import CustomerRecord
from ivr.otp.caps import OtpSendCaps
from ivr.otp.codes import normalise_entry
from ivr.otp.config import OtpConfig
from ivr.otp.errors import NoDestinationError, OtpDeliveryError, OtpUnavailableError, ResendRefused
from ivr.otp.senders.base import DeliveryErrorKind, DeliveryResult, OtpSender
from ivr.otp.senders.twilio_rest import DEFAULT_TIMEOUT_S, TwilioCallFailed, call_twilio
from voiceprints.clock import Clock, system_clock
from ivr.otp.service import OtpResult, OtpService, OtpVerification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChallengeHandle:
    """What a flow holds between sending a code and checking the caller's entry.

    Lives in the call's memory only. ``destination`` is masked, ready for a
    prompt such as "we sent a code to +57 *** *** 4567".
    """

    id: str
    channel: str
    destination: str
    customer: CustomerRecord
    sent_at: datetime
    resends: int = 0


class OtpBackend(Protocol):
    @property
    def channels(self) -> tuple[str, ...]:
        """The channels codes can be sent on (what a decoy for an unknown account claims to use)."""
        ...

    async def start(self, customer: CustomerRecord, channel: str | None = None) -> ChallengeHandle:
        """Send a code on ``channel`` (default: the customer's preferred one).

        Raises NoDestinationError, OtpDeliveryError or SendCapReached: the
        flow moves on to another factor.
        """
        ...

    async def resend(self, handle: ChallengeHandle) -> ChallengeHandle:
        """Send a new code for the same challenge; raises ResendRefused when over limits."""
        ...

    async def check(self, handle: ChallengeHandle, entered: str) -> OtpVerification:
        """Raises OtpUnavailableError when the answer cannot be known (provider down)."""
        ...


def _destination(customer: CustomerRecord, channel: str) -> str:
    """The address for ``channel``, or NoDestinationError."""
    contact = customer.contact
    address = contact.email if channel == "email" else contact.phone_e164
    if not address:
        what = "e-mail address" if channel == "email" else "phone number"
        raise NoDestinationError(f"customer {customer.external_id} has no {what} for one-time codes by {channel}")
    return address


def _masked(customer: CustomerRecord, channel: str) -> str:
    address = _destination(customer, channel)
    return mask_email(address) if channel == "email" else mask_phone(address)


async def _take_send(caps: OtpSendCaps | None, customer: CustomerRecord, channel: str) -> None:
    if caps is not None:
        await asyncio.to_thread(caps.take, customer.id, channel)


class LocalOtpBackend:
    def __init__(self, service: OtpService, senders: Mapping[str, OtpSender], *,
                 caps: OtpSendCaps | None = None) -> None:
        self._service = service
        self._senders = dict(senders)
        self._caps = caps

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._senders)

    def _sender(self, channel: str) -> OtpSender:
        try:
            return self._senders[channel]
        except KeyError:
            raise NoDestinationError(f"no one-time-code sender is configured for channel {channel!r}") from None

    async def start(self, customer: CustomerRecord, channel: str | None = None) -> ChallengeHandle:
        channel = channel or customer.preferred_otp_channel
        sender = self._sender(channel)
        destination = _masked(customer, channel)
        await _take_send(self._caps, customer, channel)
        issued = await asyncio.to_thread(self._service.issue, customer.id, channel)
        handle = ChallengeHandle(issued.challenge_id, channel, destination, customer, self._service.now())
        await self._deliver(handle, sender, issued.code)
        return handle

    async def resend(self, handle: ChallengeHandle) -> ChallengeHandle:
        await _take_send(self._caps, handle.customer, handle.channel)
        issued = await asyncio.to_thread(self._service.resend, handle.id)
        again = replace(handle, sent_at=self._service.now(), resends=handle.resends + 1)
        await self._deliver(again, self._sender(handle.channel), issued.code)
        return again

    async def check(self, handle: ChallengeHandle, entered: str) -> OtpVerification:
        return await asyncio.to_thread(self._service.verify, handle.id, entered)

    async def _deliver(self, handle: ChallengeHandle, sender: OtpSender, code: str) -> None:
        customer = handle.customer
        result = await sender.send(
            customer.contact, code, customer.language, valid_for_s=self._service.config.ttl_s
        )
        if not result.ok:
            # Nobody can know this code: close the challenge so it cannot be guessed at.
            await asyncio.to_thread(self._service.cancel, handle.id)
            raise OtpDeliveryError(result)
        log.info("one-time code sent by %s to %s", handle.channel, handle.destination)


# Verify's names for our channels.
_VERIFY_CHANNELS = {"sms": "sms", "voice": "call", "email": "email"}
# Verify checks accept 4-10 characters (anything else is a 60200 error).
_VERIFY_CODE_LENGTHS = range(4, 11)


class TwilioVerifyBackend:
    def __init__(
        self,
        client: Client,
        service_sid: str,
        config: OtpConfig | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock = system_clock,
        caps: OtpSendCaps | None = None,
    ) -> None:
        """``config`` supplies the resend limits; length, expiry and attempts are set on the Verify service."""
        self._client = client
        self._service_sid = service_sid
        self._config = config or OtpConfig()
        self._timeout_s = timeout_s
        self._clock = clock
        self._caps = caps

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(_VERIFY_CHANNELS)

    async def start(self, customer: CustomerRecord, channel: str | None = None) -> ChallengeHandle:
        channel = channel or customer.preferred_otp_channel
        if channel not in _VERIFY_CHANNELS:
            raise NoDestinationError(f"Twilio Verify cannot send codes by {channel!r}")
        destination = _masked(customer, channel)
        await _take_send(self._caps, customer, channel)
        sid = await self._send(customer, channel, destination)
        return ChallengeHandle(sid, channel, destination, customer, self._clock())

    async def resend(self, handle: ChallengeHandle) -> ChallengeHandle:
        if handle.resends >= self._config.max_resends:
            raise ResendRefused(
                f"already resent {handle.resends} times (limit {self._config.max_resends})", reason="too_many_resends"
            )
        waited = (self._clock() - handle.sent_at).total_seconds()
        if waited < self._config.resend_cooldown_s:
            retry_after = self._config.resend_cooldown_s - waited
            raise ResendRefused(
                f"last code sent {waited:.0f} s ago; wait {retry_after:.0f} s before resending",
                reason="cooldown",
                retry_after_s=retry_after,
            )
        # Creating a verification for the same destination while one is
        # pending makes Verify resend the pending code.
        await _take_send(self._caps, handle.customer, handle.channel)
        sid = await self._send(handle.customer, handle.channel, handle.destination)
        return replace(handle, id=sid, sent_at=self._clock(), resends=handle.resends + 1)

    async def check(self, handle: ChallengeHandle, entered: str) -> OtpVerification:
        digits = normalise_entry(entered)
        if len(digits) not in _VERIFY_CODE_LENGTHS:
            return OtpVerification(OtpResult.WRONG)
        service = self._client.verify.v2.services(self._service_sid)
        try:
            check = await call_twilio(
                lambda: service.verification_checks.create(verification_sid=handle.id, code=digits),
                what="a verification check",
                timeout_s=self._timeout_s,
            )
        except TwilioCallFailed as failure:
            # 20404: Verify forgets a verification once it is approved,
            # expired (10 min) or out of attempts; a handle we were given
            # was valid, so the code is no longer usable.
            if failure.code == 20404:
                return OtpVerification(OtpResult.EXPIRED, 0)
            if failure.code == 60202:  # max check attempts reached
                return OtpVerification(OtpResult.TOO_MANY_ATTEMPTS, 0)
            log.warning("Twilio Verify check failed: %s", failure)
            raise OtpUnavailableError(str(failure)) from None
        if check.status == "approved" and check.valid:
            return OtpVerification(OtpResult.OK)
        if check.status == "pending":
            return OtpVerification(OtpResult.WRONG)
        if check.status == "max_attempts_reached":
            return OtpVerification(OtpResult.TOO_MANY_ATTEMPTS, 0)
        # canceled, expired, deleted, failed
        return OtpVerification(OtpResult.EXPIRED, 0)

    async def _send(self, customer: CustomerRecord, channel: str, destination: str) -> str:
        to = _destination(customer, channel)
        service = self._client.verify.v2.services(self._service_sid)
        try:
            verification = await call_twilio(
                lambda: service.verifications.create(
                    to=to, channel=_VERIFY_CHANNELS[channel], locale=customer.language[:2]
                ),
                what=f"a verification by {channel}",
                timeout_s=self._timeout_s,
            )
        except TwilioCallFailed as failure:
            if failure.code == 60203:  # max send attempts reached
                raise ResendRefused(f"Twilio Verify refuses more sends to {destination}", reason="too_many_resends")
            result = DeliveryResult.failed(failure.kind, f"{failure} (to {destination})")
            log.warning("Twilio Verify did not send a code: %s", result.message)
            raise OtpDeliveryError(result) from None
        if verification.sid is None:
            raise OtpDeliveryError(
                DeliveryResult.failed(DeliveryErrorKind.REJECTED, "Twilio Verify answered without a verification id")
            )
        log.info("Twilio Verify sent a code by %s to %s", channel, destination)
        return verification.sid
