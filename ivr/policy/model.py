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
    PIN = "pin"  # a PIN on file, keyed in (enrolment and opt-out lines)
    # The caller repeats a random digit string, checked against their own digit
    # templates: a recording of the victim does not say digits nobody knew.
    LIVENESS = "liveness"


class Risk(str, enum.Enum):
    """What the checks of a call's voice found (voiceprints.defences), beyond the match itself."""

    REPLAY = "replay"  # a recording of an earlier call of this account
    SYNTHETIC = "synthetic"  # sounds synthetic (when the synthetic-voice check is on)
    WATCHLIST = "watchlist"  # matches a known fraudster


# Factors that authenticate on their own (NIST SP 800-63B: a biometric, a
# one-time code to a contact on file, a memorised secret). Knowledge answers
# are not one of them: dates of birth and postal codes are often public, so
# they may only confirm a voice that scored in the grey band.
AUTHENTICATORS = frozenset({Factor.VOICE, Factor.OTP, Factor.PIN})


class Line(str, enum.Enum):
    """Which phone line the caller is on: each has its own rules in the policy."""

    VERIFY = "verify"
    ENROLL = "enroll"  # creates or replaces a voiceprint
    OPTOUT = "optout"  # deletes it


class FactorOutcome(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # voice: grey score band or too little / poor speech
    NOT_ENROLLED = "not_enrolled"  # voice: no usable voiceprint (also: re-enrolment needed)
    REFUSED = "refused"  # the caller declined this factor (e.g. will not speak, opted out)
    UNAVAILABLE = "unavailable"  # could not be run: no destination, delivery failed, too few answers
    ERROR = "error"  # something broke (provider down, audio error)
    HUNG_UP = "hung_up"  # the caller hung up while the factor was being tried


# Outcomes that are not a try by the caller, so they do not count toward a
# lockout: the factor could not be offered at all.
NOT_A_TRY = frozenset({FactorOutcome.PASS, FactorOutcome.UNAVAILABLE, FactorOutcome.NOT_ENROLLED})


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
    # Voice only: the speech was good and the score fell between the reject
    # and accept thresholds (an INCONCLUSIVE for a short or noisy answer is not).
    grey_band: bool = False
    # Wrong entries inside this attempt that each count toward the lockout
    # (PIN: 4 digits are guessable, so every wrong PIN counts, not the call).
    wrong_tries: int = 0
    # Voice: what the replay, synthetic-voice and watchlist checks found.
    risks: tuple[Risk, ...] = ()

    @property
    def counts_as_failure(self) -> bool:
        """Every try that did not pass counts toward the lockout: silence and hang-ups included."""
        return self.outcome not in NOT_A_TRY

    def to_dict(self) -> dict[str, object]:
        return {
            "factor": self.factor.value,
            "outcome": self.outcome.value,
            "score": self.score,
            "threshold": self.threshold,
            "latency_ms": self.latency_ms,
            "detail": self.detail,
            "grey_band": self.grey_band,
            "risks": [r.value for r in self.risks],
        }


@dataclass(frozen=True)
class IdentityState:
    """What is known about the claimed identity when deciding.

    ``available``: factors this call can ask for (see the flows: on the
    verify line voice is always asked, enrolled or not, so that an unknown
    account sounds the same as a known one). ``enrolled``: a voiceprint is on
    file. ``recent_failures``: failed factors inside the lockout window, from
    :class:`ivr.limits.Limits` (other calls included).
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
    line: Line = Line.VERIFY

    @property
    def last(self) -> FactorAttempt | None:
        return self.factors[-1] if self.factors else None

    def tried(self) -> set[Factor]:
        return {f.factor for f in self.factors}

    def passed(self) -> set[Factor]:
        return {f.factor for f in self.factors if f.outcome is FactorOutcome.PASS}

    def call_failures(self) -> int:
        return sum(1 for f in self.factors if f.outcome is FactorOutcome.FAIL)

    def voice_grey(self) -> bool:
        return any(f.factor is Factor.VOICE and f.grey_band for f in self.factors)

    def risks(self) -> set[Risk]:
        return {r for f in self.factors for r in f.risks}


@dataclass(frozen=True)
class PolicyDecision:
    action: Action
    next_factor: Factor | None
    rule: str  # the name of the rule that fired
    reason: str
    # Suggested VOICEAUTH_RESULT for the dialplan (e.g. "LOCKED"), when the rule names one.
    result: str | None = None
