"""Labelled-recordings manifests: the CSV format of ``shared/data/manifest.csv``, and which rows to use.

Roles (the optional ``role`` column):

* ``cohort`` — speakers with one recording each: impostor-only (never enrolled,
  never a target), and the normalisation cohort where a protocol uses one.
* ``digits`` — isolated spoken digits (0.3–0.6 s each). Far too short to verify
  on, and a different kind of speech from sentences: they are never mixed with
  sentence speakers. By default they are left out when the manifest has
  anything else; ``--roles digits`` evaluates them alone (the quality gate then
  says how many clips are too short to be a trial).
* anything else (``eval``, empty) — regular speakers: enrolled and tested.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceprints.errors import VoiceprintError

REQUIRED = ("path", "speaker", "utterance_id")
COHORT = "cohort"
DIGITS = "digits"


@dataclass(frozen=True)
class Item:
    path: Path
    speaker: str
    utterance_id: str
    role: str  # "cohort" rows are impostor-only; anything else is a regular speaker

    @property
    def is_cohort(self) -> bool:
        return self.role == COHORT


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
        if roles is None or (r.get("role") or "").strip() in roles
    ]
    absent = [str(i.path) for i in items if not i.path.exists()]
    if absent:
        raise VoiceprintError(f"{len(absent)} file(s) listed in {path} do not exist, e.g. {absent[0]}")
    if not items:
        raise VoiceprintError(f"manifest {path} lists no recordings" + (f" with role {sorted(roles)}" if roles else ""))
    return items


@dataclass(frozen=True)
class Selection:
    items: list[Item]
    roles: tuple[str, ...]  # the roles evaluated
    notes: tuple[str, ...]  # what was left out, and why


def select_roles(items: Sequence[Item], roles: Sequence[str] | None = None) -> Selection:
    """The rows to evaluate: ``roles`` as asked, or the default (every role but ``digits`` when there are others).

    Refuses a selection that mixes ``digits`` with sentence speakers.
    """
    counts = Counter(it.role for it in items)
    present = set(counts)
    notes: list[str] = []
    if roles is None:
        chosen = present - {DIGITS} if present - {DIGITS, COHORT} else present
        if DIGITS in present - chosen:
            notes.append(f"{counts[DIGITS]} row(s) with role 'digits' left out: isolated digits are not mixed "
                         "with sentence speakers (evaluate them alone with --roles digits)")
    else:
        chosen = {r.strip() for r in roles}
        unknown = chosen - present
        if unknown:
            known = ", ".join(f"{r or '(empty)'} ({n})" for r, n in sorted(counts.items()))
            raise VoiceprintError(f"no rows with role {', '.join(sorted(unknown))} in the manifest; it has: {known}")
        if DIGITS in chosen and len(chosen) > 1:
            raise VoiceprintError("role 'digits' cannot be evaluated together with other roles "
                                  f"({', '.join(sorted(chosen - {DIGITS}))}): isolated digits and sentences "
                                  "are different tasks; evaluate them separately")
    selected = [it for it in items if it.role in chosen]
    if not any(not it.is_cohort for it in selected):
        raise VoiceprintError("the selected rows are all role 'cohort' (impostor-only): "
                              "there is nobody to enrol; add --roles with the speakers' role")
    return Selection(selected, tuple(sorted(chosen)), tuple(notes))
