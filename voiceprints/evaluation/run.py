"""One evaluation run: manifest -> embeddings -> trials -> scores per normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voiceprints.audio.vad import SpeechDetector
from voiceprints.embedding.base import Embedder
from voiceprints.evaluation.embed_cache import embed_items
from voiceprints.evaluation.manifest import read_manifest
from voiceprints.evaluation.report import AccuracyReport, accuracy
from voiceprints.evaluation.trials import Protocol, TrialScores, score_trials


@dataclass(frozen=True)
class ConditionResult:
    normalisation: str
    scores: TrialScores
    report: AccuracyReport


@dataclass(frozen=True)
class EvaluationResult:
    manifest: Path
    model_id: str
    channel: str
    protocol: str
    files: int
    skipped: list[str]
    conditions: list[ConditionResult]
    notes: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "manifest": str(self.manifest), "model_id": self.model_id, "channel": self.channel,
            "protocol": self.protocol, "files": self.files, "skipped": self.skipped,
            "results": [c.report.to_dict() | {"normalisation": c.normalisation} for c in self.conditions],
            "notes": self.notes,
        }


def evaluate(manifest: Path, embedder: Embedder, detector: SpeechDetector, *, channel: str, protocol: Protocol,
             normalisations: list[str], cache_dir: Path | None, top_n: int, min_cohort_speakers: int = 20,
             progress: bool = True) -> EvaluationResult:
    """Scores and accuracy per normalisation.

    Normalisations are only evaluated when each trial's cohort (every speaker but the
    trial's two) has ``min_cohort_speakers`` speakers, the same rule the
    engine applies before it normalises; otherwise the note says why not.
    """
    items = read_manifest(manifest)
    emb, failed = embed_items(items, embedder, detector, channel=channel, cache_dir=cache_dir, progress=progress)
    conditions, notes = [], []
    cohort_speakers = len({it.speaker for it in items}) - 2
    for norm in normalisations:
        if norm != "none" and cohort_speakers < min_cohort_speakers:
            notes.append(f"{norm} not evaluated: a trial's cohort would have {cohort_speakers} speakers, "
                         f"fewer than the {min_cohort_speakers} the engine requires")
            continue
        scores = score_trials(items, emb, protocol, norm, top_n=top_n)
        name = f"{manifest.parent.name}/{channel}/{protocol}/{norm}"
        conditions.append(ConditionResult(norm, scores, accuracy(name, scores)))
    return EvaluationResult(manifest, embedder.model_id, channel, protocol, len(items),
                            [str(items[i].path) for i in failed], conditions, notes)
