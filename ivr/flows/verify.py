"""Verify flow: does the caller's voice match the account they claim?

Claim -> is there a voiceprint? -> prompt -> listen until enough net speech
or a deadline -> score -> PASS / FAIL / INCONCLUSIVE (+ NOT_ENROLLED, ERROR).
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
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import ReenrolmentNeededError, UnknownSpeakerError
from voiceprints.scoring.decision import Outcome

log = logging.getLogger("ivr.flows.verify")

OUTCOME_RESULT = {Outcome.ACCEPT: Result.PASS, Outcome.REJECT: Result.FAIL, Outcome.INCONCLUSIVE: Result.INCONCLUSIVE}


class VerifyFlow:
    name = "verify"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig) -> None:
        self.engine = engine
        self.config = config

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        account = await claimed_account(io, self.config)
        if account is None:
            return FlowResult(Result.INCONCLUSIVE, reason="no account number entered")
        try:
            await self.engine.avoiceprint_for(account)
        except UnknownSpeakerError:
            return FlowResult(Result.NOT_ENROLLED, account, reason=f"account {account} has no voiceprint")
        except ReenrolmentNeededError as exc:
            return FlowResult(Result.NOT_ENROLLED, account, reason=str(exc))
        await io.play("verify-speak")
        await io.drop_audio()
        need = self.engine.config.verification.min_speech_s + self.config.speech_margin_s
        speech = await io.listen(want_speech_s=need, deadline_s=self.config.verify_listen_deadline_s)
        heard = time.monotonic()
        decision = await self.engine.averify(account, speech.clip) if speech.clip.duration_s else None
        decision_s = time.monotonic() - heard
        if decision is None:
            return FlowResult(Result.INCONCLUSIVE, account, reason="no audio received from the caller",
                              method="voice")
        reason = "; ".join(decision.reasons) or (
            f"score {decision.score:.3f} vs accept {decision.accept_threshold:.3f}" if decision.score is not None else "")
        return FlowResult(OUTCOME_RESULT[decision.outcome], account, decision.score, reason, method="voice",
                          decision_s=decision_s, engine_s=(decision.latency_ms or 0.0) / 1000.0)
