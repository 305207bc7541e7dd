"""Attack: silence, hang-ups and knowledge answers as free tries.

Before: only a FAIL counted, so a silent caller walked voice -> code ->
knowledge questions without end, and the shipped policy then accepted on
knowledge answers alone (date of birth, postal code: often public).
"""

from __future__ import annotations

from ivr.call import CallInfo
from ivr.service.calls import run_call
from ivr.limits.service import Limits
from tests.scripted_call import Hangs, Keys, ScriptedCall
from tests.security.conftest import VICTIM

MAX_FAILURES = 5  # IdentityLimit.max_events, the shipped default


def call(number: int, script: dict) -> ScriptedCall:
    return ScriptedCall({"enter-account": [Keys(VICTIM + "#")], **script},
                        info=CallInfo(f"silent-{number}", f"+5731{number:08d}", "en", {}))


async def test_repeated_silence_locks_the_account(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    results = []
    for n in range(MAX_FAILURES + 1):
        silent = call(n, {})
        await run_call(bank.lines.voice_only(), silent)
        results.append(silent.result["VOICEAUTH_RESULT"])
    # The fifth silent try locks the account in that very call.
    assert results == ["INCONCLUSIVE"] * (MAX_FAILURES - 1) + ["LOCKED", "LOCKED"], results


async def test_hanging_up_in_the_middle_of_a_factor_counts_as_a_try(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    for n in range(MAX_FAILURES):
        assert await run_call(bank.lines.voice_only(), call(n, {"verify-speak": [Hangs()]})) is None
    assert bank.lines.limits.check(VICTIM, None).locked
    last = call(99, {})
    await run_call(bank.lines.voice_only(), last)
    assert last.result["VOICEAUTH_RESULT"] == "LOCKED" and "verify-speak" not in last.played


def test_a_factor_whose_call_died_counts_and_the_next_attempt_locks(bank):
    limits: Limits = bank.lines.limits
    for _ in range(MAX_FAILURES):
        state, _ticket = limits.start_factor(VICTIM, None, "voice")  # the worker died: never finished
        assert not state.locked
    assert limits.begin_attempt(VICTIM, None).locked


async def test_knowledge_answers_never_stand_in_for_an_absent_voice(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    answers = {"kba-dob": [Keys("15031987#")], "kba-postal-code": [Keys("110111#")]}
    silent_but_knows_the_answers = call(1, answers)
    await run_call(bank.lines.verify(), silent_but_knows_the_answers)
    assert silent_but_knows_the_answers.result["VOICEAUTH_RESULT"] != "PASS"
    assert "kba-intro" not in silent_but_knows_the_answers.played


async def test_knowledge_answers_never_stand_in_for_a_caller_without_a_voiceprint(bank):
    answers = {"kba-dob": [Keys("15031987#")], "kba-postal-code": [Keys("110111#")]}
    not_enrolled = call(2, answers)
    await run_call(bank.lines.verify(), not_enrolled)
    assert not_enrolled.result["VOICEAUTH_RESULT"] == "NOT_ENROLLED"
    assert "kba-intro" not in not_enrolled.played
