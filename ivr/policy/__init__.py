"""The decision policy: after each factor, accept, step up, reject or hand over to an agent.

Usage from a flow::

    policy = policy_from_settings(settings.policy)       # once, at start-up
    decision = decide(policy, DecisionContext(identity, factors))
    decision.action, decision.next_factor, decision.rule
"""

from ivr.policy.config import PolicySettings
from ivr.policy.engine import decide, matches
from ivr.policy.loader import DEFAULT_POLICY_FILE, load_policy, parse_policy, policy_from_settings
from ivr.policy.model import (
    Action,
    DecisionContext,
    Factor,
    FactorAttempt,
    FactorOutcome,
    IdentityState,
    PolicyDecision,
)
from ivr.policy.schema import Policy, PolicyError, Rule, When

__all__ = [
    "DEFAULT_POLICY_FILE",
    "Action",
    "DecisionContext",
    "Factor",
    "FactorAttempt",
    "FactorOutcome",
    "IdentityState",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicySettings",
    "Rule",
    "When",
    "decide",
    "load_policy",
    "matches",
    "parse_policy",
    "policy_from_settings",
]
