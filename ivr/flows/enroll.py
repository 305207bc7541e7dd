"""Enrolment line: claim the account, prove it by policy, consent, speak, store.

How the caller proves the account is the decision policy's (``line:
enroll``): a one-time code to a contact on file, or the PIN; when a
voiceprint is already on file, a PIN alone never replaces it — the current
voice or a code must confirm it. Limits, the lease and the audit come from
the guard. Nothing is written until the very end: a caller who hangs up
part-way leaves no partial voiceprint, and the audit row is written before
the voiceprint, so no voiceprint changes without one. The customer is told
on the contact on file.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.call import CallSession
from ivr.call import FlowResult, Result
from ivr.flows.callio import CallIO
from ivr.flows.claim import claimed_account
from ivr.flows.config import FlowConfig
from ivr.flows.digit_guide import DigitGuides
from ivr.flows.guard import Attempt, Guard
from ivr.flows.steps import FactorSteps
from ivr.flows.verify import why_not_enrolled
from ivr.notices import NoticeKind
from ivr.policy.model import Action, Factor, FactorAttempt, Line, PolicyDecision, Risk
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.quality import QualityProblem, QualityReport
from voiceprints.defences import AttackDefences
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import EnrolmentError, VoiceprintError
from voiceprints.liveness import DigitTemplates

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


async def prove_account(attempt: Attempt, engine: VoiceprintEngine, steps: FactorSteps) -> tuple[PolicyDecision, bool]:
    """The enrolment and opt-out lines' authentication; returns the decision and whether a voiceprint is on file."""
    account = attempt.account
    on_file = bool(await asyncio.to_thread(engine.store.model_ids_for, account))
    scorable = on_file and await why_not_enrolled(engine, account) is None
    available, factor_steps = await steps.others(attempt.io, account, attempt.customer)
    available.discard(Factor.LIVENESS)  # the digits prove liveness, not the account
    if scorable:
        async def voice() -> FactorAttempt:
            return (await steps.voice.run(attempt.io, account)).attempt

        available.add(Factor.VOICE)
        factor_steps[Factor.VOICE] = voice
    identity = await attempt.identity_state(enrolled=on_file, available=available)
    return await attempt.authenticate(identity, factor_steps), on_file


def not_proven(account: str, decision: PolicyDecision, factors: list[FactorAttempt]) -> FlowResult:
    said = [f"{f.factor.value} {f.outcome.value}" for f in factors] or ["no factor could be asked"]
    reason = f"account not proven: {', '.join(said)}; {decision.reason} (rule {decision.rule})"
    return FlowResult(Result.LOCKED if decision.result == "LOCKED" else Result.FAILED, account, reason=reason)


