"""Every prompt the flows play, by name, in each shipped language.

Admins may replace any prompt by a professional recording with the same name
(``<override dir>/<lang>/<name>.wav``); the names are the contract.
"""

from __future__ import annotations

PROMPTS: dict[str, dict[str, str]] = {
    "enter-account": {
        "en": "Please enter your account number, followed by the hash key.",
        "es": "Por favor, marque su número de cuenta, seguido de la tecla numeral.",
    },
    "enter-account-again": {
        "en": "We did not receive your account number. Please enter it now, followed by the hash key.",
        "es": "No recibimos su número de cuenta. Por favor, márquelo ahora, seguido de la tecla numeral.",
    },
    "verify-speak": {
        "en": "To verify your identity, please tell us in a few words the reason for your call.",
        "es": "Para verificar su identidad, por favor cuéntenos en pocas palabras el motivo de su llamada.",
    },
    "enroll-welcome": {
        "en": "Welcome to voice registration. We will create a voiceprint so we can recognise you on future calls.",
        "es": "Bienvenido al registro de voz. Crearemos una huella de voz para reconocerle en sus próximas llamadas.",
    },
    "enter-pin": {
        "en": "Please enter your PIN, followed by the hash key.",
        "es": "Por favor, marque su clave, seguida de la tecla numeral.",
    },
    "pin-wrong": {
        "en": "That PIN is not correct.",
        "es": "La clave no es correcta.",
    },
    "enroll-factor-failed": {
        "en": "We could not confirm your identity, so we cannot register your voice on this call. Goodbye.",
        "es": "No pudimos confirmar su identidad, así que no podemos registrar su voz en esta llamada. Hasta luego.",
    },
    "enroll-consent": {
        "en": "Your voiceprint is biometric data. It is used only to recognise you, and you can ask us to delete it "
              "at any time. To accept, press 1. To decline, press 2.",
        "es": "Su huella de voz es un dato biométrico. Solo se usa para reconocerle y puede pedirnos que la "
              "eliminemos en cualquier momento. Para aceptar, marque 1. Para no aceptar, marque 2.",
    },
    "enroll-declined": {
        "en": "Understood. We have not recorded your voice. Goodbye.",
        "es": "Entendido. No hemos grabado su voz. Hasta luego.",
    },
    "enroll-say-1": {
        "en": "After the tone, please tell us what you did last weekend.",
        "es": "Después del tono, por favor cuéntenos qué hizo el fin de semana pasado.",
    },
    "enroll-say-2": {
        "en": "Thank you. Now please describe the city where you live.",
        "es": "Gracias. Ahora por favor describa la ciudad donde vive.",
    },
    "enroll-say-3": {
        "en": "One more time, please tell us about your favourite meal.",
        "es": "Una vez más, por favor cuéntenos sobre su comida favorita.",
    },
    "enroll-thanks": {
        "en": "Thank you.",
        "es": "Gracias.",
    },
    "enroll-no-speech": {
        "en": "We could not hear you.",
        "es": "No pudimos escucharle.",
    },
    "enroll-speak-longer": {
        "en": "Please speak a little longer.",
        "es": "Por favor, hable un poco más.",
    },
    "enroll-speak-louder": {
        "en": "Please speak a little louder.",
        "es": "Por favor, hable un poco más fuerte.",
    },
    "enroll-quieter-place": {
        "en": "There is too much background noise. If you can, please move somewhere quieter.",
        "es": "Hay demasiado ruido de fondo. Si puede, por favor muévase a un lugar más tranquilo.",
    },
    "enroll-phone-away": {
        "en": "Your voice is distorted. Please hold the phone a little further from your mouth.",
        "es": "Su voz se escucha distorsionada. Por favor, aleje un poco el teléfono de su boca.",
    },
    "enroll-failed": {
        "en": "We could not create your voiceprint on this call. Please try again later.",
        "es": "No pudimos crear su huella de voz en esta llamada. Por favor, intente más tarde.",
    },
    "enroll-done": {
        "en": "Your voiceprint has been created. Thank you.",
        "es": "Su huella de voz ha sido creada. Gracias.",
    },
    "verify-failed": {
        "en": "We could not verify your identity.",
        "es": "No pudimos verificar su identidad.",
    },
    "account-locked": {
        "en": "For your security, this account is temporarily locked. Please contact an agent.",
        "es": "Por su seguridad, esta cuenta está bloqueada temporalmente. Por favor, comuníquese con un asesor.",
    },
    "enroll-offer": {
        "en": "You can register your voice for faster service. To register now, press 1.",
        "es": "Puede registrar su voz para una atención más rápida. Para registrarse ahora, marque 1.",
    },
}

# espeak-ng voices of the generated prompts; a neutral Latin-American Spanish voice
# for the first deployments (es-419).
VOICES = {"en": "en-us+f3", "es": "es-419+f3"}
