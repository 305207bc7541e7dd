"""The voice factor as a call step: prompt, listen, score against the voiceprint on file, check the voice.

The same step serves every line: verify, and on the enrolment and opt-out
lines, "prove it is still you" before a voiceprint on file is replaced or
deleted. When there is nothing to score against (no voiceprint, opted out),
the caller still hears the same prompt and the engine still spends what a
real score costs, so the call sounds and times the same as for an enrolled
account: nobody learns who is enrolled by listening.

With the defences configured (voiceprints.defences), the voice is also
checked for a replay of the account's earlier calls, a synthetic voice, and
a known fraudster; what they find travels with the attempt as ``risks`` for
the policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ivr.flows.callio import CallIO, Speech
from ivr.flows.config import FlowConfig
from ivr.policy.model import Factor, FactorAttempt, FactorOutcome, Risk
from voiceprints.defences import AttackDefences, RiskReport
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import EngineBusyError
from voiceprints.scoring.decision import Outcome

OUTCOME_FACTOR = {Outcome.ACCEPT: FactorOutcome.PASS, Outcome.REJECT: FactorOutcome.FAIL,
                  Outcome.INCONCLUSIVE: FactorOutcome.INCONCLUSIVE}


@dataclass(frozen=True)
class VoiceHeard:
    """The voice attempt for the policy, plus what the result and the metrics show."""

    attempt: FactorAttempt
    score: float | None = None
    # Seconds from "enough speech is in" to the decision, and the engine's own time for it.
    decision_s: float | None = None
    engine_s: float | None = None
    # The engine's embedding of the caller's speech: a liveness answer later in the call must be the same voice.
    embedding: np.ndarray | None = None


class VoiceStep:
    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, defences: AttackDefences | None = None) -> None:
        self.engine = engine
        self.config = config
        self.defences = defences

    async def run(self, io: CallIO, account: str, *, unscored: FactorOutcome | None = None,
                  why_unscored: str = "") -> VoiceHeard:
        """``unscored``: the outcome to report without scoring (NOT_ENROLLED, REFUSED), after the same wait."""
        await io.play("verify-speak")
        await io.drop_audio()
        need = self.engine.config.verification.min_speech_s + self.config.speech_margin_s
        speech = await io.listen(want_speech_s=need, deadline_s=self.config.verify_listen_deadline_s)
        heard = time.monotonic()
        if not speech.clip.duration_s:
            return VoiceHeard(FactorAttempt(Factor.VOICE, FactorOutcome.INCONCLUSIVE,
                                            detail="no audio received from the caller"))
        try:
            return await self._score(io, account, speech, heard, unscored, why_unscored)
        except EngineBusyError as exc:
            # Back-pressure: the policy steps up to another factor rather than let this caller wait.
            # An account with nothing to score keeps its unscored outcome.
            return VoiceHeard(FactorAttempt(Factor.VOICE, unscored or FactorOutcome.INCONCLUSIVE,
                                            detail="; ".join(filter(None, [why_unscored, f"busy: {exc}"]))))

    async def _score(self, io: CallIO, account: str, speech: Speech, heard: float,
                     unscored: FactorOutcome | None, why_unscored: str) -> VoiceHeard:
        if unscored is FactorOutcome.REFUSED:
            # Opted-out callers' speech is not embedded: the decoy is the same length of noise.
            await self.engine.aspend_like_verify(speech.clip, speech.analysis)
            return VoiceHeard(FactorAttempt(Factor.VOICE, unscored, detail=why_unscored))
        if unscored is not None:
            # No voiceprint to score: the same embedding work, screened against the watchlist only.
            embedding = await self.engine.run(self.engine.embed_speech, speech.clip, speech.analysis, shed=True)
            risks = await self._screen(None, speech.clip, embedding, io.call.info.call_id)
            detail = "; ".join(filter(None, [why_unscored, risks.reason]))
            return VoiceHeard(FactorAttempt(Factor.VOICE, unscored, detail=detail, risks=_risks(risks)))
        decision = await self.engine.averify(account, speech.clip, speech.analysis)
        risks = await self._screen(account, speech.clip, decision.embedding, io.call.info.call_id)
        attempt = FactorAttempt(Factor.VOICE, OUTCOME_FACTOR[decision.outcome], score=decision.score,
                                threshold=decision.accept_threshold, latency_ms=decision.latency_ms,
                                detail="; ".join([*decision.reasons, *risks.details]), grey_band=decision.grey_band,
                                risks=_risks(risks))
        return VoiceHeard(attempt, decision.score, time.monotonic() - heard, (decision.latency_ms or 0.0) / 1000.0,
                          decision.embedding)

    async def _screen(self, account: str | None, clip, embedding, call_id: str) -> RiskReport:  # type: ignore
        if self.defences is None:
            return RiskReport(())
        return await self.defences.run(self.defences.screen_call, account, clip, embedding, call_id)


def _risks(report: RiskReport) -> tuple[Risk, ...]:
    return tuple(Risk(r) for r in report.risks)
