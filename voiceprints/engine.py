"""The biometric engine: enrol, verify and identify speakers.

This is the one object the CLI and the telephony flows talk to. It ties the
steps together — quality check, VAD, embedding, scoring, normalisation,
decision, storage — but each step lives in its own module.
Sync methods do the work; the ``a*`` variants run it on a bounded executor so
a service's event loop never waits for a model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.quality import QualityReport, assess, ensure_not_empty
from voiceprints.audio.vad import FrameAnalysis, SpeechDetector
from voiceprints.cohort import Cohort
from voiceprints.config import CoreConfig
from voiceprints.derived import DerivedValue
from voiceprints.embedding.base import Embedder, layout_of
from voiceprints.errors import (
    EnrolmentError,
    ReenrolmentNeededError,
    UnknownSpeakerError,
)
from voiceprints.inference import InferenceQueue
from voiceprints.scoring.calibration import default_calibration
from voiceprints.scoring.cosine import cosine
from voiceprints.scoring.decide import decide
from voiceprints.scoring.decision import Decision
from voiceprints.scoring.enrolment import check_consistency, combine, utterance_consistency
from voiceprints.scoring.identify import IdentificationIndex
from voiceprints.scoring.normalise import Population, ScoreNormaliser, build_normaliser
from voiceprints.redact import mask
from voiceprints.store.base import CHANGE_MEMORY_S, Calibration, EnrolmentMeta, Voiceprint, VoiceprintStore

log = logging.getLogger("voiceprints.engine")

# Enrolled speakers used as the normalisation population, at most. AS-norm only
# looks at the top-N (200) cohort scores per side, and centring/z-statistics
# settle long before; a few thousand speakers are plenty, and capping keeps one
# verification O(1) in the size of the store.
MAX_STORE_COHORT = 4000
# Speakers whose enrolment utterances are loaded for the normalisation
# statistics (which use at most 1,500 utterances: scoring/normalise.py).
MAX_UTTERANCE_SPEAKERS = 500
# Cached cohorts and the identification index follow the store's change journal
# (voiceprints.derived); this is the safety net: rebuilt in the background at least this often.
CACHE_TTL_S = 60.0


@dataclass(frozen=True)
class EnrolmentResult:
    voiceprint: Voiceprint
    qualities: tuple[QualityReport, ...]
    consistency: float


@dataclass(frozen=True)
class PreparedEnrolment:
    """A voiceprint computed and checked but not stored yet (the phone line audits before it stores)."""

    vector: np.ndarray
    meta: EnrolmentMeta
    qualities: tuple[QualityReport, ...]
    consistency: float
    utterances: np.ndarray  # one embedding per utterance, kept (encrypted) for self-calibration


@dataclass(frozen=True)
class Candidate:
    speaker_id: str
    score: float


@dataclass(frozen=True)
class Probe:
    """What a verification learns from the caller's audio alone, before any claim is looked at.

    ``vector`` is None when the quality gate failed (then every decision on
    this probe is INCONCLUSIVE). Evaluation embeds each recording once and
    decides it against every enrolled account, through the same code as a call.
    """

    quality: QualityReport
    vector: np.ndarray | None


@dataclass(frozen=True)
class _Normalisation:
    """The engine's normaliser for its model and the population it was built on (None: too small)."""

    normaliser: ScoreNormaliser | None
    population: Population | None


