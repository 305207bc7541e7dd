"""One-time codes and knowledge questions as call steps.

Each step returns a :class:`~ivr.policy.model.FactorAttempt` for the policy
and the audit log; codes and answers never leave these functions (not in the
attempt's detail, not in logs). For a claimed account that does not exist,
the code step plays the part of a code sent to the usual channel and finds
every entry wrong, so the line does not tell which accounts exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ivr.db.customers import CustomerRecord
from ivr.flows.callio import CallIO
from ivr.flows.config import FlowConfig
from ivr.knowledge.catalogue import question
from ivr.knowledge.policy import KnowledgeOutcome, KnowledgePolicy, NotEnoughQuestions
from ivr.knowledge.service import KnowledgeService
from ivr.otp.backends import OtpBackend
from ivr.otp.errors import NoDestinationError, OtpDeliveryError, OtpUnavailableError, ResendRefused, SendCapReached
from ivr.otp.service import OtpResult
from ivr.policy.model import Factor, FactorAttempt, FactorOutcome

log = logging.getLogger("ivr.flows.factors")

OTP_MAX_DIGITS = 10  # codes are 4-10 digits (OtpConfig); '#' ends earlier
# The channel a decoy claims when the backend offers it: the most common one.
_DECOY_CHANNELS = ("sms", "email", "voice")


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)


@dataclass(frozen=True)
class OtpStep:
    backend: OtpBackend
    config: FlowConfig
    # Entries per code (OtpConfig.max_attempts): what the decoy allows too.
    max_attempts: int = 3

    async def run(self, io: CallIO, customer: CustomerRecord | None) -> FactorAttempt:
        started = time.monotonic()

        def attempt(outcome: FactorOutcome, detail: str) -> FactorAttempt:
            return FactorAttempt(Factor.OTP, outcome, latency_ms=_ms(started), detail=detail)

        if customer is None:
            return await self._decoy(io, attempt)
        try:
            handle = await self.backend.start(customer)
        except NoDestinationError as exc:
            return attempt(FactorOutcome.UNAVAILABLE, str(exc))
        except (OtpDeliveryError, OtpUnavailableError, ResendRefused, SendCapReached) as exc:
            await io.play("otp-unavailable")
            return attempt(FactorOutcome.UNAVAILABLE, f"code not delivered: {exc}")
        await io.play(f"otp-sent-{handle.channel}")
        silent = 0
        while True:
            entered = await self._entry(io)
            if not entered:
                silent += 1
                if silent >= self.config.input_attempts:
                    return attempt(FactorOutcome.INCONCLUSIVE, "no code entered")
                continue
            try:
                check = await self.backend.check(handle, entered)
            except OtpUnavailableError as exc:
                await io.play("otp-unavailable")
                return attempt(FactorOutcome.UNAVAILABLE, f"code could not be checked: {exc}")
            if check.result is OtpResult.OK:
                return attempt(FactorOutcome.PASS, f"code sent by {handle.channel} to {handle.destination}")
            if check.result is OtpResult.WRONG and (check.remaining_attempts is None or check.remaining_attempts > 0):
                await io.play("otp-wrong")
                continue
            prompt = {OtpResult.EXPIRED: "otp-expired", OtpResult.WRONG: "otp-too-many",
                      OtpResult.TOO_MANY_ATTEMPTS: "otp-too-many"}.get(check.result, "otp-wrong")
            await io.play(prompt)
            return attempt(FactorOutcome.FAIL, f"code {check.result.value}")

    async def _entry(self, io: CallIO) -> str:
        await io.play("otp-enter")
        return await io.read_digits(OTP_MAX_DIGITS, self.config.first_digit_timeout_s * 2,
                                    self.config.next_digit_timeout_s)

    async def _decoy(self, io: CallIO, attempt) -> FactorAttempt:  # type: ignore[no-untyped-def]
        """What a known customer hears, with no code behind it: every entry is wrong."""
        channel = next((c for c in _DECOY_CHANNELS if c in self.backend.channels), "sms")
        await io.play(f"otp-sent-{channel}")
        silent = wrong = 0
        while True:
            if not await self._entry(io):
                silent += 1
                if silent >= self.config.input_attempts:
                    return attempt(FactorOutcome.INCONCLUSIVE, "no code entered")
                continue
            wrong += 1
            if wrong < self.max_attempts:
                await io.play("otp-wrong")
                continue
            await io.play("otp-too-many")
            return attempt(FactorOutcome.FAIL, "code too_many_attempts (no such customer)")


@dataclass(frozen=True)
class KbaStep:
    knowledge: KnowledgeService
    policy: KnowledgePolicy
    config: FlowConfig

    async def available(self, customer: CustomerRecord | None) -> bool:
        if customer is None:
            return False
        return len(await asyncio.to_thread(self.knowledge.questions_for, customer)) >= self.policy.required

    async def run(self, io: CallIO, customer: CustomerRecord | None) -> FactorAttempt:
        started = time.monotonic()
        available = await asyncio.to_thread(self.knowledge.questions_for, customer) if customer else []
        try:
            chosen = self.policy.choose(available)
        except NotEnoughQuestions as exc:
            return FactorAttempt(Factor.KBA, FactorOutcome.UNAVAILABLE, latency_ms=_ms(started), detail=str(exc))
        assert customer is not None
        await io.play("kba-intro")
        results: list[bool] = []
        outcome = KnowledgeOutcome.UNDECIDED
        for key in chosen:
            q = question(key)
            await io.play(q.prompt)
            entered = await io.read_digits(q.max_digits, self.config.first_digit_timeout_s * 2,
                                           self.config.next_digit_timeout_s)
            results.append(bool(entered) and await asyncio.to_thread(self.knowledge.check, customer, key, entered))
            outcome = self.policy.outcome(results, asked=len(chosen))
            if outcome is not KnowledgeOutcome.UNDECIDED:
                break
        detail = f"{sum(results)} of {len(results)} answers correct (need {self.policy.required})"
        verdict = FactorOutcome.PASS if outcome is KnowledgeOutcome.PASSED else FactorOutcome.FAIL
        return FactorAttempt(Factor.KBA, verdict, latency_ms=_ms(started), detail=detail)
