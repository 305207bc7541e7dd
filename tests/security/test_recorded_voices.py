"""Attack: a recording of the victim, a wrong digit string, a known fraudster's voice (issue 8).

Before: verification was text-independent with a fixed prompt, so any few
seconds of the victim's recorded voice passed, and nothing looked for
replayed or known-fraudster voices.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ivr.call import CallInfo
from ivr.flows.digit_guide import DigitGuides
from ivr.service.calls import run_call
from ivr.service.metrics import ServiceMetrics
from tests.scripted_call import Keys, Say, SayFrom, ScriptedCall
from tests.security.conftest import PIN, VICTIM
from ivr.prompts.catalog import VOICES
from ivr.synth import Voice
from tests.speech import SPEAKERS, synth
from tests.test_flows import phone_speech
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.replay_sim import simulate_replay
from voiceprints.audio.telephone import telephone_channel
from voiceprints.liveness import DigitTemplates
from voiceprints.watchlist import SqlWatchlistStore, entry_vector

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digits_speech(speaker: str, digits: str, cache) -> AudioClip:  # type: ignore[no-untyped-def]
    """``speaker`` saying ``digits`` one by one with a short pause after each, through the telephone channel."""
    gap = np.zeros(int(0.1 * 16000), dtype=np.float32)  # espeak pads each word with 0.3 s on both sides
    parts = []
    for d in digits:
        parts += [synth(SPEAKERS[speaker], WORDS[int(d)], 16000, cache).samples, gap]
    return telephone_channel(AudioClip(np.concatenate(parts), 16000))


def asked(call: ScriptedCall) -> str:
    """The digits the IVR read out, in order, as the caller heard them."""
    start = len(call.played) - 1 - call.played[::-1].index("liveness-intro")
    return "".join(p.removeprefix("digit-") for p in call.played[start:] if p.startswith("digit-"))


def enrol_with_digits(bank, utterances_of, cache, speaker: str = "alice") -> None:  # type: ignore[no-untyped-def]
    clips = [phone_speech(utterances_of, speaker, i) for i in range(3)]
    bank.lines.engine.enroll(VICTIM, clips)
    templates = DigitTemplates.from_sequences([digits_speech(speaker, "0123456789", cache) for _ in range(3)])
    bank.lines.defences.remember_enrolment(VICTIM, templates, clips)


def caller(n: int, script: dict) -> ScriptedCall:
    return ScriptedCall({"enter-account": [Keys(VICTIM + "#")], **script},
                        info=CallInfo(f"rec-{n}", f"+5731{n:08d}", "en", {}))


async def test_the_enrolment_line_records_digit_templates(bank, utterances_of, tmp_path):
    script = {"enter-pin": [Keys(PIN + "#")], "enroll-consent": [Keys("1")],
              **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", i))] for i in range(3)},
              "enroll-digits": [Say(digits_speech("alice", "0123456789", tmp_path))],
              "enroll-digits-again": [Say(digits_speech("alice", "0123456789", tmp_path))] * 2}
    call = caller(0, script)
    await run_call(bank.lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert "digit templates from 3 recordings" in call.result["VOICEAUTH_REASON"]
    assert bank.lines.defences.has_templates(VICTIM)


class SpokenDigitPrompts:
    """The IVR's digit prompts as the worker generates them (espeak-ng, its own voice), 8 kHz PCM."""

    def __init__(self, cache) -> None:  # type: ignore[no-untyped-def]
        self.cache = cache

    async def audio(self, name: str, language: str) -> bytes | None:
        if not name.startswith("digit-") or language != "en":
            return None
        clip = synth(Voice("ivr", VOICES["en"], 50, 150), WORDS[int(name[-1])], 8000, self.cache)
        return (np.clip(clip.samples, -1, 1) * 32767).astype("<i2").tobytes()


def natural_digits(speaker: str, speed: int, cache) -> AudioClip:  # type: ignore[no-untyped-def]
    """``speaker`` saying "zero one two ... nine" as one phrase, the words run together, at ``speed``."""
    who = dataclasses.replace(SPEAKERS[speaker], speed=speed)
    return telephone_channel(synth(who, " ".join(WORDS), 16000, cache))


