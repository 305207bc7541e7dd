"""The policy document: ordered, named rules, checked for mistakes when it is loaded.

A rule fires when every condition in its ``when`` holds (an absent condition
holds always); the first rule that fires decides. Mistakes an admin can make
in the file are refused with a message naming the rule: unknown factor or
outcome names, rules that can never fire, an ``accept`` that does not
require a passed factor, and no default rule at the end.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.policy.model import AUTHENTICATORS, NO_FACTOR, Action, Factor, FactorOutcome, Line, Risk

FactorOrNone = Literal["none", "voice", "otp", "kba", "pin", "liveness"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,47}$")
ALL_FACTOR_STATES = frozenset({NO_FACTOR, *(f.value for f in Factor)})
# What a recording of the customer cannot do: what an accept on the verify line must rest on besides the voice.
_BEYOND_A_RECORDING = frozenset({Factor.LIVENESS, Factor.OTP, Factor.PIN})
ALL_OUTCOMES = frozenset(FactorOutcome)


class PolicyError(Exception):
    """The policy file cannot be used; the message names the file and the rule."""

    code = "policy_invalid"


def _as_list(value: Any) -> Any:
    # "factor: voice" reads better in YAML than "factor: [voice]"; accept both.
    return [value] if isinstance(value, (str, FactorOutcome, Factor)) else value


class When(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The phone line: verify, enroll (creates or replaces a voiceprint), optout (deletes it).
    line: frozenset[Line] | None = None
    # The factor tried last in this call ("none": nothing tried yet).
    factor: frozenset[FactorOrNone] | None = None
    # Its outcome.
    outcome: frozenset[FactorOutcome] | None = None
    # Its score band (voice): score_at_least <= score < score_below.
    score_at_least: float | None = None
    score_below: float | None = None
    # The claimed identity.
    known: bool | None = None
    enrolled: bool | None = None
    opted_out: bool | None = None
    locked: bool | None = None
    # Attempt history: failed factors inside the lockout window (all calls), and in this call.
    recent_failures_at_least: int | None = Field(default=None, ge=1)
    call_failures_at_least: int | None = Field(default=None, ge=1)
    # Factors that were tried / passed in this call, or that this identity can be asked for.
    tried: frozenset[Factor] | None = None
    passed: frozenset[Factor] | None = None
    available: frozenset[Factor] | None = None
    # A voice tried in this call scored in the grey band (good speech, between the thresholds).
    voice_grey: bool | None = None
    # Any of these was found in this call's voice: replay, synthetic, watchlist.
    risk: frozenset[Risk] | None = None

    _lists = field_validator("line", "factor", "outcome", "tried", "passed", "available", "risk",
                             mode="before")(_as_list)

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def contradiction(self) -> str | None:
        """Why no call can ever satisfy these conditions, or None."""
        if (
            self.score_at_least is not None
            and self.score_below is not None
            and self.score_at_least >= self.score_below
        ):
            return f"score_at_least {self.score_at_least} is not below score_below {self.score_below}"
        if self.factor == frozenset({NO_FACTOR}):
            if self.outcome is not None or self.score_at_least is not None or self.score_below is not None:
                return "factor 'none' (nothing tried yet) has no outcome or score to test"
            if self.tried or self.passed or self.call_failures_at_least or self.voice_grey:
                return "factor 'none' (nothing tried yet) contradicts tried/passed/call_failures_at_least/voice_grey"
        for name in ("line", "factor", "outcome", "tried", "passed", "available", "risk"):
            if getattr(self, name) == frozenset():
                return f"{name} is an empty list"
        return None

    def covers(self, other: When) -> bool:
        """True if every call ``other`` matches is matched by this one too (conservative: may say False)."""

        def subset(mine: frozenset[Any] | None, theirs: frozenset[Any] | None) -> bool:
            return mine is None or (theirs is not None and theirs <= mine)

        def superset(mine: frozenset[Any] | None, theirs: frozenset[Any] | None) -> bool:
            return mine is None or (theirs is not None and theirs >= mine)

        def at_least(mine: float | None, theirs: float | None) -> bool:
            return mine is None or (theirs is not None and theirs >= mine)

        def below(mine: float | None, theirs: float | None) -> bool:
            return mine is None or (theirs is not None and theirs <= mine)

        tried_by_other = (other.tried or frozenset()) | (other.passed or frozenset())
        return (
            subset(self.line, other.line)
            and subset(self.factor, other.factor)
            and subset(self.risk, other.risk)
            and subset(self.outcome, other.outcome)
            and at_least(self.score_at_least, other.score_at_least)
            and below(self.score_below, other.score_below)
            and all(
                getattr(self, b) is None or getattr(self, b) == getattr(other, b)
                for b in ("known", "enrolled", "opted_out", "locked", "voice_grey")
            )
            and at_least(self.recent_failures_at_least, other.recent_failures_at_least)
            and at_least(self.call_failures_at_least, other.call_failures_at_least)
            and (self.tried is None or self.tried <= tried_by_other)
            and superset(self.passed, other.passed)
            and superset(self.available, other.available)
        )


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    when: When = When()
    action: Action
    # step_up only: the factors to ask for, in order of preference; the first
    # one not yet tried in this call and available to the identity is asked.
    # When none is left the rule does not fire and the next rules are tried.
    next: tuple[Factor, ...] = ()
    reason: str = ""
    # Suggested VOICEAUTH_RESULT, e.g. LOCKED.
    result: str | None = Field(None, pattern=r"^[A-Z_]{1,16}$")

    _next_list = field_validator("next", mode="before")(_as_list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("rule names are 1-48 lower-case letters, digits, '-', '_' or '.'")
        return value

    @model_validator(mode="after")
    def _action_fits(self) -> "Rule":
        if self.action is Action.STEP_UP and not self.next:
            raise ValueError("a step_up rule needs 'next': the factor(s) to ask for")
        if self.action is not Action.STEP_UP and self.next:
            raise ValueError(f"'next' only makes sense for step_up, not {self.action.value}")
        if self.action is Action.ACCEPT:
            passes_only = self.when.outcome is not None and self.when.outcome <= {FactorOutcome.PASS}
            if not (passes_only or self.when.passed):
                raise ValueError(
                    "an accept rule must require a passed factor (outcome: pass, or passed: [...]); "
                    "otherwise a failed or missing factor could be accepted"
                )
        return self

    def accepts_knowledge_alone(self) -> bool:
        """Could this rule accept a caller whose only passed factor is knowledge answers?

        Conservative: True unless the conditions require a passed
        authenticator (voice, code, PIN) or a voice in the grey band. NIST SP
        800-63B does not count knowledge answers as an authenticator.
        """
        when = self.when
        if self.action is not Action.ACCEPT or when.voice_grey:
            return False
        if when.passed and when.passed & AUTHENTICATORS:
            return False
        last_is_not_knowledge = when.factor is not None and Factor.KBA.value not in when.factor
        passes_only = when.outcome is not None and when.outcome <= {FactorOutcome.PASS}
        return not (last_is_not_knowledge and passes_only)

    def accepts_without_liveness(self) -> bool:
        """Could this verify-line rule accept a voice (or knowledge answers) without a passed liveness challenge?

        A recording of the customer passes the voice; only the challenge, a one-time code or a PIN is
        something it cannot do. Conservative: True unless the conditions require one of those passed.
        """
        when = self.when
        if self.action is not Action.ACCEPT or (when.line is not None and Line.VERIFY not in when.line):
            return False
        if when.passed and when.passed & _BEYOND_A_RECORDING:
            return False
        last_beyond = when.factor is not None and when.factor <= {f.value for f in _BEYOND_A_RECORDING}
        return not (last_beyond and when.outcome is not None and when.outcome <= {FactorOutcome.PASS})

    @property
    def always_fires(self) -> bool:
        """A matching rule of any action but step_up decides; step_up may find no factor left."""
        return self.action is not Action.STEP_UP


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(..., min_length=1, max_length=32)
    # False: an accept needs a passed factor other than voice (NIST SP 800-63B
    # treats biometrics as a second factor, never the only one); a voice pass
    # alone then steps up to ``second_factors``.
    voice_alone_accepts: bool = True
    second_factors: tuple[Factor, ...] = (Factor.OTP, Factor.KBA)
    rules: tuple[Rule, ...] = Field(..., min_length=1)

    _second_list = field_validator("second_factors", mode="before")(_as_list)

    @model_validator(mode="after")
    def _rules_make_sense(self) -> Policy:
        problems: list[str] = []
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                problems.append(f"rule {rule.name!r} appears more than once; rule names must be unique")
            seen.add(rule.name)
            if (why := rule.when.contradiction()) is not None:
                problems.append(f"rule {rule.name!r} can never fire: {why}")
        if Factor.VOICE in self.second_factors:
            problems.append("second_factors cannot include voice")
        for j, later in enumerate(self.rules):
            for earlier in self.rules[:j]:
                if earlier.always_fires and earlier.when.covers(later.when):
                    problems.append(
                        f"rule {later.name!r} can never fire: the earlier rule {earlier.name!r} "
                        f"({earlier.action.value}) matches every call it matches"
                    )
                    break
        last = self.rules[-1]
        if not (last.when.is_empty() and last.always_fires):
            problems.append(
                "no default rule: the last rule must have no 'when' conditions and an action other than "
                "step_up (reject or route_to_agent), so that every call gets a decision"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def warnings(self) -> list[str]:
        """What is allowed but weakens security; ``ivr policy check --strict`` refuses a policy with any."""
        return [
            f"rule {rule.name!r} accepts on knowledge answers alone: they are not an authenticator "
            "(NIST SP 800-63B); require a passed voice, code or PIN (passed: [...]), or voice_grey: true"
            for rule in self.rules
            if rule.accepts_knowledge_alone()
        ] + [
            f"rule {rule.name!r} accepts without a passed liveness challenge, code or PIN: a recording of the "
            "customer gets in where it fires (docs/security.md); require passed: [liveness], or route_to_agent"
            for rule in self.rules
            if rule.accepts_without_liveness()
        ]
