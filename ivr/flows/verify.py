"""Verify flow: does the caller's voice match the account they claim?

Claim -> is there a voiceprint? -> prompt -> listen until enough net speech
or a deadline -> score -> PASS / FAIL / INCONCLUSIVE (+ NOT_ENROLLED, ERROR).
With a fallback kit, the decision policy then steps up to a one-time code or
knowledge questions where the voice is not enough (and LOCKED appears).
The dialplan gets the result as VOICEAUTH_* variables and routes on it.
"""

from __future__ import annotations

import logging
import time

from ivr.call import CallSession
from ivr.flows.base import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig
from ivr.flows.fallback import Authenticator
from ivr.policy.model import Factor, FactorAttempt, FactorOutcome
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import ReenrolmentNeededError, UnknownSpeakerError
from voiceprints.scoring.decision import Outcome

log = logging.getLogger("ivr.flows.verify")

OUTCOME_RESULT = {Outcome.ACCEPT: Result.PASS, Outcome.REJECT: Result.FAIL, Outcome.INCONCLUSIVE: Result.INCONCLUSIVE}
OUTCOME_FACTOR = {Outcome.ACCEPT: FactorOutcome.PASS, Outcome.REJECT: FactorOutcome.FAIL,
                  Outcome.INCONCLUSIVE: FactorOutcome.INCONCLUSIVE}


class VerifyFlow:
    name = "verify"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, fallback: Authenticator | None = None) -> None:
        self.engine = engine
        self.config = config
        self.fallback = fallback

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        account = await claimed_account(io, self.config)
        if account is None:
            return FlowResult(Result.INCONCLUSIVE, reason="no account number entered")
        why_not = await self._why_not_enrolled(account)
        if self.fallback is not None:
            return await self.fallback.authenticate(io, account, enrolled=why_not is None,
                                                    voice=lambda: self._voice(io, account))
        if why_not is not None:
            return FlowResult(Result.NOT_ENROLLED, account, reason=why_not)
        return (await self._voice(io, account))[1]

    async def _why_not_enrolled(self, account: str) -> str | None:
        try:
            await self.engine.avoiceprint_for(account)
        except UnknownSpeakerError:
            return f"account {account} has no voiceprint"
        except ReenrolmentNeededError as exc:
            return str(exc)
        return None

    async def _voice(self, io: CallIO, account: str) -> tuple[FactorAttempt, FlowResult]:
        """Prompt, listen, score: the voice factor, as an attempt for the policy and as a result."""
        await io.play("verify-speak")
        await io.drop_audio()
        need = self.engine.config.verification.min_speech_s + self.config.speech_margin_s
        speech = await io.listen(want_speech_s=need, deadline_s=self.config.verify_listen_deadline_s)
        heard = time.monotonic()
        if not speech.clip.duration_s:
            reason = "no audio received from the caller"
            return (FactorAttempt(Factor.VOICE, FactorOutcome.INCONCLUSIVE, detail=reason),
                    FlowResult(Result.INCONCLUSIVE, account, reason=reason, method="voice"))
        decision = await self.engine.averify(account, speech.clip)
        decision_s = time.monotonic() - heard
        reason = "; ".join(decision.reasons)
        attempt = FactorAttempt(Factor.VOICE, OUTCOME_FACTOR[decision.outcome], score=decision.score,
                                threshold=decision.accept_threshold, latency_ms=decision.latency_ms, detail=reason)
        return attempt, FlowResult(OUTCOME_RESULT[decision.outcome], account, decision.score, reason, method="voice",
                                   decision_s=decision_s, engine_s=(decision.latency_ms or 0.0) / 1000.0)
