"""The PIN as a call step: a memorised secret keyed in on the phone.

The PIN is stored like a knowledge answer (argon2id, never in plaintext)
under the question key ``pin``, imported with ``ivr customers import``. For a
claimed account that does not exist the caller is asked all the same and
every entry is wrong, after the same argon2 work: the line does not tell
which accounts exist. Every wrong entry is counted by the guard's limits.
"""

from __future__ import annotations

import asyncio
import time

from ivr.db.customers import CustomerRecord
from ivr.flows.callio import CallIO
from ivr.flows.config import FlowConfig
from ivr.knowledge.service import KnowledgeService
from ivr.policy.model import Factor, FactorAttempt, FactorOutcome

PIN_KEY = "pin"
PIN_MAX_DIGITS = 8


class PinStep:
    def __init__(self, knowledge: KnowledgeService, config: FlowConfig) -> None:
        self.knowledge = knowledge
        self.config = config

    async def available(self, customer: CustomerRecord | None) -> bool:
        """A known customer without a PIN on file is not asked; an unknown account is (and always fails)."""
        return customer is None or await asyncio.to_thread(self.knowledge.has_answer, customer, PIN_KEY)

    async def run(self, io: CallIO, customer: CustomerRecord | None) -> FactorAttempt:
        started = time.monotonic()
        wrong = 0
        for attempt in range(self.config.input_attempts):
            await io.play("enter-pin")
            entered = await io.read_digits(PIN_MAX_DIGITS, self.config.first_digit_timeout_s,
                                           self.config.next_digit_timeout_s)
            if entered and await asyncio.to_thread(self._check, customer, entered):
                return FactorAttempt(Factor.PIN, FactorOutcome.PASS, latency_ms=_ms(started), wrong_tries=wrong,
                                     detail=f"after {wrong} wrong PIN(s)" if wrong else "")
            wrong += bool(entered)
            if attempt + 1 < self.config.input_attempts:
                await io.play("pin-wrong")
        if not wrong:
            return FactorAttempt(Factor.PIN, FactorOutcome.INCONCLUSIVE, latency_ms=_ms(started),
                                 detail="no PIN entered")
        return FactorAttempt(Factor.PIN, FactorOutcome.FAIL, latency_ms=_ms(started), wrong_tries=wrong,
                             detail=f"PIN wrong {wrong} time(s)")

    def _check(self, customer: CustomerRecord | None, entered: str) -> bool:
        if customer is None:
            return self.knowledge.check_nobody(PIN_KEY, entered)
        return self.knowledge.check(customer, PIN_KEY, entered)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)
