"""``--protocol engine``: what a deployment gets, measured through the engine itself.

Each regular speaker is enrolled through :meth:`VoiceprintEngine.enroll` (their
first N utterances, with every enrolment check) into a temporary store; every
other recording is then probed once (:meth:`VoiceprintEngine.probe`: quality
gate + embedding) and decided against every enrolled account with
:meth:`VoiceprintEngine.decide` at the configured thresholds, exactly as
``verify`` would. Nothing here scores anything itself.

Cohort rows (single recordings, impostor-only) can also serve as the engine's
normalisation cohort (a cohort file, as ``ivr cohort build`` makes), the way a
deployment with fewer than ``min_cohort_size`` callers enrolled would run. A
recording must never normalise its own trials, so they are split into folds:
the recordings of one fold are tested by an engine whose cohort is the other
folds.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from voiceprints.cohort import Cohort
from voiceprints.engine import Probe, VoiceprintEngine
from voiceprints.errors import EnrolmentError
from voiceprints.evaluation.manifest import Item
from voiceprints.evaluation.probes import load_clip
from voiceprints.scoring.decision import Outcome
from voiceprints.store.base import Calibration
from voiceprints.store.crypto import KeyRing

log = logging.getLogger("voiceprints.evaluation")


@dataclass
class OutcomeCounts:
    trials: int = 0  # claims made
    gated: int = 0  # INCONCLUSIVE on audio quality: not a scored trial
    accept: int = 0
    grey: int = 0  # INCONCLUSIVE on the score: steps up
    reject: int = 0

    @property
    def scored(self) -> int:
        return self.accept + self.grey + self.reject

    def rate(self, n: int) -> float | None:
        return n / self.scored if self.scored else None

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"scored": self.scored, "accept_rate": self.rate(self.accept),
                               "grey_rate": self.rate(self.grey), "reject_rate": self.rate(self.reject)}


@dataclass
class EngineTrials:
    """Every claim the protocol made, as the engine decided it."""

    normalisation: str  # configured
    genuine: OutcomeCounts = field(default_factory=OutcomeCounts)
    impostor: OutcomeCounts = field(default_factory=OutcomeCounts)
    target_scores: list[float] = field(default_factory=list)  # scored trials decided with `normalisation`
    nontarget_scores: list[float] = field(default_factory=list)
    fallback_trials: int = 0  # decided on plain cosine because the population was too small
    thresholds: dict[str, dict[str, object]] = field(default_factory=dict)  # per normalisation used
    enrolled: int = 0
    enrolment_refused: list[str] = field(default_factory=list)
    probes: int = 0
    probes_gated: int = 0
    # One per claim: (account, utterance_id, outcome, score or None, normalisation used).
    records: list[tuple[str, str, str, float | None, str]] = field(default_factory=list, repr=False)

    @property
    def far(self) -> float | None:
        return self.impostor.rate(self.impostor.accept)

    @property
    def genuine_accept_rate(self) -> float | None:
        return self.genuine.rate(self.genuine.accept)

    def far_upper_95(self) -> float | None:
        """One-sided 95 % upper bound on the false-accept rate (Clopper-Pearson): what the count can vouch for."""
        n = self.impostor.scored
        return None if n == 0 else clopper_pearson_upper(self.impostor.accept, n)

    def to_dict(self) -> dict[str, object]:
        return {
            "normalisation": self.normalisation, "enrolled": self.enrolled,
            "enrolment_refused": self.enrolment_refused, "probes": self.probes, "probes_gated": self.probes_gated,
            "genuine": self.genuine.to_dict(), "impostor": self.impostor.to_dict(),
            "far": self.far, "far_upper_95": self.far_upper_95(), "genuine_accept_rate": self.genuine_accept_rate,
            "fallback_trials": self.fallback_trials, "thresholds": self.thresholds,
        }


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a binomial rate with k events in n trials."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(confidence, k + 1, n - k))


def _folds(items: Sequence[Item], n_folds: int) -> list[int]:
    """Fold of each item: cohort recordings and test recordings spread round-robin (-1: enrolment only)."""
    fold, counters = [], Counter[str]()
    for it in items:
        kind = "cohort" if it.is_cohort else "regular"
        fold.append(counters[kind] % n_folds)
        counters[kind] += 1
    return fold


def run_engine_protocol(
    items: Sequence[Item],
    probes: Sequence[Probe | None],
    engine: VoiceprintEngine,
    *,
    channel: str,
    normalisations: Sequence[str],
    enrol_utterances: int = 3,
    cohort_folds: int = 2,
    calibrations: Sequence[Calibration] = (),
) -> list[EngineTrials]:
    """Enrol, then decide every probe against every enrolled account, once per normalisation.

    ``probes[i]`` is ``engine.probe`` of item i on ``channel`` (None: unreadable).
    ``calibrations``: thresholds to decide with (copied into the temporary store);
    without them the engine uses its shipped defaults, as a fresh deployment does.
    ``cohort_folds`` >= 2 makes cohort rows the engine's cohort file, fold-wise; 0 never.
    """
    regular: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if not it.is_cohort:
            regular.setdefault(it.speaker, []).append(i)
    with tempfile.TemporaryDirectory(prefix="voiceauth-eval-") as tmp:
        from voiceprints.store.sql import SqlVoiceprintStore

        store = SqlVoiceprintStore(f"sqlite:///{Path(tmp) / 'evaluation.db'}", KeyRing.generate())
        try:
            for cal in calibrations:
                store.save_calibration(cal)
            base = VoiceprintEngine(engine.embedder, store, engine.config, engine.detector)
            enrolled, refused, enrol_idx = [], [], set()
            for speaker, idx in sorted(regular.items()):
                idx = sorted(idx, key=lambda i: items[i].utterance_id)
                if len(idx) <= enrol_utterances:
                    continue  # nothing left to test them with: their recordings stay impostor probes
                try:
                    base.enroll(speaker, [load_clip(items[i], channel) for i in idx[:enrol_utterances]])
                except EnrolmentError as exc:
                    refused.append(f"{speaker}: {exc}")
                    continue
                enrolled.append(speaker)
                enrol_idx.update(idx[:enrol_utterances])
            base.close()
            tests = [i for i in range(len(items)) if i not in enrol_idx]
            use_folds = cohort_folds >= 2 and any(items[i].is_cohort for i in tests)
            folds = _folds([items[i] for i in tests], cohort_folds if use_folds else 1)
            results = []
            for norm in normalisations:
                result = EngineTrials(norm, enrolled=len(enrolled), enrolment_refused=refused)
                for f in sorted(set(folds)):
                    config = engine.config.model_copy(deep=True)
                    config.verification.normalisation = norm  # type: ignore[assignment]
                    if use_folds:
                        config.verification.cohort_dir = _fold_cohort(
                            Path(tmp) / f"cohort-{f}", engine.model_id, items, probes,
                            [t for t, tf in zip(tests, folds) if tf != f and items[t].is_cohort])
                    fold_engine = VoiceprintEngine(engine.embedder, store, config, engine.detector)
                    try:
                        _decide_all(fold_engine, items, probes, [t for t, tf in zip(tests, folds) if tf == f],
                                    enrolled, result)
                    finally:
                        fold_engine.close()
                results.append(result)
            return results
        finally:
            store.close()


def _fold_cohort(directory: Path, model_id: str, items: Sequence[Item], probes: Sequence[Probe | None],
                 members: list[int]) -> Path | None:
    rows = [(items[i].utterance_id, p.vector) for i in members if (p := probes[i]) is not None and p.vector is not None]
    if not rows:
        return None
    Cohort(model_id, tuple(r[0] for r in rows), np.stack([r[1] for r in rows])).save(directory)
    return directory


def _decide_all(engine: VoiceprintEngine, items: Sequence[Item], probes: Sequence[Probe | None], tests: list[int],
                enrolled: list[str], result: EngineTrials) -> None:
    voiceprints = [engine.voiceprint_for(s) for s in enrolled]
    for t in tests:
        probe = probes[t]
        if probe is None:
            continue  # unreadable file: reported by the caller
        result.probes += 1
        result.probes_gated += not probe.quality.ok
        for vp in voiceprints:
            genuine = vp.speaker_id == items[t].speaker
            counts = result.genuine if genuine else result.impostor
            counts.trials += 1
            decision = engine.decide(vp, probe)
            result.records.append((vp.speaker_id, items[t].utterance_id, decision.outcome.value, decision.score,
                                   decision.normalisation))
            if decision.score is not None and decision.normalisation not in result.thresholds:
                cal = engine.calibration(decision.normalisation)
                result.thresholds[decision.normalisation] = {
                    "accept": decision.accept_threshold, "reject": decision.reject_threshold, "source": cal.source,
                    "n_target": cal.n_target, "n_nontarget": cal.n_nontarget}
            if decision.score is None:
                counts.gated += 1
                continue
            if decision.outcome is Outcome.ACCEPT:
                counts.accept += 1
            elif decision.outcome is Outcome.REJECT:
                counts.reject += 1
            else:
                counts.grey += 1
            if decision.normalisation != result.normalisation:
                result.fallback_trials += 1
            elif math.isfinite(decision.score):
                (result.target_scores if genuine else result.nontarget_scores).append(decision.score)
