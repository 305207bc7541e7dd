"""Verify line: does the caller's voice match the account they claim?

Claim -> prompt -> listen until enough net speech or a deadline -> score ->
the decision policy accepts, steps up to a one-time code (or knowledge
questions to confirm a voice in the grey band), rejects, or hands the caller
to an agent. Limits, the account's lease and the audit row come from the
guard (:mod:`ivr.flows.guard`). The dialplan gets the result as VOICEAUTH_*
variables and routes on it.
"""

from __future__ import annotations

import asyncio

from ivr.call import CallSession
from ivr.consent.retention import record_voiceprint_use
from ivr.call import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig
from ivr.flows.guard import Attempt, Guard
from ivr.flows.steps import FactorSteps
from ivr.flows.voice import VoiceHeard
from ivr.policy.model import Action, Factor, FactorAttempt, FactorOutcome, Line, PolicyDecision
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import ReenrolmentNeededError, UnknownSpeakerError


class VerifyFlow:
    name = "verify"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, guard: Guard, steps: FactorSteps) -> None:
        self.engine = engine
        self.config = config
        self.guard = guard
        self.steps = steps

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        account = await claimed_account(io, self.config)
        if account is None:
            return await self.guard.unclaimed(io, Line.VERIFY, FlowResult(
                Result.INCONCLUSIVE, reason="no account number entered"))
        return await self.guard.run(io, Line.VERIFY, account, self._authenticate)

    async def _authenticate(self, attempt: Attempt) -> FlowResult:
        account = attempt.account
        why_not = await why_not_enrolled(self.engine, account)
        heard: list[VoiceHeard] = []
        available, steps = await self.steps.others(attempt.io, account, attempt.customer,
                                                   voice_sample=lambda: heard[-1].embedding if heard else None)
        identity = await attempt.identity_state(enrolled=why_not is None, available=available | {Factor.VOICE})

        async def voice() -> FactorAttempt:
            if identity.opted_out:
                h = await self.steps.voice.run(attempt.io, account, unscored=FactorOutcome.REFUSED,
                                               why_unscored="the caller opted out of voice authentication")
            elif why_not is not None:
                h = await self.steps.voice.run(attempt.io, account, unscored=FactorOutcome.NOT_ENROLLED,
                                               why_unscored=why_not)
            else:
                h = await self.steps.voice.run(attempt.io, account)
                await asyncio.to_thread(record_voiceprint_use, self.guard.kit.db, account)
            heard.append(h)
            return h.attempt

        decision = await attempt.authenticate(identity, {**steps, Factor.VOICE: voice})
        return verify_result(account, decision, attempt.factors, heard[-1] if heard else None,
                             enrolled=why_not is None)


async def why_not_enrolled(engine: VoiceprintEngine, account: str) -> str | None:
    """None when the account has a voiceprint this engine can score; else why not."""
    try:
        await engine.avoiceprint_for(account)
    except UnknownSpeakerError:
        return "no voiceprint on file"
    except ReenrolmentNeededError as exc:
        return str(exc)
    return None


def verify_result(account: str, decision: PolicyDecision, factors: list[FactorAttempt], voice: VoiceHeard | None,
                  *, enrolled: bool) -> FlowResult:
    """The dialplan's result, with what each factor said and the rule that decided."""
    said = [f"{f.factor.value} {f.outcome.value}" + (f" ({f.detail})" if f.detail else "") for f in factors]
    why = f"{decision.reason} (rule {decision.rule})"
    passed = next((f for f in reversed(factors) if f.outcome is FactorOutcome.PASS
                   and f.factor is not Factor.LIVENESS), None)
    result = _result(decision, factors, voice, enrolled)
    method = passed.factor.value if result is Result.PASS and passed else ("voice" if voice else None)
    challenge = next((f for f in factors if f.factor is Factor.LIVENESS), None)
    liveness = ("SKIPPED" if challenge is None or challenge.outcome is FactorOutcome.UNAVAILABLE
                else "PASS" if challenge.outcome is FactorOutcome.PASS else "FAIL")
    risks = tuple(sorted({r.value for f in factors for r in f.risks}))
    return FlowResult(result, account, voice.score if voice else None, "; ".join([*said, why]), method=method,
                      decision_s=voice.decision_s if voice else None, engine_s=voice.engine_s if voice else None,
                      liveness=liveness, risks=risks)


def _result(decision: PolicyDecision, factors: list[FactorAttempt], voice: VoiceHeard | None,
            enrolled: bool) -> Result:
    if decision.action is Action.ACCEPT:
        return Result.PASS
    if decision.result:
        return Result(decision.result)
    if decision.action is Action.REJECT:
        return Result.FAIL
    # Routed to an agent, or no factor left: the dialplan's INCONCLUSIVE and
    # NOT_ENROLLED branches are where a person takes over; a voice that did
    # not match, with nothing else tried, stays a FAIL.
    if not enrolled:
        return Result.NOT_ENROLLED
    if voice is not None and len(factors) == 1:
        return Result.FAIL if voice.attempt.outcome is FactorOutcome.FAIL else Result.INCONCLUSIVE
    return Result.INCONCLUSIVE
