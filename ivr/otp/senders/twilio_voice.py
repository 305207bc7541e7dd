"""One-time codes read out in an outbound phone call through Twilio Programmable Voice.

For customers without a mobile phone (landlines cannot receive SMS). The
code is read digit by digit and then once more, because a person answering
an unexpected call usually misses the first reading.
"""

from __future__ import annotations

import logging

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from ivr.contacts import Contact, mask_phone
from ivr.otp import messages
from ivr.otp.senders.base import DeliveryErrorKind, DeliveryResult
from ivr.otp.senders.twilio_rest import DEFAULT_TIMEOUT_S, TwilioCallFailed, call_twilio

log = logging.getLogger(__name__)


def code_twiml(code: str, language: str) -> str:
    first, again = messages.voice_sentences(code, language)
    tts = messages.tts_language(language)
    response = VoiceResponse()
    # People answer with "hello?": a second of silence keeps the code from
    # starting under their voice.
    response.pause(length=1)
    response.say(first, language=tts)
    response.pause(length=1)
    response.say(again, language=tts)
    return str(response)


class TwilioVoiceSender:
    def __init__(self, client: Client, *, from_number: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = client
        self._from = from_number
        self._timeout_s = timeout_s

    async def send(self, destination: Contact, code: str, language: str, *, valid_for_s: int) -> DeliveryResult:
        if not destination.phone_e164:
            return DeliveryResult.failed(DeliveryErrorKind.INVALID_DESTINATION, "the customer has no phone number")
        to = destination.phone_e164
        twiml = code_twiml(code, language)
        try:
            call = await call_twilio(
                lambda: self._client.calls.create(to=to, from_=self._from, twiml=twiml),
                what="a voice call",
                timeout_s=self._timeout_s,
            )
        except TwilioCallFailed as failure:
            log.warning("voice code to %s not placed: %s", mask_phone(to), failure)
            return DeliveryResult.failed(failure.kind, f"{failure} (to {mask_phone(to)})")
        log.info("voice code call to %s placed as %s (%s)", mask_phone(to), call.sid, call.status)
        return DeliveryResult.delivered(call.sid, f"call to {mask_phone(to)} queued by Twilio ({call.status})")
