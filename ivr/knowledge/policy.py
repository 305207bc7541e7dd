"""How many knowledge answers must be right: "N of M correct"."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from pydantic import BaseModel, Field


class KnowledgeOutcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    # Keep asking: neither enough right answers yet nor too many wrong ones.
    UNDECIDED = "undecided"


class NotEnoughQuestions(Exception):
    """The customer has fewer answers on file than the policy requires; use another factor."""

    code = "knowledge_not_enough_questions"


@dataclass(frozen=True)
class KnowledgePolicy:
    # Ask 3, pass on 2: one slip (a mistyped digit) is forgiven, while a
    # guesser needs two independent hits (~1 in 10**4 each for last-four
    # digits).
    ask: int = 3
    required: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.required <= self.ask:
            raise ValueError(f"knowledge policy needs 1 <= required ({self.required}) <= ask ({self.ask})")

    def choose(self, available: Sequence[str], rng: random.Random | None = None) -> list[str]:
        """Which questions to ask, at random so a caller cannot prepare for a fixed set."""
        if len(available) < self.required:
            raise NotEnoughQuestions(
                f"{len(available)} knowledge answers on file; the policy needs at least {self.required}"
            )
        chooser = rng or secrets.SystemRandom()
        return chooser.sample(list(available), min(self.ask, len(available)))

    def outcome(self, results: Sequence[bool], asked: int | None = None) -> KnowledgeOutcome:
        """Decide as early as possible; ``asked`` is how many questions were chosen (default ``ask``)."""
        total = self.ask if asked is None else asked
        correct = sum(1 for r in results if r)
        wrong = len(results) - correct
        if correct >= self.required:
            return KnowledgeOutcome.PASSED
        if wrong > total - self.required or len(results) >= total:
            return KnowledgeOutcome.FAILED
        return KnowledgeOutcome.UNDECIDED


class KbaSettings(BaseModel):
    """Knowledge questions as admins configure them (VOICEAUTH_KBA__ASK, VOICEAUTH_KBA__REQUIRED)."""

    enabled: bool = True
    ask: int = Field(3, ge=1, le=4)
    required: int = Field(2, ge=1, le=4)

    def policy(self) -> KnowledgePolicy:
        return KnowledgePolicy(ask=self.ask, required=self.required)
