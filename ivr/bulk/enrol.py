"""Enrol one manifest row: consent, the caller's audio, the voiceprint, the audit row and the notice.

Steps, each able to fail the row alone: consent, already enrolled, the
caller's audio (the named channel of a stereo call), the engine's enrolment
checks, the watchlist screen; then audit, store, remember the recordings'
replay fingerprints, notify.

Consent: bulk enrolment from recorded calls is *passive* enrolment (the
customer is not on the line), so it needs consent recorded in the registry
and never withdrawn: ``ConsentRegistry.may_enrol(account, passive=True)``.
A consent given again after an opt-out covers the enrolment line only, as
for any passive enrolment. Consent that lives in another system is recorded
first with ``ivr consent import``; "the recordings are consented" is not
taken on trust from the manifest.

Order, as on the enrolment line: the audit row is written before the
voiceprint is stored (an enrolment that cannot be audited does not happen),
and consent is checked again just before storing, so an opt-out during the
run wins. A row's own problem (bad or missing audio, too little speech, no
consent) fails that row only; a problem of the system (database, keys,
audit) stops the run, which then resumes from its progress file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ivr.bulk.manifest import ManifestRow
from ivr.bulk.progress import RowOutcome
from ivr.consent.registry import ConsentRegistry
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.io import read_channels
from voiceprints.audio.resample import resample
from voiceprints.audio.vad import SpeechDetector
from voiceprints.engine import PreparedEnrolment, VoiceprintEngine
from voiceprints.errors import AudioError, EnrolmentError, VoiceprintError

log = logging.getLogger("ivr.bulk")

# Two channels closer than this everywhere are one mono call written twice
# (some recorders do that): 16-bit PCM or G.711 re-encoding stays well inside.
SAME_CHANNEL_TOLERANCE = 2e-3


# A cut moves on to the next pause if that adds at most this much speech to
# the part (a word or two); a longer run is cut where the share is reached.
CUT_SLACK_S = 0.5


class EnrolmentScreen(Protocol):
    """A check of a new voiceprint before it is stored; returns why it must not be, or None.

    ``ivr enroll --manifest`` passes the fraudster watchlist here
    (``AttackDefences.screen_enrolment``, as the enrolment line does): a hit
    fails the row with code ``screened`` and is audited.
    """

    def __call__(self, account: str, vector: np.ndarray) -> str | None: ...


class RunStopped(Exception):
    """A problem of the system, not of the row: the run stops (and can be resumed)."""


@dataclass
class BulkEnroller:
    engine: VoiceprintEngine
    consent: ConsentRegistry
    audit: Callable[[str, str, str], None]  # (account, reason, result): one audit row
    notify: Callable[[str, bool], str] | None = None  # (account, replaced) -> what happened; None: no notices
    screen: EnrolmentScreen | None = None
    # After a voiceprint is stored: (account, the caller's recordings), e.g. remember their replay
    # fingerprints so a replay of these very recordings is flagged in a later call.
    remember: Callable[[str, Sequence[AudioClip]], None] | None = None
    replace: bool = False  # re-enrol accounts that already have a voiceprint of this model
    source: str = "manifest"  # named in audit rows

    def enrol(self, row: ManifestRow) -> RowOutcome:
        started = time.perf_counter()

        def outcome(status: str, code: str, detail: str) -> RowOutcome:
            return RowOutcome(row.line, row.account, status, code, detail, round(time.perf_counter() - started, 3))

        if row.problem is not None:
            return outcome("failed", "bad_row", row.problem)
        permission = self.consent.may_enrol(row.account, passive=True)
        if not permission:
            return outcome("failed", "no_consent", permission.reason)
        models = self.engine.store.model_ids_for(row.account)
        if self.engine.model_id in models and not self.replace:
            return outcome("skipped", "already_enrolled",
                           f"already enrolled with {self.engine.model_id} (--replace re-enrols)")
        try:
            clips = [self._caller_audio(path, row.channel) for path in row.files]
            prepared = self.engine.prepare_enrolment(
                as_utterances(clips, self.engine.config.enrolment.min_utterances, self.engine.detector))
        except (AudioError, EnrolmentError) as exc:
            return outcome("failed", exc.code, str(exc))
        if self.screen is not None:
            refusal = self.screen(row.account, prepared.vector)
            if refusal:
                self.audit(row.account, f"bulk enrolment refused ({self.source} line {row.line}): {refusal}",
                           "FAILED")
                return outcome("failed", "screened", refusal)
        permission = self.consent.may_enrol(row.account, passive=True)  # an opt-out during the run wins
        if not permission:
            return outcome("failed", "no_consent", permission.reason)
        replaced = bool(models)
        self._store(row, prepared, replaced, permission.reason)
        if self.remember is not None:
            self.remember(row.account, clips)
        notice = self.notify(row.account, replaced) if self.notify is not None else "customers not notified"
        meta = prepared.meta
        return outcome("enrolled", "replaced" if replaced else "enrolled",
                       f"{meta.utterance_count} utterances, {meta.net_speech_s:.1f} s of speech, "
                       f"consistency {prepared.consistency:.2f}; {notice}")

    def _store(self, row: ManifestRow, prepared: PreparedEnrolment, replaced: bool, consent: str) -> None:
        meta = prepared.meta
        self.audit(row.account,
                   f"voiceprint {'replaced' if replaced else 'created'} by bulk enrolment from {len(row.files)} "
                   f"recorded call(s), {meta.net_speech_s:.1f} s of speech ({self.source} line {row.line}); "
                   f"{consent}", "OK")
        try:
            self.engine.store_enrolment(row.account, prepared)
        except VoiceprintError as exc:
            self.audit(row.account, f"voiceprint not stored: {exc}", "ERROR")
            raise RunStopped(f"line {row.line}: voiceprint not stored: {exc}") from exc

    def _caller_audio(self, path, channel: int | None) -> AudioClip:  # type: ignore[no-untyped-def]
        """The caller's side of one recording: the named channel, or the only one."""
        channels = read_channels(path)
        if channel is not None:
            if channel >= len(channels):
                raise AudioError(f"{path} has {len(channels)} channel(s); the manifest asks for channel "
                                 f"{channel + 1} ({'left' if channel == 0 else 'right'})")
            return channels[channel]
        if len(channels) == 1:
            return channels[0]
        left, right = channels
        if np.max(np.abs(left.samples - right.samples), initial=0.0) <= SAME_CHANNEL_TOLERANCE:
            return left  # one mono call written to both channels
        raise AudioError(f"{path} is stereo with different channels (caller and agent?): set the manifest's "
                         "channel column to the caller's side, left or right")


