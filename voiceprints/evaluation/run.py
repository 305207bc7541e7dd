"""One evaluation run: manifest -> roles -> probes (engine's quality gate + embedding) -> trials -> figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voiceprints.embedding.base import layout_of
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import VoiceprintError
from voiceprints.evaluation.engine_protocol import EngineTrials, run_engine_protocol
from voiceprints.evaluation.manifest import read_manifest, select_roles
from voiceprints.evaluation.probes import probe_items
from voiceprints.evaluation.report import AccuracyReport, accuracy
from voiceprints.evaluation.trials import Protocol, TrialScores, score_trials
from voiceprints.store.base import Calibration


@dataclass(frozen=True)
class ConditionResult:
    normalisation: str
    scores: TrialScores | None  # None: too few trials of either kind to compute error rates
    report: AccuracyReport | None
    engine: EngineTrials | None = None  # --protocol engine: what the engine decided


@dataclass(frozen=True)
class EvaluationResult:
    manifest: Path
    model_id: str
    channel: str
    protocol: str
    roles: tuple[str, ...]
    files: int
    skipped: list[str]  # unreadable files
    gated: int  # clips the engine's quality gate answers INCONCLUSIVE for: in no trial
    conditions: list[ConditionResult]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        results = []
        for c in self.conditions:
            row: dict[str, object] = {"normalisation": c.normalisation}
            if c.report is not None:
                row |= c.report.to_dict()
            if c.engine is not None:
                row["engine"] = c.engine.to_dict()
            results.append(row)
        return {
            "manifest": str(self.manifest), "model_id": self.model_id, "channel": self.channel,
            "protocol": self.protocol, "roles": list(self.roles), "files": self.files, "skipped": self.skipped,
            "gated_by_quality": self.gated, "results": results, "notes": self.notes,
        }


def evaluate(manifest: Path, engine: VoiceprintEngine, *, channel: str, protocol: Protocol,
             normalisations: Sequence[str], cache_dir: Path | None, roles: Sequence[str] | None = None,
             enrol_utterances: int = 3, cohort_folds: int = 2, calibrations: Sequence[Calibration] = (),
             progress: bool = True) -> EvaluationResult:
    """Accuracy per normalisation on ``manifest``, every clip through the engine's quality gate first.

    pairs / enrol3: a normalisation is evaluated only when each trial's
    population (every speaker but the trial's two) has ``min_cohort_size``
    speakers, the rule the engine applies before it normalises.
    engine: see :mod:`voiceprints.evaluation.engine_protocol`.
    """
    selection = select_roles(read_manifest(manifest), roles)
    items = selection.items
    notes = list(selection.notes)
    probes, skipped = probe_items(items, engine, channel=channel, cache_dir=cache_dir, progress=progress)
    gated = sum(1 for p in probes if p is not None and not p.quality.ok)
    if gated:
        notes.append(f"{gated} of {len(items)} clip(s) fail the engine's quality gate (the engine would answer "
                     f"INCONCLUSIVE: too little speech, too noisy or clipped) and are in no scored trial")
    name = f"{manifest.parent.name}/{channel}/{protocol}"
    conditions: list[ConditionResult] = []
    if protocol == "engine":
        for trials in run_engine_protocol(items, probes, engine, channel=channel, normalisations=normalisations,
                                          enrol_utterances=enrol_utterances, cohort_folds=cohort_folds,
                                          calibrations=calibrations):
            scores = TrialScores(np.array(trials.target_scores), np.array(trials.nontarget_scores))
            report = accuracy(f"{name}/{trials.normalisation}", scores) if scores.target.size and scores.nontarget.size else None
            conditions.append(ConditionResult(trials.normalisation, scores, report, trials))
            if trials.fallback_trials:
                notes.append(f"{trials.normalisation}: {trials.fallback_trials} trial(s) decided on plain cosine: "
                             f"the population was smaller than min_cohort_size")
    else:
        usable = [p is not None and p.vector is not None for p in probes]
        if not any(ok and not it.is_cohort for ok, it in zip(usable, items)):
            raise VoiceprintError(f"none of the {len(items)} selected clips can be scored: {gated} fail the "
                                  f"engine's quality gate, {len(skipped)} are unreadable")
        emb = np.full((len(items), engine.embedder.dim), np.nan, dtype=np.float32)
        for i, p in enumerate(probes):
            if p is not None and p.vector is not None:
                emb[i] = p.vector
        speakers = {it.speaker for it, ok in zip(items, usable) if ok}
        population = len(speakers) - 2
        min_size = engine.config.verification.min_cohort_size
        for norm in normalisations:
            if norm != "none" and population < min_size:
                notes.append(f"{norm} not evaluated: a trial's population would have {population} speakers, "
                             f"fewer than the {min_size} the engine requires")
                continue
            scores = score_trials(items, emb, protocol, norm, top_n=engine.config.verification.cohort_top_n,
                                  layout=layout_of(engine.embedder))
            conditions.append(ConditionResult(norm, scores, accuracy(f"{name}/{norm}", scores)))
    return EvaluationResult(manifest, engine.model_id, channel, protocol, selection.roles, len(items), skipped,
                            gated, conditions, notes)
