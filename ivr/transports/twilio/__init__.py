"""Twilio Programmable Voice: signed webhooks answer with TwiML, calls stream over Media Streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.base import TransportEnv
    from ivr.transports.twilio.transport import TwilioTransport


def build(env: "TransportEnv") -> "TwilioTransport | None":
    """On when ``VOICEAUTH_TWILIO__AUTH_TOKEN`` and ``__PUBLIC_URL`` are set, unless ``__ENABLED=false``."""
    if not env.settings.twilio.enabled:
        return None
    from ivr.transports.twilio.transport import TwilioTransport

    return TwilioTransport(env)
