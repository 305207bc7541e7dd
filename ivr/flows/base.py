"""What every flow returns, and how it becomes dialplan variables."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Awaitable, Callable

from ivr.call import CallSession


class Result(str, enum.Enum):
    # verify flow
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_ENROLLED = "NOT_ENROLLED"
    LOCKED = "LOCKED"
    # enrolment line
    ENROLLED = "ENROLLED"
    DECLINED = "DECLINED"  # the caller did not give consent
    FAILED = "FAILED"  # second factor failed, or the audio never became good enough
    # opt-out line
    OPTED_OUT = "OPTED_OUT"
    # both
    ERROR = "ERROR"


@dataclass(frozen=True)
class FlowResult:
    result: Result
    account: str | None = None
    score: float | None = None
    reason: str = ""
    method: str | None = None  # which factor decided: "voice", later "otp", "kba"
    # Seconds from "enough speech is in" to the decision, and the engine's own
    # time for it; for metrics, never shown to the dialplan.
    decision_s: float | None = None
    engine_s: float | None = None
    # Verify line: the digit challenge (PASS, FAIL, or SKIPPED when not asked)
    # and what the checks of the voice found (replay, synthetic, watchlist).
    liveness: str = ""
    risks: tuple[str, ...] = ()

    def variables(self) -> dict[str, str]:
        """The VOICEAUTH_* channel variables the dialplan routes on."""
        return {
            "VOICEAUTH_RESULT": self.result.value,
            "VOICEAUTH_SCORE": "" if self.score is None else f"{self.score:.3f}",
            "VOICEAUTH_REASON": _dialplan_safe(self.reason),
            "VOICEAUTH_SPEAKER": self.account or "",
            "VOICEAUTH_ACCOUNT": self.account or "",
            "VOICEAUTH_METHOD": self.method or "",
            "VOICEAUTH_LIVENESS": self.liveness,
            "VOICEAUTH_RISK": ",".join(r.upper() for r in self.risks) or "NONE",
        }


def _dialplan_safe(text: str) -> str:
    """Channel variables travel in AMI/AGI lines: no newlines, no quotes, bounded length."""
    return " ".join(text.replace('"', "'").split())[:200]


Flow = Callable[[CallSession], Awaitable[FlowResult]]