class VoiceprintEngine:
    def __init__(self, embedder: Embedder, store: VoiceprintStore, config: CoreConfig,
                 detector: SpeechDetector | None = None) -> None:
        self.embedder = embedder
        self.store = store
        self.config = config
        self.detector = detector or SpeechDetector(config.quality.vad_aggressiveness)
        self._lock = threading.Lock()
        self.inference = InferenceQueue(config.model.max_workers, config.model.max_waiting)
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voiceprint-cache")
        self._cohort = DerivedValue("score-normalisation cohort", self._build_normalisation, _population_holds,
                                    ttl_s=CACHE_TTL_S, background=self._background)
        self._index = DerivedValue("identification index", self._build_index, _index_holds,
                                   ttl_s=CACHE_TTL_S, background=self._background, absorb=self._absorb_into_index)
        # Changes by other processes up to now are irrelevant: nothing is cached yet.
        self._change_mark = store.changes_since(0).mark
        self._synced_at = time.monotonic()

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # --- enrolment ---------------------------------------------------------
    def check_utterance(self, clip: AudioClip) -> QualityReport:
        """Quality of one enrolment utterance (the phone flow asks for another when it fails)."""
        ensure_not_empty(clip)
        return assess(clip, self.config.quality, min_speech_s=self.config.enrolment.min_utterance_speech_s,
                      detector=self.detector)

    def enroll(self, speaker_id: str, clips: Sequence[AudioClip]) -> EnrolmentResult:
        return self.store_enrolment(speaker_id, self.prepare_enrolment(clips))

    def prepare_enrolment(self, clips: Sequence[AudioClip]) -> PreparedEnrolment:
        """Quality, speech total, embeddings and consistency; raises EnrolmentError with what to fix."""
        policy = self.config.enrolment
        if len(clips) < policy.min_utterances:
            raise EnrolmentError(f"{len(clips)} utterance(s) given; enrolment needs at least {policy.min_utterances}")
        reports = tuple(self.check_utterance(c) for c in clips)
        bad = [f"utterance {i + 1}: {'; '.join(r.reasons)}" for i, r in enumerate(reports) if not r.ok]
        if bad:
            raise EnrolmentError("unusable enrolment audio — " + " | ".join(bad))
        total = sum(r.net_speech_s for r in reports)
        if total < policy.min_total_speech_s:
            raise EnrolmentError(
                f"only {total:.1f} s of speech in {len(clips)} utterances; enrolment needs "
                f"{policy.min_total_speech_s:.1f} s in total — record more or longer answers"
            )
        vectors = self.embedder.embed_batch([self.detector.speech_only(c) for c in clips])
        voiceprint, _ = combine(vectors)
        # Consistency is judged on the first model's part of a fused vector (GE2E), the
        # model its threshold was measured for; each part's scale of cosines differs.
        reference = vectors[:, : layout_of(self.embedder)[0]]
        per_utterance = utterance_consistency(reference)
        consistency = float(per_utterance.min())
        check_consistency(per_utterance, policy.min_consistency_for(self.model_id))
        meta = EnrolmentMeta(
            utterance_count=len(clips),
            net_speech_s=round(total, 2),
            quality={
                "consistency": round(float(consistency), 4),
                "min_snr_db": _min_or_none(r.snr_db for r in reports),
                "max_clipping_ratio": round(max(r.clipping_ratio for r in reports), 5),
            },
        )
        return PreparedEnrolment(voiceprint, meta, reports, float(consistency), vectors)

    def store_enrolment(self, speaker_id: str, prepared: PreparedEnrolment) -> EnrolmentResult:
        stored = self.store.save_voiceprint(speaker_id, self.model_id, prepared.vector, prepared.meta,
                                            utterances=prepared.utterances)
        log.info("enrolled speaker %s: %d utterances, %.1f s of speech, consistency %.2f", mask(speaker_id),
                 prepared.meta.utterance_count, prepared.meta.net_speech_s, prepared.consistency)
        return EnrolmentResult(stored, prepared.qualities, prepared.consistency)

    # --- verification ------------------------------------------------------
    def voiceprint_for(self, speaker_id: str) -> Voiceprint:
        """The speaker's voiceprint for this engine's model, or the error that tells the caller why not."""
        voiceprint = self.store.get_voiceprint(speaker_id, self.model_id)
        if voiceprint is not None:
            return voiceprint
        others = self.store.model_ids_for(speaker_id)
        if others:
            raise ReenrolmentNeededError(
                f"speaker {speaker_id} is enrolled with model {', '.join(others)}, not with {self.model_id}; "
                f"re-enrolment needed"
            )
        raise UnknownSpeakerError(f"speaker {speaker_id} is not enrolled")

    def probe(self, clip: AudioClip, analysis: FrameAnalysis | None = None) -> Probe:
        """Quality gate, then (if the audio passes) the speech-only embedding.

        ``analysis``: the clip's VAD frames when the caller has them already (the live call's counter);
        used only when they are what this engine's detector would find, so the decision is the same.
        One VAD pass serves the quality check and the speech cut.
        """
        ensure_not_empty(clip)
        vconf = self.config.verification
        frames = self.detector.analysis_of(clip, analysis)
        quality = assess(clip, self.config.quality, min_speech_s=vconf.min_speech_s, detector=self.detector,
                         analysis=frames)
        vector = self.embedder.embed(self.detector.speech_only(clip, frames)) if quality.ok else None
        return Probe(quality, vector)

    def verify(self, speaker_id: str, clip: AudioClip, analysis: FrameAnalysis | None = None) -> Decision:
        started = time.perf_counter()
        ensure_not_empty(clip)
        voiceprint = self.voiceprint_for(speaker_id)  # before the model runs: an unknown claim costs nothing
        probe = self.probe(clip, analysis)
        decision = self.decide(voiceprint, probe)
        latency = (time.perf_counter() - started) * 1000.0
        # The embedding travels with the decision for the watchlist screen (never serialised).
        decision = replace(decision, latency_ms=latency, embedding=probe.vector)
        log.info("verify speaker %s: %s (score %s, %s) in %.0f ms", mask(speaker_id), decision.outcome.value,
                 "n/a" if decision.score is None else f"{decision.score:.3f}", decision.normalisation, latency)
        return decision

    def decide(self, voiceprint: Voiceprint | str, probe: Probe) -> Decision:
        """The decision on a claim (a voiceprint, or the speaker id to look it up) given a probe of the audio."""
        if isinstance(voiceprint, str):
            voiceprint = self.voiceprint_for(voiceprint)
        speaker_id = voiceprint.speaker_id
        vconf = self.config.verification
        normalisation, calibration = "none", self.calibration("none")
        reasons: list[str] = []
        score = raw = None
        if probe.quality.ok and probe.vector is not None:
            raw = cosine(voiceprint.vector, probe.vector)
            score = raw
            if vconf.normalisation != "none":
                current = self._current_normalisation()
                size = 0 if current.population is None else current.population.others(speaker_id)
                if current.normaliser is None or size < vconf.min_cohort_size:
                    reasons.append(f"score normalisation off: the cohort has {size} other speaker(s), "
                                   f"needs {vconf.min_cohort_size}; plain cosine used")
                else:
                    normalisation, calibration = vconf.normalisation, self.calibration(vconf.normalisation)
                    score = current.normaliser.score(voiceprint.vector, probe.vector, speaker_id)
        return decide(
            score, raw, calibration, probe.quality,
            speaker_id=speaker_id, model_id=self.model_id, normalisation=normalisation,
            min_speech_s=vconf.min_speech_s, extra_reasons=tuple(reasons),
        )

    def embed_speech(self, clip: AudioClip, analysis: FrameAnalysis | None = None) -> np.ndarray | None:
        """The caller's embedding without a voiceprint to score (watchlist screening); None if too little speech."""
        return self.probe(clip, analysis).vector

    def spend_like_verify(self, clip: AudioClip, analysis: FrameAnalysis | None = None) -> None:
        """The work of a verification, on noise as long as ``clip``'s speech, for a caller who has no voiceprint.

        An unknown account must not answer faster than an enrolled one, and
        the caller's own speech is not embedded (they may have opted out).
        """
        ensure_not_empty(clip)
        frames = self.detector.analysis_of(clip, analysis)
        assess(clip, self.config.quality, min_speech_s=self.config.verification.min_speech_s,
               detector=self.detector, analysis=frames)
        speech = self.detector.speech_only(clip, frames)
        noise = np.random.default_rng().standard_normal(max(speech.samples.shape[0], 160)).astype(np.float32)
        self.embedder.embed(AudioClip(noise * 0.01, speech.sample_rate))

    # --- identification ----------------------------------------------------
    def identify(self, clip: AudioClip, top_k: int = 5) -> tuple[QualityReport, list[Candidate]]:
        ensure_not_empty(clip)
        quality = assess(clip, self.config.quality, min_speech_s=self.config.verification.min_speech_s,
                         detector=self.detector)
        if not quality.ok:
            return quality, []
        test = self.embedder.embed(self.detector.speech_only(clip))
        index = self._current_index()
        return quality, [Candidate(s, float(v)) for s, v in index.top_k(test, top_k)]

    # --- async wrappers for the service --------------------------------------
    async def aenroll(self, speaker_id: str, clips: Sequence[AudioClip]) -> EnrolmentResult:
        return await self.run(self.enroll, speaker_id, clips)

    async def aprepare_enrolment(self, clips: Sequence[AudioClip]) -> PreparedEnrolment:
        return await self.run(self.prepare_enrolment, clips)

    async def astore_enrolment(self, speaker_id: str, prepared: PreparedEnrolment) -> EnrolmentResult:
        return await self.run(self.store_enrolment, speaker_id, prepared)

    async def aspend_like_verify(self, clip: AudioClip, analysis: FrameAnalysis | None = None) -> None:
        await self.run(self.spend_like_verify, clip, analysis, shed=True)

    async def averify(self, speaker_id: str, clip: AudioClip, analysis: FrameAnalysis | None = None) -> Decision:
        """Raises EngineBusyError rather than queueing past the bound: the call can use another factor."""
        return await self.run(self.verify, speaker_id, clip, analysis, shed=True)

    async def avoiceprint_for(self, speaker_id: str) -> Voiceprint:
        # A database read, not model work: it does not wait behind (or take a place in) the inference queue.
        return await asyncio.to_thread(self.voiceprint_for, speaker_id)

    async def acheck_utterance(self, clip: AudioClip) -> QualityReport:
        return await self.run(self.check_utterance, clip)

    async def run(self, fn, *args, shed: bool = False):  # type: ignore[no-untyped-def]
        """Run ``fn(*args)`` on the engine's bounded inference queue (model work never blocks the event loop)."""
        return await self.inference.run(fn, *args, shed=shed)

    def close(self) -> None:
        self.inference.close()
        self._background.shutdown(wait=True, cancel_futures=True)

    # --- cached derived state ----------------------------------------------
    def calibration(self, normalisation: str) -> Calibration:
        """The thresholds this engine decides with: stored by `ivr calibrate`, else the shipped defaults."""
        stored = self.store.get_calibration(self.model_id, normalisation)
        return stored or default_calibration(self.model_id, normalisation, self.config.verification.target_far)

    def population(self) -> Population | None:
        """The speakers scores are normalised against: the enrolled voiceprints of this model, with
        their enrolment utterances, plus the configured cohort file; None when there are none."""
        ids, matrix = self.store.load_matrix(self.model_id)
        population = None
        if ids:
            rng = np.random.default_rng(0)  # seeded: the same store always gives the same population
            if len(ids) > MAX_STORE_COHORT:
                pick = rng.choice(len(ids), MAX_STORE_COHORT, replace=False)
                ids, matrix = [ids[i] for i in pick], matrix[pick]
            # The statistics use at most a few thousand utterances; load no more speakers' than that needs.
            wanted = (ids if len(ids) <= MAX_UTTERANCE_SPEAKERS
                      else [ids[i] for i in rng.choice(len(ids), MAX_UTTERANCE_SPEAKERS, replace=False)])
            utt_ids, utterances = self.store.load_utterances(self.model_id, wanted)
            population = Population(matrix, tuple(ids), utterances if utt_ids else
                                    np.zeros((0, matrix.shape[1]), np.float32), tuple(utt_ids))
        cohort_dir = self.config.verification.cohort_dir
        if cohort_dir is not None:
            cohort = Cohort.load(cohort_dir, self.model_id)
            # Cohort labels are file names: prefixed so they never collide with an enrolled id.
            extra = Population.of_recordings(cohort.vectors, [f"cohort:{label}" for label in cohort.labels])
            population = extra if population is None else population.plus(extra)
        return population

    def normaliser(self) -> ScoreNormaliser | None:
        """The normaliser decisions use now (None: too few speakers to build one)."""
        return self._current_normalisation().normaliser

    @property
    def cache_builds(self) -> dict[str, int]:
        """How often the cohort and the identification index were built since start (logs, tests)."""
        return {"cohort": self._cohort.rebuilds, "index": self._index.rebuilds}

    def enrolled_vectors(self) -> np.ndarray:
        """Every enrolled voiceprint of this model (unit rows, a read-only view of the identification index)."""
        return self._current_index().snapshot()[1]

    def warm_caches(self) -> None:
        """Build the cohort and the identification index now (at the worker's start), not in a caller's call."""
        self._current_normalisation()
        self._current_index()

    def _current_normalisation(self) -> _Normalisation:
        self._follow_store()
        return self._cohort.get()

    def _current_index(self) -> IdentificationIndex:
        self._follow_store()
        return self._index.get()

    def _build_normalisation(self) -> _Normalisation:
        population = self.population()
        vconf = self.config.verification
        normaliser = None
        if population is not None and population.voiceprints.shape[0] >= 3:
            try:
                normaliser = build_normaliser(vconf.normalisation, population, layout_of(self.embedder),
                                              top_n=vconf.cohort_top_n)
            except ValueError as e:  # a degenerate population: decide on plain cosine, and say why
                log.warning("score normalisation %s unavailable: %s", vconf.normalisation, e)
        return _Normalisation(normaliser, population)

    def _build_index(self) -> IdentificationIndex:
        ids, matrix = self.store.load_matrix(self.model_id)
        return (IdentificationIndex.from_matrix(self.model_id, ids, matrix) if ids
                else IdentificationIndex(self.model_id, self.embedder.dim))

    def _absorb_into_index(self, index: IdentificationIndex, speakers: frozenset[str]) -> None:
        for speaker in speakers:
            voiceprint = self.store.get_voiceprint(speaker, self.model_id)
            if voiceprint is not None:  # None: enrolled with another model, or erased since
                index.add(speaker, voiceprint.vector)

    def _follow_store(self) -> None:
        """Apply enrolments and erasures by any process since the last look (one small query)."""
        with self._lock:
            mark, lapsed = self._change_mark, time.monotonic() - self._synced_at > CHANGE_MEMORY_S / 2
        changes = self.store.changes_since(mark)
        if lapsed:
            # Not looked for a long time: the journal may have pruned what we missed.
            self._cohort.forget()
            self._index.forget()
        if changes.erased:
            self._drop(set(changes.erased))
        if changes.enrolled:
            self._cohort.enrolled(changes.enrolled)
            self._index.enrolled(changes.enrolled)
        with self._lock:
            self._change_mark = max(self._change_mark, changes.mark)
            self._synced_at = time.monotonic()

    def drop_cached(self, speaker_id: str) -> None:
        """This process erased ``speaker_id`` (opt-out, erasure): no cache may keep it a moment longer."""
        self._drop({speaker_id})

    def _drop(self, speakers: set[str]) -> None:
        erased = frozenset(speakers)
        self._cohort.erased(erased)
        self._index.erased(erased)

    def forget(self, speaker_id: str) -> bool:
        """Erase a speaker (right to erasure) and drop cached copies of their voiceprint."""
        existed = self.store.delete_speaker(speaker_id)
        self.drop_cached(speaker_id)
        return existed


def _population_holds(current: _Normalisation, speakers: frozenset[str]) -> bool:
    population = current.population
    return population is not None and bool(speakers & (set(population.speakers) | set(population.utterance_speakers)))


def _index_holds(index: IdentificationIndex, speakers: frozenset[str]) -> bool:
    return any(s in index for s in speakers)


def _min_or_none(values) -> float | None:  # type: ignore[no-untyped-def]
    present = [v for v in values if v is not None]
    return round(min(present), 1) if present else None


def open_engine(config: CoreConfig) -> VoiceprintEngine:
    """Load the configured model and open the configured store (what the CLI and the service do at start)."""
    from voiceprints.embedding.select import load_embedder
    from voiceprints.store.sql import open_store

    return VoiceprintEngine(load_embedder(config.model), open_store(config), config)