def as_utterances(clips: Sequence[AudioClip], count: int, detector: SpeechDetector) -> list[AudioClip]:
    """At least ``count`` clips: fewer, longer recordings are joined and cut into ``count`` parts.

    A recorded call is one long answer, where the enrolment line records
    three short ones. Cutting it keeps what the engine checks meaningful:
    each part must hold enough speech, and the parts must sound like one
    speaker (which catches a recording where another voice fills one part;
    an agent spread evenly over a mono call is not caught: see docs/deploy.md).
    The cuts share out the caller's *speech* equally (a caller speaks in
    turns, often more at the start of a call than at its end), and fall in a
    pause where there is one; the pauses stay in, so each part keeps the
    background noise its SNR is measured against.
    """
    if len(clips) >= count or not clips:
        return list(clips)
    rate = clips[0].sample_rate
    joined = AudioClip.concatenate([c if c.sample_rate == rate else resample(c, rate) for c in clips])
    speech = detector.speech_mask(joined)
    per_frame = rate * detector.frame_s
    said = np.cumsum(speech)
    if len(said) == 0 or said[-1] == 0:  # no speech: equal times, and the quality check says so
        cuts = [round(len(joined.samples) * k / count) for k in range(1, count)]
    else:
        cuts = []
        slack = CUT_SLACK_S / detector.frame_s
        for k in range(1, count):
            frame = int(np.searchsorted(said, said[-1] * k / count))
            pauses = np.flatnonzero(~speech[frame:])
            if len(pauses) and said[frame + pauses[0]] - said[frame] <= slack:
                frame += int(pauses[0])  # end the part in the next pause, unless it is far off
            cuts.append(round(frame * per_frame))
    bounds = [0, *cuts, len(joined.samples)]
    return [AudioClip(joined.samples[a:b], rate) for a, b in zip(bounds[:-1], bounds[1:])]
