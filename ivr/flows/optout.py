"""Opt-out line: a caller withdraws consent; the voiceprint is deleted and the opt-out recorded.

Biometric data may never be a condition of service (Colombia's Ley 1581,
GDPR Art. 9): withdrawing must be as easy as enrolling, on the phone. It
must not be a way to delete someone else's voiceprint either: the caller
proves the account exactly as on the enrolment line (same policy rules,
limits and audit), and the customer is told on the contact on file.
"""

from __future__ import annotations

import asyncio

from ivr.call import CallSession
from ivr.call import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig
from ivr.flows.enroll import not_proven, prove_account
from ivr.flows.guard import Attempt, Guard
from ivr.flows.steps import FactorSteps
from ivr.notices import NoticeKind
from ivr.policy.model import Action, Line
from voiceprints.engine import VoiceprintEngine

OPT_OUT_CHANNEL = "ivr-optout"


class OptOutFlow:
    name = "optout"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, guard: Guard, steps: FactorSteps) -> None:
        self.engine = engine
        self.config = config
        self.guard = guard
        self.steps = steps

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        account = await claimed_account(io, self.config)
        if account is None:
            return await self.guard.unclaimed(io, Line.OPTOUT, FlowResult(
                Result.FAILED, reason="no account number entered"))
        return await self.guard.run(io, Line.OPTOUT, account, self._opt_out)

    async def _opt_out(self, attempt: Attempt) -> FlowResult:
        io, account = attempt.io, attempt.account
        decision, _ = await prove_account(attempt, self.engine, self.steps)
        if decision.action is not Action.ACCEPT:
            await io.play("enroll-factor-failed")
            return not_proven(account, decision, attempt.factors)
        for _ in range(self.config.input_attempts):
            await io.play("optout-confirm")
            key = await io.read_key(self.config.first_digit_timeout_s)
            if key == "1":
                return await self._confirmed(attempt)
            if key == "2":
                break
        await io.play("optout-kept")
        return FlowResult(Result.DECLINED, account, reason="caller kept the voiceprint")

    async def _confirmed(self, attempt: Attempt) -> FlowResult:
        account = attempt.account
        result = await attempt.commit(FlowResult(Result.OPTED_OUT, account, reason="opt-out confirmed"))
        if result.result is not Result.OPTED_OUT:
            return result
        done = await asyncio.to_thread(self.guard.kit.consent.opt_out, account, OPT_OUT_CHANNEL)
        self.engine.drop_cached(account)
        await attempt.io.play("optout-done")
        if done.voiceprint_deleted:
            await attempt.notify(NoticeKind.VOICEPRINT_DELETED)
        return FlowResult(Result.OPTED_OUT, account, reason=(
            "voiceprint deleted" if done.voiceprint_deleted else "no voiceprint was stored"))