async def test_digits_said_at_a_natural_pace_give_templates_and_a_challenge_that_passes(bank, utterances_of, tmp_path):
    """Issue 18: digits run together did not segment into ten words, so most callers got no templates and
    were never challenged. Found now by aligning the known sequence to other voices saying the digits."""
    speed = SPEAKERS["alice"].speed
    script = {"enter-pin": [Keys(PIN + "#")], "enroll-consent": [Keys("1")],
              **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", i))] for i in range(3)},
              "enroll-digits": [Say(natural_digits("alice", speed, tmp_path))],
              "enroll-digits-again": [Say(natural_digits("alice", speed + 15, tmp_path)),
                                      Say(natural_digits("alice", speed - 10, tmp_path))]}
    call = caller(30, script)
    await run_call(bank.lines.enroll(DigitGuides(SpokenDigitPrompts(tmp_path))), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert "digit templates from 3 recordings" in call.result["VOICEAUTH_REASON"], call.result
    # A fixed string, so that the test does not depend on which digits are drawn (the bench measures
    # the pass rate over random strings: 88 % for these voices, README).
    bank.lines.defences.challenge = lambda account: "72941"  # type: ignore[method-assign]
    verify = caller(31, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    verify.script["liveness-go"] = [SayFrom(lambda: telephone_channel(synth(
        SPEAKERS["alice"], " ".join(WORDS[int(d)] for d in asked(verify)), 16000, tmp_path)))]
    await run_call(bank.lines.voice_only(), verify)
    assert (verify.result["VOICEAUTH_RESULT"], verify.result["VOICEAUTH_LIVENESS"]) == ("PASS", "PASS"), verify.result


async def test_sentences_at_the_digit_prompt_give_no_templates(bank, utterances_of, tmp_path):
    script = {"enter-pin": [Keys(PIN + "#")], "enroll-consent": [Keys("1")],
              **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", i))] for i in range(3)},
              "enroll-digits": [Say(phone_speech(utterances_of, "alice", 3))],
              "enroll-digits-again": [Say(phone_speech(utterances_of, "alice", i)) for i in (4, 5)],
              "enroll-digits-unclear": [Say(phone_speech(utterances_of, "alice", i)) for i in (6, 7)]}
    call = caller(32, script)
    await run_call(bank.lines.enroll(DigitGuides(SpokenDigitPrompts(tmp_path))), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert "no digit templates" in call.result["VOICEAUTH_REASON"], call.result
    assert not bank.lines.defences.has_templates(VICTIM)


async def test_the_genuine_caller_saying_the_digits_asked_passes(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    call = caller(1, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    call.script["liveness-go"] = [SayFrom(lambda: digits_speech("alice", asked(call), tmp_path))]
    await run_call(bank.lines.voice_only(), call)
    assert call.result["VOICEAUTH_RESULT"] == "PASS", call.result
    assert call.result["VOICEAUTH_LIVENESS"] == "PASS" and call.result["VOICEAUTH_RISK"] == "NONE"
    assert 4 <= len(asked(call)) <= 6


async def test_a_recording_saying_the_wrong_digits_does_not_pass(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    call = caller(2, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})

    def other_digits() -> AudioClip:
        wrong = "".join(str((int(d) + 3) % 10) for d in asked(call))
        return digits_speech("alice", wrong, tmp_path)

    call.script["liveness-go"] = [SayFrom(other_digits)]
    await run_call(bank.lines.voice_only(), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS", call.result
    assert call.result["VOICEAUTH_LIVENESS"] == "FAIL"


async def test_a_recording_of_other_speech_instead_of_the_digits_does_not_pass(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    call = caller(3, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                      "liveness-go": [Say(phone_speech(utterances_of, "alice", 6))]})
    await run_call(bank.lines.voice_only(), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS" and call.result["VOICEAUTH_LIVENESS"] == "FAIL"


async def test_a_replay_of_the_victims_enrolment_is_rejected_as_replay(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    recording = simulate_replay(phone_speech(utterances_of, "alice", 1), np.random.default_rng(5))
    call = caller(4, {"verify-speak": [Say(telephone_channel(recording))]})
    metrics = ServiceMetrics()
    await run_call(bank.lines.voice_only(), call)
    metrics.observe_result("verify", _result(call))
    assert call.result["VOICEAUTH_RESULT"] == "FAIL" and call.result["VOICEAUTH_RISK"] == "REPLAY", call.result
    assert "liveness-intro" not in call.played
    assert metrics.registry.get_sample_value("voiceauth_risks_total", {"flow": "verify", "risk": "replay"}) == 1


async def test_a_replay_of_an_earlier_verification_is_rejected_too(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    earlier = phone_speech(utterances_of, "alice", 6)
    first = caller(5, {"verify-speak": [Say(earlier)]})
    first.script["liveness-go"] = [SayFrom(lambda: digits_speech("alice", asked(first), tmp_path))]
    await run_call(bank.lines.voice_only(), first)
    assert first.result["VOICEAUTH_RESULT"] == "PASS", first.result
    again = caller(6, {"verify-speak": [Say(telephone_channel(simulate_replay(earlier, np.random.default_rng(1))))]})
    await run_call(bank.lines.voice_only(), again)
    assert again.result["VOICEAUTH_RISK"] == "REPLAY" and again.result["VOICEAUTH_RESULT"] == "FAIL"


async def test_a_watchlisted_voice_goes_to_an_agent_and_cannot_enrol(bank, utterances_of, tmp_path):
    enrol_with_digits(bank, utterances_of, tmp_path)
    engine = bank.lines.engine
    vector, speech_s = entry_vector(engine.embedder, [phone_speech(utterances_of, "frank", i) for i in range(4)])
    SqlWatchlistStore(engine.store).add("fraud-ring-7", engine.model_id, vector, source="test", net_speech_s=speech_s)
    call = caller(7, {"verify-speak": [Say(phone_speech(utterances_of, "frank", 6))]})
    await run_call(bank.lines.voice_only(), call)
    assert call.result["VOICEAUTH_RISK"] == "WATCHLIST" and call.result["VOICEAUTH_RESULT"] != "PASS", call.result
    assert "watchlist entry" in call.result["VOICEAUTH_REASON"]
    # The same voice on the enrolment line of an account without a voiceprint is refused.
    bank.lines.customers.add("4573", phone_e164="+573001234568")
    bank.lines.knowledge.set_answers(bank.lines.customers.get("4573"), {"pin": PIN})
    enrol = ScriptedCall({"enter-account": [Keys("4573#")], "enter-pin": [Keys(PIN + "#")],
                          "enroll-consent": [Keys("1")],
                          **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "frank", i))] for i in range(3)}},
                         info=CallInfo("rec-8", "+573100000008", "en", {}))
    await run_call(bank.lines.enroll(), enrol)
    assert enrol.result["VOICEAUTH_RESULT"] == "FAILED" and enrol.result["VOICEAUTH_RISK"] == "WATCHLIST"
    assert engine.store.model_ids_for("4573") == []


async def test_an_account_without_digit_templates_is_not_challenged_and_says_so(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    call = caller(9, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]})
    await run_call(bank.lines.voice_only(), call)
    assert call.result["VOICEAUTH_RESULT"] == "PASS" and call.result["VOICEAUTH_LIVENESS"] == "SKIPPED"


def _result(call: ScriptedCall):  # type: ignore[no-untyped-def]
    from ivr.call import FlowResult, Result

    return FlowResult(Result(call.result["VOICEAUTH_RESULT"]),
                      risks=tuple(r.lower() for r in call.result["VOICEAUTH_RISK"].split(",") if r != "NONE"))


async def test_a_call_found_to_be_fraud_is_listed_with_add_call_and_its_voice_is_then_flagged(
        bank, utterances_of, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ivr.cli.app import app

    enrol_with_digits(bank, utterances_of, tmp_path)
    fraud = caller(10, {"verify-speak": [Say(phone_speech(utterances_of, "frank", 5))]})
    await run_call(bank.lines.voice_only(), fraud)
    assert fraud.result["VOICEAUTH_RISK"] == "NONE"  # not known yet
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(bank.lines.engine.config.data_dir))
    result = CliRunner().invoke(app, ["watchlist", "add-call", "rec-10", "--name", "case-2211"])
    assert result.exit_code == 0, result.output
    assert "expires in 365 days" in result.stdout
    # The fraudster calls again, claiming another account (screened even without a voiceprint to score).
    again = ScriptedCall({"enter-account": [Keys("4580#")],
                          "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))]},
                         info=CallInfo("rec-11", "+573100000011", "en", {}))
    await run_call(bank.lines.voice_only(), again)
    assert again.result["VOICEAUTH_RISK"] == "WATCHLIST" and again.result["VOICEAUTH_RESULT"] != "PASS", again.result
    unknown = CliRunner().invoke(app, ["watchlist", "add-call", "no-such-call", "--name", "x"])
    assert unknown.exit_code != 0 and "no embedding is kept for call no-such-call" in unknown.output


async def test_a_recording_of_the_victim_then_another_voice_reading_the_digits_does_not_pass(
        bank, utterances_of, tmp_path):
    """Issue 18: the recording passes the voice, the attacker reads the asked digits himself in his own voice.
    Before: the digits were checked against the victim's templates only, not whose voice said them: PASS.
    (erin is left out: GE2E scores that espeak-ng voice as alice's own, 0.80-0.86, the same synthesiser.)"""
    enrol_with_digits(bank, utterances_of, tmp_path)
    for n, attacker in enumerate(("bob", "carol", "dave", "frank")):
        # Each time a recording the engine never heard (a replay of an earlier call is caught elsewhere).
        call = caller(20 + n, {"verify-speak": [Say(phone_speech(utterances_of, "alice", 3 + n))]})
        call.script["liveness-go"] = [SayFrom(lambda c=call, a=attacker: digits_speech(a, asked(c), tmp_path))]
        await run_call(bank.lines.voice_only(), call)
        assert call.result["VOICEAUTH_RISK"] == "NONE", (attacker, call.result)
        assert call.result["VOICEAUTH_RESULT"] != "PASS", (attacker, call.result)
        assert call.result["VOICEAUTH_LIVENESS"] == "FAIL", (attacker, call.result)
