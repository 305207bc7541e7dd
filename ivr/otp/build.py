"""Build what the settings describe: the senders, the one-time-code backend (None: no channel configured)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivr.db.engine import Database
from ivr.otp.backends import OtpBackend
from ivr.otp.caps import OtpSendCaps
from ivr.otp.senders.base import OtpSender
from ivr.otp.settings import OtpSettings

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger("ivr.otp")


def _twilio_client(settings: OtpSettings) -> "Client | None":
    twilio = settings.twilio
    if not twilio.configured:
        return None
    from ivr.otp.senders.twilio_rest import twilio_client

    assert twilio.account_sid and twilio.auth_token
    return twilio_client(twilio.account_sid, twilio.auth_token.get_secret_value(), timeout_s=twilio.timeout_s)


def build_senders(settings: OtpSettings, client: "Client | None" = None) -> dict[str, OtpSender]:
    """The configured channels: e-mail (SMTP), SMS and voice calls (Twilio). Codes and notices share them."""
    twilio = settings.twilio
    client = client or _twilio_client(settings)
    senders: dict[str, OtpSender] = {}
    if settings.smtp is not None:
        from ivr.otp.senders.smtp import SmtpOtpSender

        senders["email"] = SmtpOtpSender(settings.smtp)
    if client is not None and (twilio.from_number or twilio.messaging_service_sid):
        from ivr.otp.senders.twilio_sms import TwilioSmsSender
        from ivr.otp.senders.twilio_voice import TwilioVoiceSender

        senders["sms"] = TwilioSmsSender(client, from_number=twilio.from_number,
                                         messaging_service_sid=twilio.messaging_service_sid, timeout_s=twilio.timeout_s)
        if twilio.from_number:
            senders["voice"] = TwilioVoiceSender(client, from_number=twilio.from_number, timeout_s=twilio.timeout_s)
    return senders


def otp_backend(settings: OtpSettings, db: Database, secret: bytes) -> OtpBackend | None:
    twilio = settings.twilio
    client = _twilio_client(settings)
    caps = OtpSendCaps(db, settings.code)
    if settings.backend == "twilio-verify":
        if client is None or not twilio.verify_service_sid:
            raise ValueError("VOICEAUTH_OTP__BACKEND=twilio-verify needs VOICEAUTH_OTP__TWILIO__ACCOUNT_SID, "
                             "__AUTH_TOKEN and __VERIFY_SERVICE_SID")
        from ivr.otp.backends import TwilioVerifyBackend

        return TwilioVerifyBackend(client, twilio.verify_service_sid, settings.code, timeout_s=twilio.timeout_s,
                                   caps=caps, clock=db.clock)
    senders = build_senders(settings, client)
    if not senders:
        log.warning("one-time codes are off: configure VOICEAUTH_OTP__SMTP__* (e-mail) or "
                    "VOICEAUTH_OTP__TWILIO__* (SMS, voice)")
        return None
    from ivr.otp.backends import LocalOtpBackend
    from ivr.otp.service import OtpService

    log.info("one-time codes by %s", ", ".join(sorted(senders)))
    return LocalOtpBackend(OtpService(db, secret, settings.code), senders, caps=caps)
