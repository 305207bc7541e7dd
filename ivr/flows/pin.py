"""The enrolment line's second factor for now: a PIN keyed in on the phone.

The PIN is stored like a knowledge answer (argon2id, never in plaintext) under
the question key ``pin``, imported with ``ivr customers import``.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.db.customers import CustomerDirectory, CustomerRecord
from ivr.flows.callio import CallIO
from ivr.flows.config import FlowConfig
from ivr.knowledge.service import KnowledgeService

log = logging.getLogger("ivr.flows.pin")


class PinFactor:
    name = "PIN"

    def __init__(self, customers: CustomerDirectory, knowledge: KnowledgeService, config: FlowConfig) -> None:
        self.customers = customers
        self.knowledge = knowledge
        self.config = config

    async def verify(self, io: CallIO, account: str) -> bool:
        customer = await asyncio.to_thread(self.customers.get, account)
        if customer is None:
            log.info("enrolment: account %s is not a known customer", account)
            return False
        for attempt in range(self.config.input_attempts):
            await io.play("enter-pin")
            entered = await io.read_digits(8, self.config.first_digit_timeout_s, self.config.next_digit_timeout_s)
            correct = bool(entered) and await asyncio.to_thread(self._check, customer, entered)
            if correct:
                return True
            if attempt + 1 < self.config.input_attempts:
                await io.play("pin-wrong")
        log.info("enrolment: PIN not confirmed for account %s", account)
        return False

    def _check(self, customer: CustomerRecord, entered: str) -> bool:
        return self.knowledge.check(customer, "pin", entered)
