"""Attack: many calls at once, a lock taken in another call, withheld numbers, floods on one trunk.

Before: the lock was read once at the start of a call and only failures were
counted, so fifty simultaneous calls claiming one account each got a full
try, a pass was accepted after the account locked in another call, and a
withheld number escaped every per-number limit.
"""

from __future__ import annotations

import asyncio

from ivr.call import CallInfo
from ivr.service.calls import run_call
from ivr.flows.steps import FactorSteps
from ivr.flows.verify import VerifyFlow
from ivr.flows.voice import VoiceHeard, VoiceStep
from ivr.limits.config import LimitsConfig
from ivr.limits.service import Limits
from tests.flow_kit import build_lines
from tests.scripted_call import Keys, Say, ScriptedCall
from tests.security.conftest import VICTIM
from tests.test_flows import phone_speech


def genuine(n: int, utterances_of) -> ScriptedCall:  # type: ignore[no-untyped-def]
    return ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]},
                        info=CallInfo(f"parallel-{n}", f"+5731{n:08d}", "en", {}))


class SlowVoice(VoiceStep):
    """A caller who takes a moment to answer; remembers when each voice try ran."""

    windows: list[tuple[float, float]] = []

    async def run(self, io, account, **kwargs) -> VoiceHeard:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(1.0)
        try:
            return await super().run(io, account, **kwargs)
        finally:
            self.windows.append((started, loop.time()))


async def test_simultaneous_calls_claiming_one_account_never_authenticate_two_at_once(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    # Two workers on one database, as in a scaled-out deployment.
    workers = [bank.lines, build_lines(bank.lines.engine, clock=bank.clock)]
    flows = [VerifyFlow(w.engine, w.config, w.guard, FactorSteps(voice=SlowVoice(w.engine, w.config)))
             for w in workers]
    SlowVoice.windows = []
    calls = [genuine(n, utterances_of) for n in range(6)]
    await asyncio.gather(*(run_call(flows[n % 2], c) for n, c in enumerate(calls)))
    refused = [c for c in calls if "another call is authenticating" in c.result["VOICEAUTH_REASON"]]
    assert len(refused) >= 3, [c.result for c in calls]  # they really did arrive at the same time
    assert all(c.result["VOICEAUTH_RESULT"] == "INCONCLUSIVE" and "verify-speak" not in c.played
               for c in refused), "a refused call gets no try"
    windows = sorted(SlowVoice.windows)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(windows, windows[1:])), windows
    assert len(windows) == len(calls) - len(refused)
    later = genuine(99, utterances_of)
    await run_call(workers[1].voice_only(), later)
    assert later.result["VOICEAUTH_RESULT"] == "PASS", "the lease is released when the call ends"


class LockedMeanwhile(VoiceStep):
    """The voice step, while another call (an attacker elsewhere) locks the account."""

    async def run(self, io, account, **kwargs) -> VoiceHeard:  # type: ignore[no-untyped-def]
        limits: Limits = self.limits  # type: ignore[attr-defined]
        for _ in range(limits.config.identity.max_events):
            limits.record_failure(account, "e" * 64, "otp")
        return await super().run(io, account, **kwargs)


async def test_a_pass_after_the_account_locked_in_another_call_is_not_accepted(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    step = LockedMeanwhile(bank.lines.engine, bank.lines.config)
    step.limits = bank.lines.limits  # type: ignore[attr-defined]
    flow = VerifyFlow(bank.lines.engine, bank.lines.config, bank.lines.guard, FactorSteps(voice=step))
    call = genuine(1, utterances_of)
    await run_call(flow, call)
    assert call.result["VOICEAUTH_RESULT"] == "LOCKED", call.result
    assert "voice pass" in call.result["VOICEAUTH_REASON"], "the voice matched, and still no accept"


def test_each_lock_in_a_row_lasts_twice_as_long_until_a_success(bank):
    limits = bank.lines.limits
    durations = []
    for _ in range(3):
        for _ in range(limits.config.identity.max_events):
            state = limits.record_failure(VICTIM, None, "pin")
        durations.append((state.until - bank.clock.now).total_seconds() / 60)
        bank.clock.advance(seconds=(state.until - bank.clock.now).total_seconds() + 1)
    assert durations == [30, 60, 120]
    limits.record_success(VICTIM, None, "otp")
    for _ in range(limits.config.identity.max_events):
        state = limits.record_failure(VICTIM, None, "pin")
    assert (state.until - bank.clock.now).total_seconds() / 60 == 30


def test_withheld_numbers_share_one_limit_per_trunk(bank):
    secrets, limits = bank.lines.secrets, bank.lines.limits
    cap = limits.config.withheld.max_events
    for n in range(cap):
        # Walking account numbers from a withheld line: each account is tried once.
        assert not limits.begin_attempt(f"9{n:05d}", secrets.call_origin("anonymous", "PJSIP/carrier-a")).locked
    refused = limits.begin_attempt("800000", secrets.call_origin(None, "PJSIP/carrier-a"))
    assert refused.locked and refused.scope == "withheld"
    assert limits.begin_attempt("800000", secrets.call_origin("not-a-number", "PJSIP/carrier-a")).locked
    assert not limits.begin_attempt("800000", secrets.call_origin(None, "PJSIP/carrier-b")).locked
    assert not limits.begin_attempt("800000", secrets.call_origin("+573001234567", "PJSIP/carrier-a")).locked


def test_one_trunk_has_an_overall_rate(bank):
    limits = Limits(bank.lines.db, LimitsConfig(trunk={"max_events": 10, "window_s": 60, "lock_s": 60}),
                    clock=bank.clock)
    secrets = bank.lines.secrets
    for n in range(10):
        assert not limits.begin_attempt(f"7{n:04d}", secrets.call_origin(f"+5730{n:08d}", "PJSIP/flood")).locked
    flooded = limits.begin_attempt("70099", secrets.call_origin("+573199999999", "PJSIP/flood"))
    assert flooded.locked and flooded.scope == "trunk"
    assert not limits.begin_attempt("70099", secrets.call_origin("+573199999999", "PJSIP/other")).locked
    bank.clock.advance(seconds=61)
    assert not limits.begin_attempt("70099", secrets.call_origin("+573199999999", "PJSIP/flood")).locked
