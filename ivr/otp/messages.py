"""What the caller reads or hears with a one-time code, in Spanish and English.

Texts are short on purpose: an SMS over 160 GSM-7 characters (70 with
accents in UCS-2) is split and may arrive out of order. The code comes first
in the sentence so it shows in a phone's notification preview.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class _Texts:
    sms: str
    email_subject: str
    email_body: str
    voice: str
    voice_repeat: str
    # Twilio <Say> language of the basic voices: es-MX is understood across
    # Latin America; en-US is the widest-supported English voice.
    tts_language: str
    minute: str
    minutes: str


_TEXTS = {
    "es": _Texts(
        sms="Tu código de verificación es {code}. Vence en {validity}.",
        email_subject="Tu código de verificación",
        email_body=(
            "Tu código de verificación es {code}.\n\n"
            "Vence en {validity}. Márcalo en el teclado del teléfono cuando se te pida.\n"
            "Si no estás llamando a nuestra línea, ignora este mensaje.\n"
        ),
        voice="Tu código de verificación es: {digits}.",
        voice_repeat="Repito: {digits}.",
        tts_language="es-MX",
        minute="1 minuto",
        minutes="{n} minutos",
    ),
    "en": _Texts(
        sms="Your verification code is {code}. It expires in {validity}.",
        email_subject="Your verification code",
        email_body=(
            "Your verification code is {code}.\n\n"
            "It expires in {validity}. Key it in on your phone's keypad when asked.\n"
            "If you are not calling our line, ignore this message.\n"
        ),
        voice="Your verification code is: {digits}.",
        voice_repeat="Again: {digits}.",
        tts_language="en-US",
        minute="1 minute",
        minutes="{n} minutes",
    ),
}


def _texts(language: str) -> _Texts:
    # "es-CO" and "es_MX" use the Spanish texts.
    return _TEXTS.get(language[:2].lower(), _TEXTS[DEFAULT_LANGUAGE])


def validity_text(language: str, valid_for_s: int) -> str:
    texts = _texts(language)
    minutes = max(1, math.ceil(valid_for_s / 60))
    return texts.minute if minutes == 1 else texts.minutes.format(n=minutes)


def sms_text(code: str, language: str, valid_for_s: int) -> str:
    return _texts(language).sms.format(code=code, validity=validity_text(language, valid_for_s))


def email_subject(language: str) -> str:
    # The code is deliberately not in the subject: subjects end up in mail
    # server logs and lock-screen previews of shared devices.
    return _texts(language).email_subject


def email_body(code: str, language: str, valid_for_s: int) -> str:
    return _texts(language).email_body.format(code=code, validity=validity_text(language, valid_for_s))


def spoken_digits(code: str) -> str:
    """ "482913" -> "4, 8, 2, 9, 1, 3": the commas make text-to-speech read digit by digit."""
    return ", ".join(code)


def voice_sentences(code: str, language: str) -> tuple[str, str]:
    texts = _texts(language)
    digits = spoken_digits(code)
    return texts.voice.format(digits=digits), texts.voice_repeat.format(digits=digits)


def tts_language(language: str) -> str:
    return _texts(language).tts_language
