"""Beyond "does the voice match": is it live, is it a replay, is it synthetic, is it a known fraudster?

One object the flows ask, next to the engine, so that they never assemble
the four defences themselves (their measurements and settings are in the
README and ``voiceprints.config``). Everything here is synchronous and runs
on the engine's executor through the ``a*`` wrappers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence, TypeVar

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding.base import layout_of
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import EnrolmentError, TooLittleSpeechError
from voiceprints.liveness import DigitStringVerifier, DigitTemplates, LivenessResult, new_challenge
from voiceprints.liveness.binding import AnswerVoice
from voiceprints.liveness.templates import align_to_guide, segment_digits
from voiceprints.liveness.store import SqlChallengeHistory, SqlDigitTemplateStore
from voiceprints.replay import check_replay, fingerprint
from voiceprints.replay.store import SqlFingerprintStore
from voiceprints.spoof.detector import SpoofDetector
from voiceprints.watchlist import SqlWatchlistStore, WatchlistResult, WatchlistScreen
from voiceprints.watchlist.calls import SqlCallEmbeddings

T = TypeVar("T")

# Risk names as the policy and the dialplan (VOICEAUTH_RISK) know them.
REPLAY, SYNTHETIC, WATCHLIST = "replay", "synthetic", "watchlist"
# A changed watchlist is picked up by every worker within this long (the list is re-read when it is
# older; its size and newest entry are checked on every call, so an addition is seen at once).
WATCHLIST_TTL_S = 60.0


@dataclass(frozen=True)
class RiskReport:
    """What the checks of one recording found; ``risks`` is empty when nothing was found."""

    risks: tuple[str, ...]
    details: tuple[str, ...] = ()
    watchlist: WatchlistResult | None = None
    costs_ms: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.details)


class AttackDefences:
    def __init__(self, engine: VoiceprintEngine) -> None:
        self.engine = engine
        config = engine.config
        store = engine.store
        self._templates = SqlDigitTemplateStore(store)  # type: ignore[arg-type]
        self._challenges = SqlChallengeHistory(store)  # type: ignore[arg-type]
        self._fingerprints = SqlFingerprintStore(store, keep=config.replay.keep_per_account)  # type: ignore[arg-type]
        self._watchlist = SqlWatchlistStore(store)  # type: ignore[arg-type]
        self._calls = SqlCallEmbeddings(store)  # type: ignore[arg-type]
        self._verifier = DigitStringVerifier.from_config(config.liveness)
        # The answer's voice is embedded with the first model of a fused engine (GE2E): the model its
        # thresholds were measured on.
        self._answer_embedder = getattr(engine.embedder, "parts", (engine.embedder,))[0]
        self._answer_voice = AnswerVoice.for_model(self._answer_embedder.model_id.split("/")[0], config.liveness)
        self._spoof = SpoofDetector.from_config(config.spoof) if config.spoof.enabled else None
        self._lock = threading.Lock()
        self._screen: tuple[tuple[int, int], float, WatchlistScreen] | None = None

    # --- liveness -----------------------------------------------------------
    def digit_templates(self, recordings: Sequence[AudioClip], guide: DigitTemplates | None = None) -> DigitTemplates:
        """Templates from the enrolment line's "zero ... nine" recordings; EnrolmentError says what to redo.

        ``guide``: other voices' digits (ivr.flows.digit_guide) to find them in recordings without pauses.
        """
        return DigitTemplates.from_sequences(recordings, guide, self._verifier)

    @staticmethod
    def check_digit_recording(recording: AudioClip, guide: DigitTemplates | None = None) -> None:
        """EnrolmentError saying what to redo when ``recording`` cannot be the ten digits."""
        try:
            segment_digits(recording)
        except EnrolmentError:
            if guide is None:
                raise
            align_to_guide(recording, guide)

    def has_templates(self, account: str) -> bool:
        return self._templates.get(account) is not None

    def challenge(self, account: str) -> str:
        liveness = self.engine.config.liveness
        return new_challenge(account, self._challenges, min_digits=liveness.min_digits,
                             max_digits=liveness.max_digits, reuse_days=liveness.reuse_days,
                             now=self.engine.store.clock())

    def check_challenge(self, account: str, clip: AudioClip, asked: str,
                        voice_sample: np.ndarray | None = None) -> LivenessResult | None:
        """Were the asked digits said, in the enrolled voice, by whoever gave ``voice_sample`` earlier in the call?

        ``voice_sample``: the engine's embedding of the call's voice answer (None: only the voiceprint
        is compared). None when the account has no digit templates (enrolled before the digits were asked).
        """
        templates = self._templates.get(account)
        if templates is None:
            return None
        result = self._verifier.verify(templates, clip, asked)
        if not result.passed:
            return result
        if self._answer_voice is None:
            return replace(result, passed=False, reason=(
                f"{result.reason}, but no voice thresholds are measured for model {self._answer_embedder.model_id}: "
                "set VOICEAUTH_LIVENESS__VOICE_MIN_SCORE and __CONTINUITY_MIN_SCORE"))
        started = time.perf_counter()
        speech = self.engine.detector.speech_only(clip)
        if not speech.samples.size:
            return replace(result, passed=False, reason=f"{result.reason}, but no speech to compare with the voice")
        answer = self._answer_embedder.embed(speech)
        voiceprint = self._screened_part(self.engine.voiceprint_for(account).vector)
        sample = None if voice_sample is None else self._screened_part(voice_sample)
        bound = self._answer_voice.check(answer, voiceprint, sample)
        return replace(result, passed=bound.passed, reason=f"{result.reason}; {bound.reason}",
                       voice_score=bound.print_score, continuity=bound.sample_score,
                       latency_ms=result.latency_ms + (time.perf_counter() - started) * 1000.0)

    # --- enrolment ------------------------------------------------------------
    def screen_enrolment(self, vector: np.ndarray) -> WatchlistResult:
        return self._watchlist_screen().screen(self._screened_part(vector))

    def _screened_part(self, vectors: np.ndarray) -> np.ndarray:
        """The part of (fused) vectors the watchlist thresholds were measured on: the first model's (GE2E).

        A fused vector is its models' unit vectors side by side; the screen's
        thresholds (README) were measured with GE2E alone, so a fused engine
        screens on its GE2E part and the thresholds keep their meaning.
        """
        first = layout_of(self.engine.embedder)[0]
        return np.asarray(vectors)[..., :first]

    def remember_enrolment(self, account: str, templates: DigitTemplates | None, clips: Sequence[AudioClip]) -> None:
        """Store the digit templates (if any; old ones go) and the fingerprints of what was said.

        A later replay of the enrolment recordings is then flagged.
        """
        if templates is not None:
            self._templates.save(account, templates)
        else:
            self._templates.delete(account)  # templates of a replaced voiceprint belong to the old voice
        for clip in clips:
            self._fingerprints.add(account, fingerprint(clip), "enrolment")

    # --- verification ---------------------------------------------------------
    def screen_call(self, account: str | None, clip: AudioClip, embedding: np.ndarray | None,
                    call_id: str | None = None) -> RiskReport:
        """Replay (against this account's earlier recordings), synthetic voice (when enabled), watchlist.

        The call's embedding is kept for ``call_memory_days`` under ``call_id`` (watchlist add-call).
        """
        risks: list[str] = []
        details: list[str] = []
        costs: dict[str, float] = {}
        watch = None
        if embedding is None:
            # No usable speech (silence, noise, a cough): nothing of a voice to compare, and
            # fingerprints of line noise would make the next silent call look like a replay.
            return RiskReport((), (), None, costs)
        if account is not None:
            started = time.perf_counter()
            print_ = fingerprint(clip)
            replay = check_replay(print_, self._fingerprints.references(account), self.engine.config.replay.threshold)
            self._fingerprints.add(account, print_, "verification")
            costs[REPLAY] = _ms(started)
            if replay.replay:
                risks.append(REPLAY)
                details.append(replay.reason)
        if self._spoof is not None:
            started = time.perf_counter()
            try:
                spoof = self._spoof.score(clip)
            except TooLittleSpeechError:
                spoof = None
            costs[SYNTHETIC] = _ms(started)
            if spoof is not None and spoof.flagged:
                risks.append(SYNTHETIC)
                details.append(spoof.reason)
        if call_id and self.engine.config.watchlist.call_memory_days:
            self._calls.add(call_id, self.engine.model_id, embedding, clip.duration_s)
        started = time.perf_counter()
        watch = self._watchlist_screen().screen(self._screened_part(embedding))
        costs[WATCHLIST] = _ms(started)
        if watch.hit:
            risks.append(WATCHLIST)
            details.append(watch.reason)
        return RiskReport(tuple(risks), tuple(details), watch, costs)

    def _watchlist_screen(self) -> WatchlistScreen:
        model = self.engine.model_id
        version = self._watchlist.version(model)
        with self._lock:
            cached = self._screen
            if cached and cached[0] == version and time.monotonic() - cached[1] < WATCHLIST_TTL_S:
                return cached[2]
        names, matrix = self._watchlist.load_matrix(model)
        # The enrolled population is the engine's identification index, already in memory and kept in
        # step with the store: never decrypted again here, inside a caller's call.
        population = self.engine.enrolled_vectors() if names else np.zeros((0, 0), dtype=np.float32)
        config = self.engine.config.watchlist
        screen = WatchlistScreen(model, names, self._screened_part(matrix) if names else matrix,
                                 threshold=config.threshold, uncentred_threshold=config.uncentred_threshold,
                                 population=self._screened_part(population) if len(population) else None)
        with self._lock:
            self._screen = (version, time.monotonic(), screen)
        return screen

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await self.engine.run(fn, *args)  # type: ignore[no-any-return]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)
