"""The vocabulary of the decision policy: factors, outcomes, actions, the context and the decision.

Everything here is a plain value: the flows build a :class:`DecisionContext`
from what they know, and :func:`ivr.policy.engine.decide` answers with a
:class:`PolicyDecision` that names the rule that fired.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Factor(str, enum.Enum):
    VOICE = "voice"
    OTP = "otp"  # one-time code by SMS / voice call / e-mail
    KBA = "kba"  # knowledge questions


class FactorOutcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # voice: grey score band or too little / poor speech
    NOT_ENROLLED = "not_enrolled"  # voice: no usable voiceprint (also: re-enrolment needed)
    REFUSED = "refused"  # the caller declined this factor (e.g. will not speak, opted out)
    UNAVAILABLE = "unavailable"  # could not be run: no destination, delivery failed, too few answers
    ERROR = "error"  # something broke (provider down, audio error)


class Action(str, enum.Enum):
    ACCEPT = "accept"
    STEP_UP = "step_up"  # ask for ``next_factor``
    REJECT = "reject"
    ROUTE_TO_AGENT = "route_to_agent"


# "none" in a rule's ``factor`` condition: no factor has been tried yet in this call.
NO_FACTOR = "none"


@dataclass(frozen=True)
class FactorAttempt:
    """One factor tried in this call. ``detail`` is for people: never codes, answers or numbers."""

    factor: Factor
    outcome: FactorOutcome
    score: float | None = None
    threshold: float | None = None
    latency_ms: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "factor": self.factor.value,
            "outcome": self.outcome.value,
            "score": self.score,
            "threshold": self.threshold,
            "latency_ms": self.latency_ms,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class IdentityState:
    """What is known about the claimed identity when deciding.

    ``available``: factors this identity can be asked for (voice: a usable
    voiceprint; otp: a destination for a configured channel; kba: enough
    answers on file). ``recent_failures``: failed factors inside the lockout
    window, from :class:`ivr.limits.Limits` (other calls included).
    """

    known: bool = True
    enrolled: bool = False
    opted_out: bool = False
    locked: bool = False
    recent_failures: int = 0
    available: frozenset[Factor] = frozenset({Factor.OTP, Factor.KBA})


@dataclass(frozen=True)
class DecisionContext:
    identity: IdentityState
    # Factors tried in this call, oldest first; empty before the first one.
    factors: tuple[FactorAttempt, ...] = field(default_factory=tuple)

    @property
    def last(self) -> FactorAttempt | None:
        return self.factors[-1] if self.factors else None

    def tried(self) -> set[Factor]:
        return {f.factor for f in self.factors}

    def passed(self) -> set[Factor]:
        return {f.factor for f in self.factors if f.outcome is FactorOutcome.PASS}

    def call_failures(self) -> int:
        return sum(1 for f in self.factors if f.outcome is FactorOutcome.FAIL)


@dataclass(frozen=True)
class PolicyDecision:
    action: Action
    next_factor: Factor | None
    rule: str  # the name of the rule that fired
    reason: str
    # Suggested VOICEAUTH_RESULT for the dialplan (e.g. "LOCKED"), when the rule names one.
    result: str | None = None
