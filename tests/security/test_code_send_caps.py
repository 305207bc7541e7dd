"""Attack: make the IVR flood a customer's phone or mailbox with one-time codes (SMS bombing).

Before: every call could send a code, without any cap per customer.
"""

from __future__ import annotations

import pytest

from ivr.audit.log import AuditLog
from ivr.call import CallInfo
from ivr.service.calls import run_call
from ivr.otp.config import OtpConfig
from ivr.otp.errors import SendCapReached
from tests.scripted_call import Keys, KeysFrom, ScriptedCall
from tests.security.conftest import VICTIM

CONFIG = OtpConfig()


async def test_codes_to_one_customer_are_capped_per_hour_and_per_day(bank_with_codes):
    bank = bank_with_codes
    backend = bank.lines.steps.otp.backend
    customer = bank.lines.customers.get(VICTIM)
    sent = 0
    for hour in range(3):
        for _ in range(CONFIG.max_sends_per_hour):
            if sent >= CONFIG.max_sends_per_day:
                break
            await backend.start(customer)
            sent += 1
        with pytest.raises(SendCapReached):
            await backend.start(customer)
        bank.clock.advance(hours=1, seconds=1)
    assert sent == CONFIG.max_sends_per_day and len(bank.box.messages) == sent
    bank.clock.advance(days=1)
    await backend.start(customer)
    assert len(bank.box.messages) == sent + 1


async def test_a_call_that_hits_the_cap_hears_the_code_is_unavailable_and_the_audit_says_why(bank_with_codes):
    bank = bank_with_codes
    customer = bank.lines.customers.get(VICTIM)
    for _ in range(CONFIG.max_sends_per_hour):
        await bank.lines.steps.otp.backend.start(customer)
    already = len(bank.box.messages)
    call = ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                         "otp-enter": [KeysFrom(lambda: bank.box.latest_code() + "#")]},
                        info=CallInfo("cap-1", "+573001112233", "en", {}))
    await run_call(bank.lines.verify(), call)
    assert call.result["VOICEAUTH_RESULT"] != "PASS"
    assert "otp-unavailable" in call.played and len(bank.box.messages) == already
    [row] = AuditLog(bank.lines.db).query(flow="verify")
    otp = [f for f in row.factors if f["factor"] == "otp"][0]
    assert otp["outcome"] == "unavailable" and "cap" in otp["detail"]
