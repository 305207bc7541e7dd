"""Score-normalisation cohorts: embeddings of speakers who are not the claimant.

The default cohort is the other enrolled speakers of the same model (in-domain:
same channel, same population — the team measured that an out-of-domain
cohort makes AS-norm worse, see shared/notes/models.md). ``ivr cohort build``
makes a cohort file from a folder of recordings for a new deployment that has
too few enrolled speakers yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceprints.errors import ReenrolmentNeededError, VoiceprintError

COHORT_FILE = "cohort.npz"


@dataclass(frozen=True)
class Cohort:
    model_id: str
    labels: tuple[str, ...]  # one per row: speaker or file label
    vectors: np.ndarray  # float32 (n, dim), unit rows

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / COHORT_FILE
        tmp = directory / (COHORT_FILE + ".tmp.npz")
        np.savez(tmp, vectors=self.vectors.astype(np.float32), meta=np.array(json.dumps(
            {"model_id": self.model_id, "labels": list(self.labels)})))
        tmp.replace(path)  # atomic: a running service never reads half a file
        return path

    @classmethod
    def load(cls, directory: Path, model_id: str) -> "Cohort":
        path = directory / COHORT_FILE
        if not path.exists():
            raise VoiceprintError(f"no cohort file {path}; build one with `ivr cohort build {directory} FILES...`")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            vectors = data["vectors"].astype(np.float32)
        if meta["model_id"] != model_id:
            raise ReenrolmentNeededError(
                f"cohort {path} was built with model {meta['model_id']}, but the engine uses {model_id}; "
                f"rebuild it with `ivr cohort build`"
            )
        return cls(model_id=model_id, labels=tuple(meta["labels"]), vectors=vectors)
