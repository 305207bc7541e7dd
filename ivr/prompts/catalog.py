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
    "enroll-digits": {
        "en": "Finally, please say the digits from zero to nine, with a short pause after each one.",
        "es": "Por último, diga los números del cero al nueve, con una breve pausa después de cada uno.",
    },
    "enroll-digits-again": {
        "en": "Thank you. Please say the digits from zero to nine once more, pausing after each one.",
        "es": "Gracias. Diga una vez más los números del cero al nueve, con una pausa después de cada uno.",
    },
    "enroll-digits-unclear": {
        "en": "We did not hear the digits from zero to nine. Please say them again, one after the other.",
        "es": "No escuchamos los números del cero al nueve. Dígalos de nuevo, uno tras otro.",
    },
    "liveness-intro": {
        "en": "To confirm it is really you, please repeat these digits.",
        "es": "Para confirmar que es usted, por favor repita estos números.",
    },
    "liveness-go": {
        "en": "Please say them now.",
        "es": "Dígalos ahora, por favor.",
    },
    "digit-0": {
        "en": "Zero.",
        "es": "Cero.",
    },
    "digit-1": {
        "en": "One.",
        "es": "Uno.",
    },
    "digit-2": {
        "en": "Two.",
        "es": "Dos.",
    },
    "digit-3": {
        "en": "Three.",
        "es": "Tres.",
    },
    "digit-4": {
        "en": "Four.",
        "es": "Cuatro.",
    },
    "digit-5": {
        "en": "Five.",
        "es": "Cinco.",
    },
    "digit-6": {
        "en": "Six.",
        "es": "Seis.",
    },
    "digit-7": {
        "en": "Seven.",
        "es": "Siete.",
    },
    "digit-8": {
        "en": "Eight.",
        "es": "Ocho.",
    },
    "digit-9": {
        "en": "Nine.",
        "es": "Nueve.",
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
    # --- one-time codes ---------------------------------------------------
    "otp-sent-sms": {
        "en": "We have sent a verification code to your mobile phone by text message.",
        "es": "Le enviamos un código de verificación a su celular por mensaje de texto.",
    },
    "otp-sent-voice": {
        "en": "You will receive a phone call that reads you a verification code.",
        "es": "Recibirá una llamada que le dirá un código de verificación.",
    },
    "otp-sent-email": {
        "en": "We have sent a verification code to your e-mail address.",
        "es": "Le enviamos un código de verificación a su correo electrónico.",
    },
    "otp-enter": {
        "en": "Please enter the code, followed by the hash key. To start again, press star.",
        "es": "Por favor, marque el código, seguido de la tecla numeral. Para empezar de nuevo, marque asterisco.",
    },
    "otp-wrong": {
        "en": "That code is not correct.",
        "es": "El código no es correcto.",
    },
    "otp-expired": {
        "en": "That code has expired.",
        "es": "El código ha vencido.",
    },
    "otp-too-many": {
        "en": "Too many wrong codes.",
        "es": "Demasiados códigos incorrectos.",
    },
    "otp-unavailable": {
        "en": "We could not send you a verification code right now.",
        "es": "En este momento no pudimos enviarle un código de verificación.",
    },
    # --- knowledge questions ----------------------------------------------
    "kba-intro": {
        "en": "We will now ask you some security questions.",
        "es": "Ahora le haremos algunas preguntas de seguridad.",
    },
    "kba-dob": {
        "en": "Please enter your date of birth as two digits for the day, two for the month and four for the "
              "year.",
        "es": "Por favor, marque su fecha de nacimiento: dos dígitos para el día, dos para el mes y cuatro para "
              "el año.",
    },
    "kba-doc-last4": {
        "en": "Please enter the last four digits of your identity document.",
        "es": "Por favor, marque los últimos cuatro dígitos de su documento de identidad.",
    },
    "kba-card-last4": {
        "en": "Please enter the last four digits of your card.",
        "es": "Por favor, marque los últimos cuatro dígitos de su tarjeta.",
    },
    "kba-postal-code": {
        "en": "Please enter your postal code, followed by the hash key.",
        "es": "Por favor, marque su código postal, seguido de la tecla numeral.",
    },
    # --- opt-out line --------------------------------------------------------
    "optout-confirm": {
        "en": "To delete your voiceprint and stop voice recognition on your account, press 1. To keep it, "
              "press 2.",
        "es": "Para eliminar su huella de voz y dejar de usar el reconocimiento de voz en su cuenta, marque 1. "
              "Para conservarla, marque 2.",
    },
    "optout-done": {
        "en": "Your voiceprint has been deleted. We will not use voice recognition on your account.",
        "es": "Su huella de voz fue eliminada. No usaremos reconocimiento de voz en su cuenta.",
    },
    "optout-kept": {
        "en": "Nothing has been changed. Goodbye.",
        "es": "No se ha hecho ningún cambio. Hasta luego.",
    },
    "enroll-not-allowed": {
        "en": "Voice registration is not available for this account. Goodbye.",
        "es": "El registro de voz no está disponible para esta cuenta. Hasta luego.",
    },
}

# espeak-ng voices of the generated prompts; a neutral Latin-American Spanish voice
# for the first deployments (es-419).
VOICES = {"en": "en-us+f3", "es": "es-419+f3"}
