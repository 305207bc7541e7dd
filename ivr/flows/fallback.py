"""Voice is never the only way in: the policy decides which factor comes next.

The loop: ask the policy -> run the factor it names (voice, one-time code,
knowledge questions) -> record the attempt (limits, audit) -> ask again,
until it accepts, rejects or hands the caller to an agent. Every decision
names the rule that fired; the audit row keeps it, never codes or answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Awaitable, Callable

from ivr.audit.log import AuditEntry, AuditLog
from ivr.consent.registry import ConsentRegistry
from ivr.db.customers import CustomerDirectory, CustomerRecord
from ivr.db.engine import Database
from ivr.flows.base import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.flows.second_factors import KbaStep, OtpStep
from ivr.limits.errors import LimitsUnavailableError
from ivr.limits.service import Limits, LimitState
from ivr.policy.engine import decide
from ivr.policy.model import (
    Action,
    DecisionContext,
    Factor,
    FactorAttempt,
    FactorOutcome,
    IdentityState,
    PolicyDecision,
)
from ivr.policy.schema import Policy
from ivr.consent.retention import record_voiceprint_use
from ivr.secrets import ServerSecrets

log = logging.getLogger("ivr.flows.fallback")

# A call tries each factor at most once; this bounds the loop whatever the policy says.
MAX_STEPS = 2 * len(Factor)
VoiceStep = Callable[[], Awaitable[tuple[FactorAttempt, FlowResult]]]


@dataclass(frozen=True)
class FallbackKit:
    db: Database
    policy: Policy
    limits: Limits
    audit: AuditLog
    consent: ConsentRegistry
    customers: CustomerDirectory
    secrets: ServerSecrets
    otp: OtpStep | None
    kba: KbaStep | None


class Authenticator:
    def __init__(self, kit: FallbackKit) -> None:
        self.kit = kit

    async def authenticate(self, io: CallIO, account: str, *, enrolled: bool, voice: VoiceStep) -> FlowResult:
        kit = self.kit
        started = time.monotonic()
        caller_hash = kit.secrets.caller_hash(io.call.info.caller_id)
        factors: list[FactorAttempt] = []
        voice_result: FlowResult | None = None
        decision: PolicyDecision | None = None
        try:
            limit = await asyncio.to_thread(kit.limits.begin_attempt, account, caller_hash)
            customer = await asyncio.to_thread(kit.customers.get, account)
            identity = await self._identity(account, customer, enrolled, limit)
            for _ in range(MAX_STEPS):
                decision = decide(kit.policy, DecisionContext(identity, tuple(factors)))
                if decision.action is not Action.STEP_UP or decision.next_factor is None:
                    break
                attempt, result = await self._run(decision.next_factor, io, customer, voice)
                voice_result = result or voice_result
                factors.append(attempt)
                if attempt.outcome is FactorOutcome.FAIL:
                    limit = await asyncio.to_thread(kit.limits.record_failure, account, caller_hash,
                                                    attempt.factor.value)
                    identity = replace(identity, locked=limit.locked, recent_failures=limit.recent_failures)
            else:
                decision = decide(kit.policy, DecisionContext(identity, tuple(factors)))
        except LimitsUnavailableError as exc:
            return await self._finish(io, account, caller_hash, factors, decision, started,
                                FlowResult(Result.ERROR, account, reason=f"attempt limits unavailable: {exc}"))
        outcome = self._result(account, decision, factors, voice_result, enrolled)
        if outcome.result is Result.PASS:
            await asyncio.to_thread(kit.limits.record_success, account, caller_hash, outcome.method)
        return await self._finish(io, account, caller_hash, factors, decision, started, outcome,
                            locked_out=limit.newly_locked or (limit.locked and outcome.result is Result.LOCKED))

    async def _identity(self, account: str, customer: CustomerRecord | None, enrolled: bool,
                        limit: LimitState) -> IdentityState:
        kit = self.kit
        consent = await asyncio.to_thread(kit.consent.state, account)
        available = set()
        if enrolled and not consent.opted_out:
            available.add(Factor.VOICE)
        if customer is not None and kit.otp is not None:
            available.add(Factor.OTP)
        if customer is not None and kit.kba is not None:
            answers = await asyncio.to_thread(kit.kba.knowledge.questions_for, customer)
            if len(answers) >= kit.kba.policy.required:
                available.add(Factor.KBA)
        return IdentityState(known=customer is not None or enrolled, enrolled=enrolled,
                             opted_out=consent.opted_out, locked=limit.locked,
                             recent_failures=limit.recent_failures, available=frozenset(available))

    async def _run(self, factor: Factor, io: CallIO, customer: CustomerRecord | None,
                   voice: VoiceStep) -> tuple[FactorAttempt, FlowResult | None]:
        if factor is Factor.VOICE:
            attempt, result = await voice()
            await asyncio.to_thread(record_voiceprint_use, self.kit.db, result.account or "")
            return attempt, result
        step = self.kit.otp if factor is Factor.OTP else self.kit.kba
        if step is None or customer is None:
            return FactorAttempt(factor, FactorOutcome.UNAVAILABLE, detail="not configured for this account"), None
        return await step.run(io, customer), None

    @staticmethod
    def _result(account: str, decision: PolicyDecision | None, factors: list[FactorAttempt],
                voice: FlowResult | None, enrolled: bool) -> FlowResult:
        """The dialplan's result, with what each factor said and the rule that decided."""
        result = _outcome(decision, factors, voice, enrolled)
        said = [f"{f.factor.value} {f.outcome.value}" + (f" ({f.detail})" if f.detail else "") for f in factors]
        why = f"{decision.reason} (rule {decision.rule})" if decision else "no policy decision"
        passed = next((f for f in reversed(factors) if f.outcome is FactorOutcome.PASS), None)
        return FlowResult(
            result, account, voice.score if voice else None, "; ".join([*said, why]),
            method=passed.factor.value if result is Result.PASS and passed else (voice.method if voice else None),
            decision_s=voice.decision_s if voice else None, engine_s=voice.engine_s if voice else None)

    async def _finish(self, io: CallIO, account: str, caller_hash: str | None, factors: list[FactorAttempt],
                decision: PolicyDecision | None, started: float, result: FlowResult,
                locked_out: bool = False) -> FlowResult:
        try:
            await asyncio.to_thread(self.kit.audit.record, AuditEntry(
                flow="verify", result=result.result.value, call_id=io.call.info.call_id, identity=account,
                caller_hash=caller_hash, factors=tuple(factors), decision=decision, reason=result.reason,
                error=result.reason if result.result is Result.ERROR else None,
                latency_ms=round((time.monotonic() - started) * 1000.0, 1), locked_out=locked_out,
                policy_version=self.kit.policy.version))
        except Exception:  # noqa: BLE001 - an audit outage must not drop the caller; it is logged loudly
            log.exception("call %s: could not write the audit record", io.call.info.call_id)
        return result


def _outcome(decision: PolicyDecision | None, factors: list[FactorAttempt], voice: FlowResult | None,
             enrolled: bool) -> Result:
    if decision is None:
        return Result.ERROR
    if decision.action is Action.ACCEPT:
        return Result.PASS
    if decision.result:
        return Result(decision.result)
    if decision.action is Action.REJECT:
        return Result.FAIL
    # Routed to an agent, or no factor left: the dialplan's INCONCLUSIVE and
    # NOT_ENROLLED branches are where a person takes over; a voice that did not
    # match, with nothing else to try, stays a FAIL.
    if not factors and not enrolled:
        return Result.NOT_ENROLLED
    if voice is not None and voice.result is Result.FAIL and len(factors) == 1:
        return Result.FAIL
    if voice is not None and len(factors) == 1:
        return voice.result
    return Result.INCONCLUSIVE
