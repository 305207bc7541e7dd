"""Opt-out line: a caller withdraws consent; the voiceprint is deleted and the opt-out recorded.

Biometric data may never be a condition of service (Colombia's Ley 1581,
GDPR Art. 9): withdrawing must be as easy as enrolling, on the phone.
"""

from __future__ import annotations

import asyncio

from ivr.call import CallSession
from ivr.consent.registry import ConsentRegistry
from ivr.flows.base import FlowResult, Result, SecondFactor
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig

OPT_OUT_CHANNEL = "ivr-optout"


class OptOutFlow:
    name = "optout"

    def __init__(self, consent: ConsentRegistry, config: FlowConfig, second_factor: SecondFactor) -> None:
        self.consent = consent
        self.config = config
        self.second_factor = second_factor

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call)
        account = await claimed_account(io, self.config)
        if account is None:
            return FlowResult(Result.FAILED, reason="no account number entered")
        if not await self.second_factor.verify(io, account):
            await io.play("enroll-factor-failed")
            return FlowResult(Result.FAILED, account, reason=f"{self.second_factor.name} not confirmed")
        for _ in range(self.config.input_attempts):
            await io.play("optout-confirm")
            key = await io.read_key(self.config.first_digit_timeout_s)
            if key == "1":
                result = await asyncio.to_thread(self.consent.opt_out, account, OPT_OUT_CHANNEL)
                await io.play("optout-done")
                return FlowResult(Result.OPTED_OUT, account, reason=(
                    "voiceprint deleted" if result.voiceprint_deleted else "no voiceprint was stored"))
            if key == "2":
                break
        await io.play("optout-kept")
        return FlowResult(Result.DECLINED, account, reason="caller kept the voiceprint")
