"""``ivr demo``: enrol and verify demonstration voices end to end, on embedded defaults.

The voices are espeak-ng voices (synthetic, but distinct speakers as far as a
speaker encoder is concerned), so the demo needs no downloaded data. It uses a
data directory of its own so it never touches real voiceprints.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.synth import Voice, espeak
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.resample import resample
from voiceprints.audio.telephone import telephone_channel
from voiceprints.engine import VoiceprintEngine

ANA = Voice("ana", "es-419+f3", pitch=65, speed=150)
LUIS = Voice("luis", "es+m3", pitch=35, speed=165)
JOHN = Voice("john", "en-us+m7", pitch=30, speed=150)

ENROL_TEXTS = (
    "Mi número de cuenta es cuatro cinco siete dos, y quiero consultar mi saldo de hoy.",
    "Llamo por el pago que hice la semana pasada, todavía no aparece en mi cuenta.",
    "Por favor, comuníqueme con alguien que me ayude con el extracto de mi tarjeta.",
)
VERIFY_TEXT = "Quisiera actualizar la dirección de mi cuenta porque me mudé el mes pasado."
IMPOSTOR_TEXT = "Hola, soy Ana, quiero saber cuándo llega mi tarjeta nueva a la casa."
SHORT_TEXT = "Sí."


@dataclass(frozen=True)
class DemoStep:
    title: str
    outcome: str
    detail: str


def phone(voice: Voice, text: str) -> AudioClip:
    """What the engine hears of ``voice`` on a G.711 phone line."""
    return telephone_channel(resample(espeak(voice, text), 16000))


def run_demo(engine: VoiceprintEngine) -> list[DemoStep]:
    steps: list[DemoStep] = []
    speaker = "demo-4572"
    result = engine.enroll(speaker, [phone(ANA, t) for t in ENROL_TEXTS])
    steps.append(DemoStep(f"enrol {ANA.name} as account {speaker}", "ENROLLED",
                          f"{result.voiceprint.meta.utterance_count} utterances, "
                          f"{result.voiceprint.meta.net_speech_s:.1f} s of speech, consistency {result.consistency:.2f}"))
    engine.enroll("demo-1180", [phone(JOHN, t) for t in (
        "My account number is one one eight zero and I would like to check my balance.",
        "I am calling about the payment I made last week, it has not arrived yet.",
        "Please transfer me to someone who can help with my credit card statement.")])
    for title, clip in (
        (f"{ANA.name} calls and claims account {speaker}", phone(ANA, VERIFY_TEXT)),
        (f"{LUIS.name} (an impostor) claims account {speaker}", phone(LUIS, IMPOSTOR_TEXT)),
        (f"{ANA.name} answers only \"{SHORT_TEXT}\"", phone(ANA, SHORT_TEXT)),
    ):
        d = engine.verify(speaker, clip)
        score = "n/a" if d.score is None else f"{d.score:.3f}"
        steps.append(DemoStep(title, d.outcome.value.upper(),
                              f"score {score} (accept >= {d.accept_threshold:.3f}, {d.normalisation}); "
                              + "; ".join(d.reasons) + f"; {d.latency_ms:.0f} ms"))
    _, candidates = engine.identify(phone(ANA, ENROL_TEXTS[0]), top_k=2)
    steps.append(DemoStep("who is this? (identify, 1:N)", candidates[0].speaker_id if candidates else "nobody",
                          ", ".join(f"{c.speaker_id} {c.score:.3f}" for c in candidates)))
    return steps
