"""Attack: learn which account numbers exist, or are enrolled, by listening to the IVR.

Before: an unknown account was sent to an agent at once, a known account
without a voiceprint went straight to a code, and an enrolled one was asked
to speak: three different sounds before any factor was tried.
"""

from __future__ import annotations

from ivr.call import CallInfo
from ivr.service.calls import run_call
from tests.scripted_call import Keys, Say, ScriptedCall
from tests.security.conftest import PIN, VICTIM
from tests.test_flows import phone_speech

UNKNOWN, NO_VOICEPRINT = "99887", "55501"


class CountingEmbedder:
    """The real model, counting the audio it embeds: the work a caller could time."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.samples = inner, 0
        self.model_id, self.dim = inner.model_id, inner.dim

    def embed(self, clip):  # type: ignore[no-untyped-def]
        self.samples += clip.samples.shape[0] * 16000 // clip.sample_rate
        return self.inner.embed(clip)

    def embed_batch(self, clips):  # type: ignore[no-untyped-def]
        return [self.embed(c) for c in clips]


def caller(account: str, speech) -> ScriptedCall:  # type: ignore[no-untyped-def]
    return ScriptedCall({"enter-account": [Keys(account + "#")], "verify-speak": [Say(speech)]},
                        info=CallInfo(f"probe-{account}", "+573001112233", "en", {}))


async def test_unknown_unenrolled_and_enrolled_accounts_sound_and_cost_the_same_until_a_factor_is_tried(
        bank_with_codes, utterances_of):
    bank = bank_with_codes
    bank.enrol_victim(utterances_of)
    bank.lines.customers.add(NO_VOICEPRINT, email="luis@example.org", preferred_otp_channel="email")
    counting = CountingEmbedder(bank.lines.engine.embedder)
    bank.lines.engine.embedder = counting  # type: ignore[assignment]
    speech = phone_speech(utterances_of, "frank", 5)
    heard, work = {}, {}
    for account in (VICTIM, NO_VOICEPRINT, UNKNOWN):
        call = caller(account, speech)
        counting.samples = 0
        await run_call(bank.lines.verify(), call)
        heard[account], work[account] = call, counting.samples
    # Up to and including the voice factor, every account hears the same thing ...
    assert {tuple(c.played[:2]) for c in heard.values()} == {("enter-account", "verify-speak")}
    # ... and the engine does the same work (a score, or the same embedding on a decoy), so it takes as long.
    assert len(set(work.values())) == 1 and work[UNKNOWN] > 16000, work
    # After the voice, an enrolled impostor and an unknown account are both offered a code the same way.
    assert heard[VICTIM].played[2] == heard[UNKNOWN].played[2] == "otp-sent-email"


async def test_the_enrolment_line_asks_an_unknown_account_for_a_pin_like_a_real_one(bank):
    calls = {}
    for account in (VICTIM, UNKNOWN):
        call = ScriptedCall({"enter-account": [Keys(account + "#")], "enter-pin": [Keys("0000#")] * 3},
                            info=CallInfo(f"enum-{account}", "+573001112233", "en", {}))
        await run_call(bank.lines.enroll(), call)
        calls[account] = call
    assert calls[VICTIM].played == calls[UNKNOWN].played
    assert calls[VICTIM].result["VOICEAUTH_RESULT"] == calls[UNKNOWN].result["VOICEAUTH_RESULT"] == "FAILED"
    assert PIN != "0000"
