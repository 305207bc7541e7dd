"""Enrolment line: identify, prove it with a second factor, consent, speak, store.

Nothing is written until the very end: a caller who hangs up part-way leaves
no partial voiceprint (the engine writes one record in one transaction).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.call import CallSession
from ivr.consent.registry import ConsentRegistry
from ivr.flows.base import FlowResult, Result, SecondFactor
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.quality import QualityProblem, QualityReport
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import EnrolmentError

log = logging.getLogger("ivr.flows.enroll")

# What to tell a caller whose utterance was not good enough, by the first problem found.
ADVICE = {
    QualityProblem.SILENT: "enroll-no-speech",
    QualityProblem.TOO_SHORT: "enroll-speak-longer",
    QualityProblem.TOO_QUIET: "enroll-speak-louder",
    QualityProblem.TOO_NOISY: "enroll-quieter-place",
    QualityProblem.CLIPPED: "enroll-phone-away",
}
CONSENT_KEY, DECLINE_KEY = "1", "2"
CONSENT_CHANNEL = "ivr-enroll"


class EnrollFlow:
    name = "enroll"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, second_factor: SecondFactor,
                 consent: ConsentRegistry | None = None) -> None:
        self.engine = engine
        self.config = config
        self.second_factor = second_factor
        self.consent = consent

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        await io.play("enroll-welcome")
        account = await claimed_account(io, self.config)
        if account is None:
            return FlowResult(Result.FAILED, reason="no account number entered")
        if not await self.second_factor.verify(io, account):
            await io.play("enroll-factor-failed")
            return FlowResult(Result.FAILED, account, reason=f"{self.second_factor.name} not confirmed")
        if not await self._consent(io):
            await io.play("enroll-declined")
            return FlowResult(Result.DECLINED, account, reason="caller did not consent to a voiceprint")
        if self.consent is not None:
            # Explicit consent, recorded with time, channel and policy version before any audio is kept.
            await asyncio.to_thread(self.consent.record_consent, account, CONSENT_CHANNEL)
            permission = await asyncio.to_thread(self.consent.may_enrol, account)
            if not permission:
                await io.play("enroll-not-allowed")
                return FlowResult(Result.FAILED, account, reason=permission.reason)
        clips = await self._utterances(io)
        if clips is None:
            await io.play("enroll-failed")
            return FlowResult(Result.FAILED, account, reason="could not record enough usable speech")
        try:
            result = await self.engine.aenroll(account, clips)
        except EnrolmentError as exc:
            await io.play("enroll-failed")
            return FlowResult(Result.FAILED, account, reason=str(exc))
        await io.play("enroll-done")
        meta = result.voiceprint.meta
        return FlowResult(Result.ENROLLED, account, reason=(
            f"{meta.utterance_count} utterances, {meta.net_speech_s:.1f} s of speech, "
            f"consistency {result.consistency:.2f}"), method="voice")

    async def _consent(self, io: CallIO) -> bool:
        for _ in range(self.config.input_attempts):
            await io.play("enroll-consent")
            key = await io.read_key(self.config.first_digit_timeout_s)
            if key in (CONSENT_KEY, DECLINE_KEY):
                return key == CONSENT_KEY
        return False

    async def _utterances(self, io: CallIO) -> list[AudioClip] | None:
        """Record good utterances until there are enough, with live advice when one is not usable."""
        policy = self.engine.config.enrolment
        clips: list[AudioClip] = []
        total = 0.0
        attempts = 0
        budget = self.config.max_utterances * (1 + self.config.utterance_retries)
        while len(clips) < policy.min_utterances or total < policy.min_total_speech_s:
            if len(clips) >= self.config.max_utterances or attempts >= budget:
                return None
            attempts += 1
            await io.play(f"enroll-say-{len(clips) % 3 + 1}")
            await io.drop_audio()
            speech = await io.listen(
                want_speech_s=self.config.utterance_max_s, deadline_s=self.config.utterance_listen_deadline_s,
                end_silence_s=self.config.end_of_utterance_silence_s, min_speech_s=policy.min_utterance_speech_s,
                max_audio_s=self.config.utterance_max_s)
            report = await self._quality(speech.clip)
            if not report.ok:
                log.info("enrolment utterance %d not usable: %s", len(clips) + 1, "; ".join(report.reasons))
                await io.play(ADVICE[report.problems[0]])
                continue
            clips.append(speech.clip)
            total += report.net_speech_s
            await io.play("enroll-thanks")
        return clips

    async def _quality(self, clip: AudioClip) -> QualityReport:
        if clip.duration_s == 0:
            return QualityReport(0.0, 0.0, None, 0.0, None, (QualityProblem.SILENT,), ("no audio received",))
        return await self.engine.acheck_utterance(clip)
