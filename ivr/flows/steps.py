"""The factors a deployment offers, as configured, and what one call may ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ivr.db.customers import CustomerRecord
from ivr.flows.callio import CallIO
from ivr.flows.guard import Step
from ivr.flows.liveness import LivenessStep
from ivr.flows.pin import PinStep
from ivr.flows.second_factors import KbaStep, OtpStep
from ivr.flows.voice import VoiceStep
from ivr.policy.model import Factor


@dataclass(frozen=True)
class FactorSteps:
    """Voice always; a code, knowledge questions, the PIN and the liveness challenge when configured."""

    voice: VoiceStep
    otp: OtpStep | None = None
    kba: KbaStep | None = None
    pin: PinStep | None = None
    liveness: LivenessStep | None = None

    async def others(self, io: CallIO, account: str, customer: CustomerRecord | None,
                     voice_sample: Callable[[], np.ndarray | None] = lambda: None,
                     ) -> tuple[set[Factor], dict[Factor, Step]]:
        """The non-voice factors this call may ask for, and how to run each.

        ``voice_sample``: the embedding of the voice heard earlier in this call, when there is one by
        the time the liveness challenge is asked (its answer must be in the same voice).

        A code is offered whenever codes are configured, customer or not (the
        step plays a decoy for an unknown account): whether it is offered must
        not tell the caller whether the account exists.
        """
        available: set[Factor] = set()
        steps: dict[Factor, Step] = {}
        otp, kba, pin, liveness = self.otp, self.kba, self.pin, self.liveness
        if otp is not None:
            available.add(Factor.OTP)
            steps[Factor.OTP] = lambda: otp.run(io, customer)
        if kba is not None and await kba.available(customer):
            available.add(Factor.KBA)
            steps[Factor.KBA] = lambda: kba.run(io, customer)
        if pin is not None and await pin.available(customer):
            available.add(Factor.PIN)
            steps[Factor.PIN] = lambda: pin.run(io, customer)
        if liveness is not None and await liveness.available(account):
            available.add(Factor.LIVENESS)
            steps[Factor.LIVENESS] = lambda: liveness.run(io, account, voice_sample())
        return available, steps