class EnrollFlow:
    name = "enroll"

    def __init__(self, engine: VoiceprintEngine, config: FlowConfig, guard: Guard, steps: FactorSteps,
                 defences: AttackDefences | None = None, guides: DigitGuides | None = None) -> None:
        """``guides``: other voices saying the digits, to find digits said without pauses (none: pauses needed)."""
        self.engine = engine
        self.config = config
        self.guard = guard
        self.steps = steps
        self.defences = defences
        self.guides = guides

    async def __call__(self, call: CallSession) -> FlowResult:
        io = CallIO(call, self.engine.config.quality.vad_aggressiveness)
        await io.play("enroll-welcome")
        account = await claimed_account(io, self.config)
        if account is None:
            return await self.guard.unclaimed(io, Line.ENROLL, FlowResult(
                Result.FAILED, reason="no account number entered"))
        return await self.guard.run(io, Line.ENROLL, account, self._enrol)

    async def _enrol(self, attempt: Attempt) -> FlowResult:
        io, account = attempt.io, attempt.account
        decision, on_file = await prove_account(attempt, self.engine, self.steps)
        if decision.action is not Action.ACCEPT:
            await io.play("enroll-factor-failed")
            return not_proven(account, decision, attempt.factors)
        if not await self._consent(io):
            await io.play("enroll-declined")
            return FlowResult(Result.DECLINED, account, reason="caller did not consent to a voiceprint")
        consent = self.guard.kit.consent
        # Explicit consent, recorded with time, channel and policy version before any audio is kept.
        await asyncio.to_thread(consent.record_consent, account, CONSENT_CHANNEL)
        permission = await asyncio.to_thread(consent.may_enrol, account)
        if not permission:
            await io.play("enroll-not-allowed")
            return FlowResult(Result.FAILED, account, reason=permission.reason)
        clips = await self._utterances(io)
        if clips is None:
            await io.play("enroll-failed")
            return FlowResult(Result.FAILED, account, reason="could not record enough usable speech")
        try:
            prepared = await self.engine.aprepare_enrolment(clips)
        except EnrolmentError as exc:
            await io.play("enroll-failed")
            return FlowResult(Result.FAILED, account, reason=str(exc))
        defences = self.defences
        if defences is not None:
            watch = await defences.run(defences.screen_enrolment, prepared.vector)
            if watch.hit:
                await io.play("enroll-failed")
                return FlowResult(Result.FAILED, account, risks=(Risk.WATCHLIST.value,),
                                  reason=f"enrolment refused: {watch.reason}")
        templates, digits_note = await self._digit_templates(io)
        meta = prepared.meta
        result = await attempt.commit(FlowResult(Result.ENROLLED, account, method="voice", reason=(
            f"{'replaced the voiceprint on file' if on_file else 'first voiceprint'}: "
            f"{meta.utterance_count} utterances, {meta.net_speech_s:.1f} s of speech, "
            f"consistency {prepared.consistency:.2f}; {digits_note}")))
        if result.result is not Result.ENROLLED:
            await io.play("enroll-failed")
            return result
        try:
            await self.engine.astore_enrolment(account, prepared)
            if defences is not None:
                await defences.run(defences.remember_enrolment, account, templates, clips)
        except VoiceprintError as exc:
            await io.play("enroll-failed")
            return await attempt.commit(FlowResult(Result.ERROR, account, reason=f"voiceprint not stored: {exc}"))
        await io.play("enroll-done")
        await attempt.notify(NoticeKind.VOICEPRINT_REPLACED if on_file else NoticeKind.VOICEPRINT_CREATED)
        return result

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

    async def _digit_templates(self, io: CallIO) -> tuple[DigitTemplates | None, str]:
        """The caller says "zero ... nine" a few times: templates for the liveness challenge at verification.

        Said at a natural pace, the words are found by aligning the known
        sequence to other voices saying the digits (``guides``). A caller whose
        digits still cannot be found is asked again, and then still enrolled;
        verification then cannot challenge them and the policy decides (rule
        ``voice-pass-without-liveness``: a one-time code where codes are
        configured).
        """
        defences = self.defences
        if defences is None:
            return None, "no digit templates (defences off)"
        wanted = self.engine.config.liveness.enrolment_repetitions
        guide = await self.guides.for_language(io.language) if self.guides is not None else None
        recordings: list[AudioClip] = []
        retries = self.config.utterance_retries
        prompt = "enroll-digits"
        while len(recordings) < wanted:
            await io.play(prompt)
            await io.drop_audio()
            speech = await io.listen(want_speech_s=self.config.digits_max_s,
                                     deadline_s=self.config.digits_listen_deadline_s,
                                     end_silence_s=2.0 * self.config.end_of_utterance_silence_s, min_speech_s=2.0,
                                     max_audio_s=self.config.digits_max_s)
            try:
                if not speech.clip.duration_s:
                    raise EnrolmentError("no audio received")
                await defences.run(defences.check_digit_recording, speech.clip, guide)
            except EnrolmentError as exc:
                log.info("enrolment digits not usable: %s", exc)
                retries -= 1
                if retries < 0:
                    return None, f"no digit templates: {exc}"
                prompt = "enroll-digits-unclear"
                continue
            recordings.append(speech.clip)
            prompt = "enroll-digits-again"
        try:
            templates = await defences.run(defences.digit_templates, recordings, guide)
        except EnrolmentError as exc:
            return None, f"no digit templates: {exc}"
        return templates, f"digit templates from {len(recordings)} recordings"

    async def _quality(self, clip: AudioClip) -> QualityReport:
        if clip.duration_s == 0:
            return QualityReport(0.0, 0.0, None, 0.0, None, (QualityProblem.SILENT,), ("no audio received",))
        return await self.engine.acheck_utterance(clip)
