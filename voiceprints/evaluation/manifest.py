"""Labelled-recordings manifests: the CSV format of ``shared/data/manifest.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from voiceprints.errors import VoiceprintError

REQUIRED = ("path", "speaker", "utterance_id")


@dataclass(frozen=True)
class Item:
    path: Path
    speaker: str
    utterance_id: str
    role: str  # "cohort" rows are impostor-only; anything else ("eval", "digits", "") is a regular speaker

    @property
    def is_cohort(self) -> bool:
        return self.role == "cohort"


def read_manifest(path: Path, roles: set[str] | None = None) -> list[Item]:
    """Rows of the manifest; ``path`` is relative to the CSV's folder. Missing files are an error up front."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise VoiceprintError(f"manifest {path} lacks column(s) {', '.join(missing)}; needs {', '.join(REQUIRED)}")
            rows = list(reader)
    except FileNotFoundError:
        raise VoiceprintError(f"manifest {path} does not exist") from None
    base = path.parent
    items = [
        Item(base / r["path"], r["speaker"], r["utterance_id"], (r.get("role") or "").strip())
        for r in rows
        if roles is None or (r.get("role") or "") in roles
    ]
    absent = [str(i.path) for i in items if not i.path.exists()]
    if absent:
        raise VoiceprintError(f"{len(absent)} file(s) listed in {path} do not exist, e.g. {absent[0]}")
    if not items:
        raise VoiceprintError(f"manifest {path} lists no recordings" + (f" with role {sorted(roles)}" if roles else ""))
    return items
