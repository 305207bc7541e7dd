"""Every line's authentication goes through here: limits, one call per account, policy, audit, notices.

The verify, enrolment and opt-out lines differ in what they do once the
caller is authenticated; how the caller gets there is the same everywhere,
and it is here, written once:

* the call is admitted by the limits of the claimed identity, the caller's
  number (or the trunk's shared bucket for withheld numbers) and the trunk;
* it holds the identity's lease: one authentication in progress per account
  across every worker, so fifty parallel calls do not get fifty tries;
* the decision policy picks each factor; each factor counts as a failure
  from the moment it starts until it passes, so silence, a hang-up or a
  crash is never a free try;
* an accept re-checks the lock at that moment;
* every call leaves exactly one audit row (plus one per notice); an accept
  whose audit row cannot be written is not an accept;
* the customer is told on the contact on file when the account locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

from ivr.audit.log import AuditEntry, AuditLog
from ivr.call import CallerHungUp
from ivr.consent.registry import ConsentRegistry
from ivr.db.customers import CustomerDirectory, CustomerRecord
from ivr.db.engine import Database
from ivr.call import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.limits.errors import LimitsUnavailableError
from ivr.limits.service import CallOrigin, Limits, LimitState
from ivr.notices import CustomerNotifier, NoticeKind
from ivr.policy.engine import decide
from ivr.policy.model import (
    Action,
    DecisionContext,
    Factor,
    FactorAttempt,
    FactorOutcome,
    IdentityState,
    Line,
    PolicyDecision,
)
from ivr.policy.schema import Policy
from ivr.secrets import ServerSecrets
from voiceprints.redact import mask

log = logging.getLogger("ivr.flows.guard")

# A call tries each factor at most once; this bounds the loop whatever the policy says.
MAX_STEPS = 2 * len(Factor)
# Results that let the caller in or change their biometric data: never without an audit row.
ACCEPTING = frozenset({Result.PASS, Result.ENROLLED, Result.OPTED_OUT})

Step = Callable[[], Awaitable[FactorAttempt]]


@dataclass(frozen=True)
class Safeguards:
    """What every line shares: opened once per worker (ivr.service.flows)."""

    db: Database
    policy: Policy
    limits: Limits
    audit: AuditLog
    secrets: ServerSecrets
    customers: CustomerDirectory
    consent: ConsentRegistry
    notifier: CustomerNotifier | None = None


@dataclass
class Attempt:
    """One call's authentication of one claimed identity: what the line's flow works with."""

    guard: "Guard"
    io: CallIO
    line: Line
    account: str
    origin: CallOrigin
    customer: CustomerRecord | None
    admission: LimitState
    started: float = field(default_factory=time.monotonic)
    factors: list[FactorAttempt] = field(default_factory=list)
    decision: PolicyDecision | None = None
    locked_out: bool = False
    audited: bool = False

    @property
    def call_id(self) -> str:
        return self.io.call.info.call_id

    @property
    def caller_hash(self) -> str | None:
        return self.origin.caller

    async def identity_state(self, *, enrolled: bool, available: set[Factor]) -> IdentityState:
        consent = await asyncio.to_thread(self.guard.kit.consent.state, self.account)
        return IdentityState(
            known=self.customer is not None or enrolled, enrolled=enrolled, opted_out=consent.opted_out,
            locked=self.admission.locked, recent_failures=self.admission.recent_failures,
            available=frozenset(available))

    async def authenticate(self, identity: IdentityState, steps: Mapping[Factor, Step]) -> PolicyDecision:
        """Ask the policy, run the factor it names, count it, until it accepts, rejects or gives up."""
        kit = self.guard.kit
        for _ in range(MAX_STEPS):
            decision = decide(kit.policy, DecisionContext(identity, tuple(self.factors), self.line))
            if decision.action is not Action.STEP_UP or decision.next_factor is None:
                break
            attempt, limit = await self._try(decision.next_factor, steps[decision.next_factor])
            self.factors.append(attempt)
            identity = IdentityState(
                known=identity.known, enrolled=identity.enrolled, opted_out=identity.opted_out,
                locked=limit.locked, recent_failures=limit.recent_failures, available=identity.available)
        else:
            decision = decide(kit.policy, DecisionContext(identity, tuple(self.factors), self.line))
        if decision.action is Action.ACCEPT:
            passed = next((f.factor.value for f in reversed(self.factors) if f.outcome is FactorOutcome.PASS), None)
            # Another call may have locked the account since this one was admitted.
            state = await asyncio.to_thread(kit.limits.accept, self.account, self.origin, passed)
            if state.locked:
                decision = PolicyDecision(Action.REJECT, None, "locked-at-accept",
                                          f"the account was locked during this call: {state.reason}", "LOCKED")
        self.decision = decision
        return decision

    async def _try(self, factor: Factor, step: Step) -> tuple[FactorAttempt, LimitState]:
        limits = self.guard.kit.limits
        state, ticket = await asyncio.to_thread(limits.start_factor, self.account, self.origin, factor.value)
        self._note(state)
        if state.locked:
            return FactorAttempt(factor, FactorOutcome.REFUSED, detail="locked before the factor started"), state
        try:
            attempt = await step()
        except CallerHungUp:
            self.factors.append(FactorAttempt(factor, FactorOutcome.HUNG_UP, detail="the caller hung up"))
            self._note(await asyncio.to_thread(limits.finish_factor, ticket, passed=False))
            raise
        state = await asyncio.to_thread(limits.finish_factor, ticket, passed=not attempt.counts_as_failure,
                                        wrong_tries=attempt.wrong_tries)
        self._note(state)
        return attempt, state

    def _note(self, state: LimitState) -> None:
        self.locked_out = self.locked_out or state.newly_locked

    async def commit(self, result: FlowResult) -> FlowResult:
        """Write the call's audit row now; an accepting result whose row cannot be written becomes ERROR.

        Flows that change something (enrolment, opt-out) commit before the
        change, so nothing happens that the audit log does not show.
        """
        try:
            await asyncio.to_thread(self.guard.kit.audit.record, self._entry(result.result.value, result))
        except Exception:  # noqa: BLE001 - failing closed is the point
            log.exception("call %s: the audit record could not be written", self.call_id)
            if result.result in ACCEPTING:
                return FlowResult(Result.ERROR, result.account,
                                  reason="the audit log is unavailable; not accepting without an audit record")
        else:
            self.audited = True
        return result

    async def notify(self, kind: NoticeKind) -> None:
        notifier = self.guard.kit.notifier
        if notifier is not None:
            await notifier.notify(self.customer, kind, call_id=self.call_id, caller_hash=self.caller_hash)

    def _entry(self, result: str, outcome: FlowResult | None) -> AuditEntry:
        return AuditEntry(
            flow=self.line.value, result=result, call_id=self.call_id, identity=self.account,
            caller_hash=self.caller_hash, factors=tuple(self.factors), decision=self.decision,
            reason=outcome.reason if outcome else "the caller hung up",
            error=outcome.reason if outcome and outcome.result is Result.ERROR else None,
            latency_ms=round((time.monotonic() - self.started) * 1000.0, 1), locked_out=self.locked_out,
            policy_version=self.guard.kit.policy.version)


Body = Callable[[Attempt], Awaitable[FlowResult]]


class Guard:
    def __init__(self, kit: Safeguards) -> None:
        self.kit = kit

    async def run(self, io: CallIO, line: Line, account: str, body: Body) -> FlowResult:
        """Admit the call, hold the account's lease, run ``body``, audit once, release, notify a lock."""
        kit = self.kit
        info = io.call.info
        origin = kit.secrets.call_origin(info.caller_id, info.trunk)
        try:
            customer = await asyncio.to_thread(kit.customers.get, account)
            admission = await asyncio.to_thread(kit.limits.begin_attempt, account, origin)
        except LimitsUnavailableError as exc:
            return await self._unguarded(io, line, account, origin, f"attempt limits unavailable: {exc}")
        attempt = Attempt(self, io, line, account, origin, customer, admission)
        attempt.locked_out = admission.newly_locked and admission.scope == "identity"
        if admission.locked:
            result = FlowResult(Result.LOCKED, account, reason=admission.reason)
            attempt.decision = PolicyDecision(Action.REJECT, None, "locked", admission.reason, "LOCKED")
            return await self._end(attempt, result)
        if not await asyncio.to_thread(kit.limits.acquire_lease, account, attempt.call_id):
            log.warning("call %s: account %s is already being authenticated in another call; refused",
                        attempt.call_id, mask(account))
            busy = Result.INCONCLUSIVE if line is Line.VERIFY else Result.FAILED
            return await self._end(attempt, FlowResult(
                busy, account, reason="another call is authenticating this account right now"))
        try:
            result = await body(attempt)
        except CallerHungUp:
            await self._hung_up(attempt)
            raise
        except LimitsUnavailableError as exc:
            result = FlowResult(Result.ERROR, account, reason=f"attempt limits unavailable: {exc}")
        finally:
            await self._release(attempt)
        return await self._end(attempt, result)

    async def unclaimed(self, io: CallIO, line: Line, result: FlowResult) -> FlowResult:
        """No account was claimed: the call still counts against the caller's limits and is audited."""
        info = io.call.info
        origin = self.kit.secrets.call_origin(info.caller_id, info.trunk)
        try:
            await asyncio.to_thread(self.kit.limits.begin_attempt, None, origin)
            await asyncio.to_thread(self.kit.audit.record, AuditEntry(
                flow=line.value, result=result.result.value, call_id=info.call_id, caller_hash=origin.caller,
                reason=result.reason, policy_version=self.kit.policy.version))
        except Exception:  # noqa: BLE001 - nothing was claimed, nothing is accepted
            log.exception("call %s: could not count or audit a call without a claimed account", info.call_id)
        return result

    async def _end(self, attempt: Attempt, result: FlowResult) -> FlowResult:
        if not attempt.audited:
            result = await attempt.commit(result)
        if attempt.locked_out:
            await attempt.notify(NoticeKind.ACCOUNT_LOCKED)
        return result

    async def _hung_up(self, attempt: Attempt) -> None:
        try:
            await asyncio.to_thread(self.kit.audit.record, attempt._entry("HUNGUP", None))
        except Exception:  # noqa: BLE001 - nobody is left to tell; the log says it
            log.exception("call %s: could not audit the hang-up", attempt.call_id)
        if attempt.locked_out:
            await attempt.notify(NoticeKind.ACCOUNT_LOCKED)

    async def _release(self, attempt: Attempt) -> None:
        try:
            await asyncio.to_thread(self.kit.limits.release_lease, attempt.account, attempt.call_id)
        except LimitsUnavailableError:
            log.warning("call %s: lease not released (database unavailable); it expires by itself",
                        attempt.call_id)

    async def _unguarded(self, io: CallIO, line: Line, account: str, origin: CallOrigin, reason: str) -> FlowResult:
        """The limits cannot be checked: refuse (fail closed), and try to leave an audit row anyway."""
        result = FlowResult(Result.ERROR, account, reason=reason)
        try:
            await asyncio.to_thread(self.kit.audit.record, AuditEntry(
                flow=line.value, result=result.result.value, call_id=io.call.info.call_id, identity=account,
                caller_hash=origin.caller, reason=reason, error=reason, policy_version=self.kit.policy.version))
        except Exception:  # noqa: BLE001 - the same database is probably down
            log.exception("call %s: could not audit the refused attempt", io.call.info.call_id)
        return result
