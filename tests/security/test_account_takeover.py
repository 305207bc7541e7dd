"""Attack: take over an account on the enrolment or opt-out line.

The attacker has the victim's account number, calls the enrolment line again
and again guessing the PIN (or knows it), and speaks with their own voice.
Before: PIN tries were neither counted nor audited, and a right PIN replaced
the victim's voiceprint with the attacker's. Now every try counts toward the
account's lock on every line, a voiceprint on file is replaced or deleted
only when the current voice (or a code to a contact on file) confirms it,
and the customer is told on the contact on file.
"""

from __future__ import annotations

import numpy as np

from ivr.audit.log import AuditLog
from ivr.call import CallInfo
from ivr.service.calls import run_call
from tests.flow_kit import FAST
from tests.scripted_call import Keys, Say, ScriptedCall
from tests.security.conftest import EMAIL, PIN, VICTIM
from tests.test_flows import phone_speech


def attacker(script: dict, number: int = 0) -> ScriptedCall:
    return ScriptedCall({"enter-account": [Keys(VICTIM + "#")], **script},
                        info=CallInfo(f"attack-{number}", f"+5731{number:08d}", "en", {}))


async def test_guessing_the_pin_across_calls_locks_the_account_audits_it_and_tells_the_customer(bank):
    results, guesses = [], 0
    for call_number in range(4):
        wrong = [Keys(f"{1000 + 3 * call_number + j}#") for j in range(FAST.input_attempts)]
        call = attacker({"enter-pin": wrong}, call_number)
        await run_call(bank.lines.enroll(), call)
        results.append(call.result["VOICEAUTH_RESULT"])
        guesses += call.played.count("enter-pin")
    assert results == ["FAILED", "LOCKED", "LOCKED", "LOCKED"], results
    assert guesses == 2 * FAST.input_attempts, "every wrong PIN counts; a locked account is asked for none"
    rows = AuditLog(bank.lines.db).query(flow="enroll")
    assert [r.result for r in rows] == results and any(r.locked_out for r in rows)
    assert [f["outcome"] for f in rows[0].factors] == ["fail"] and rows[0].factors[0]["factor"] == "pin"
    [notice] = bank.box.notices(EMAIL)
    assert "locked after repeated failed attempts" in notice
    assert bank.lines.limits.check(VICTIM, None).locked


async def test_a_known_pin_alone_never_replaces_the_victims_voiceprint(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    before = bank.victim_vector()
    call = attacker({"enter-pin": [Keys(PIN + "#")],
                     "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))],
                     "enroll-consent": [Keys("1")],
                     **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "frank", i))] for i in range(3)}})
    await run_call(bank.lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED", call.result
    assert "verify-speak" in call.played and "enroll-consent" not in call.played
    assert np.array_equal(bank.victim_vector(), before), "the victim's voiceprint is untouched"
    assert bank.box.notices(EMAIL) == []


async def test_a_known_pin_alone_never_deletes_the_victims_voiceprint_on_the_opt_out_line(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    call = attacker({"enter-pin": [Keys(PIN + "#")],
                     "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))],
                     "optout-confirm": [Keys("1")]})
    await run_call(bank.lines.optout(), call)
    assert call.result["VOICEAUTH_RESULT"] == "FAILED", call.result
    assert bank.victim_vector() is not None
    assert not bank.lines.guard.kit.consent.state(VICTIM).opted_out


async def test_the_customer_with_pin_and_own_voice_may_re_enrol_and_is_told(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    before = bank.victim_vector()
    call = attacker({"enter-pin": [Keys(PIN + "#")],
                     "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                     "enroll-consent": [Keys("1")],
                     **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", 6 + i))] for i in range(3)}})
    await run_call(bank.lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    assert not np.array_equal(bank.victim_vector(), before)
    [notice] = bank.box.notices(EMAIL)
    assert "voiceprint used for voice authentication on your account was replaced" in notice


async def test_a_first_enrolment_by_pin_is_allowed_by_policy_and_the_customer_is_told(bank, utterances_of):
    call = attacker({"enter-pin": [Keys(PIN + "#")], "enroll-consent": [Keys("1")],
                     **{f"enroll-say-{i + 1}": [Say(phone_speech(utterances_of, "alice", i))] for i in range(3)}})
    await run_call(bank.lines.enroll(), call)
    assert call.result["VOICEAUTH_RESULT"] == "ENROLLED", call.result
    [row] = AuditLog(bank.lines.db).query(flow="enroll")
    assert row.rule == "first-enrolment-pin"
    assert "voiceprint was created" in bank.box.notices(EMAIL)[0]


async def test_an_opt_out_by_the_customer_deletes_the_voiceprint_and_tells_them(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    call = attacker({"enter-pin": [Keys(PIN + "#")],
                     "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))],
                     "optout-confirm": [Keys("1")]})
    await run_call(bank.lines.optout(), call)
    assert call.result["VOICEAUTH_RESULT"] == "OPTED_OUT", call.result
    assert bank.victim_vector() is None
    assert "was deleted" in bank.box.notices(EMAIL)[0]
