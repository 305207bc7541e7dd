"""``decide``: the one pure function that turns what happened so far in a call into the next step."""

from __future__ import annotations

from ivr.policy.model import NO_FACTOR, Action, DecisionContext, Factor, PolicyDecision
from ivr.policy.schema import Policy, PolicyError, When


def matches(when: When, context: DecisionContext) -> bool:
    last = context.last
    identity = context.identity
    if when.line is not None and context.line not in when.line:
        return False
    if when.voice_grey is not None and context.voice_grey() != when.voice_grey:
        return False
    if when.risk is not None and not when.risk & context.risks():
        return False
    if when.factor is not None and (last.factor.value if last else NO_FACTOR) not in when.factor:
        return False
    if when.outcome is not None and (last is None or last.outcome not in when.outcome):
        return False
    if when.score_at_least is not None and (
        last is None or last.score is None or last.score < when.score_at_least
    ):
        return False
    if when.score_below is not None and (
        last is None or last.score is None or last.score >= when.score_below
    ):
        return False
    for flag in ("known", "enrolled", "opted_out", "locked"):
        wanted = getattr(when, flag)
        if wanted is not None and getattr(identity, flag) != wanted:
            return False
    if when.recent_failures_at_least is not None and identity.recent_failures < when.recent_failures_at_least:
        return False
    if when.call_failures_at_least is not None and context.call_failures() < when.call_failures_at_least:
        return False
    if when.tried is not None and not when.tried <= context.tried():
        return False
    if when.passed is not None and not when.passed <= context.passed():
        return False
    if when.available is not None and not when.available <= identity.available:
        return False
    return True


def _next_factor(candidates: tuple[Factor, ...], context: DecisionContext) -> Factor | None:
    """The first candidate this call has not tried and the identity can be asked for.

    Never re-asking a tried factor is what bounds every call to at most one
    round of each factor, whatever the rules say.
    """
    tried = context.tried()
    return next((f for f in candidates if f not in tried and f in context.identity.available), None)


def decide(policy: Policy, context: DecisionContext) -> PolicyDecision:
    for rule in policy.rules:
        if not matches(rule.when, context):
            continue
        reason = rule.reason or f"rule {rule.name}"
        if rule.action is Action.STEP_UP:
            factor = _next_factor(rule.next, context)
            if factor is None:
                continue  # nothing left to ask: let a later rule decide
            return PolicyDecision(Action.STEP_UP, factor, rule.name, reason, rule.result)
        if rule.action is Action.ACCEPT:
            passed = context.passed()
            if not passed:
                continue  # defence in depth; the schema already refuses such rules
            if not policy.voice_alone_accepts and passed <= {Factor.VOICE}:
                factor = _next_factor(policy.second_factors, context)
                if factor is None:
                    continue
                return PolicyDecision(
                    Action.STEP_UP,
                    factor,
                    rule.name,
                    f"{reason}; voice alone is not enough under this policy, confirming with {factor.value}",
                )
        return PolicyDecision(rule.action, None, rule.name, reason, rule.result)
    # The schema guarantees a default rule that always fires.
    raise PolicyError("the policy gave no decision; it has no default rule")
