"""The liveness challenge as a call step: "please repeat these digits", checked in the caller's own voice.

A recording of the customer (voicemail, an earlier call) says what it said
then, not the random digits asked now; the digits are matched against the
caller's own digit templates recorded on the enrolment line (any language),
and the answer's voice against the voiceprint and against the voice heard
earlier in the call, so an attacker cannot play the recording and then read
the digits himself (voiceprints.liveness).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ivr.flows.callio import CallIO
from ivr.flows.config import FlowConfig
from ivr.policy.model import Factor, FactorAttempt, FactorOutcome
from voiceprints.defences import AttackDefences


class LivenessStep:
    def __init__(self, defences: AttackDefences, config: FlowConfig) -> None:
        self.defences = defences
        self.config = config

    async def available(self, account: str) -> bool:
        # Database reads (here and the challenge's draw) do not queue behind model work.
        return bool(await asyncio.to_thread(self.defences.has_templates, account))

    async def run(self, io: CallIO, account: str, voice_sample: np.ndarray | None = None) -> FactorAttempt:
        """``voice_sample``: the engine's embedding of the caller's voice answer earlier in this call."""
        started = time.monotonic()
        asked = await asyncio.to_thread(self.defences.challenge, account)
        await io.play("liveness-intro")
        for digit in asked:
            await io.play(f"digit-{digit}")
        await io.play("liveness-go")
        await io.drop_audio()
        config = self.config
        # A digit string takes 2-4 s; callers pause between digits, so the answer ends only
        # after a longer pause once about a third of a second per digit has been heard.
        speech = await io.listen(want_speech_s=config.liveness_answer_max_s, deadline_s=config.liveness_deadline_s,
                                 end_silence_s=2 * config.end_of_utterance_silence_s, min_speech_s=0.3 * len(asked),
                                 max_audio_s=config.liveness_answer_max_s)

        def attempt(outcome: FactorOutcome, detail: str) -> FactorAttempt:
            return FactorAttempt(Factor.LIVENESS, outcome, latency_ms=round((time.monotonic() - started) * 1000, 1),
                                 detail=detail)

        if not speech.net_speech_s:
            return attempt(FactorOutcome.INCONCLUSIVE, f"no answer to the {len(asked)}-digit challenge")
        result = await self.defences.run(self.defences.check_challenge, account, speech.clip, asked, voice_sample)
        if result is None:
            return attempt(FactorOutcome.UNAVAILABLE, "no digit templates on file")
        return attempt(FactorOutcome.PASS if result.passed else FactorOutcome.FAIL, result.reason)
