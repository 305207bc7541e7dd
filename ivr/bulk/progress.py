"""What a bulk enrolment has done, in a small file beside the manifest, so an interrupted run resumes.

One JSON object per line: first which manifest (its SHA-256) and which model
the run is for, then one outcome per finished row, appended and flushed as
it happens. A rerun skips rows already enrolled or skipped and retries the
rows that failed (consent may have been recorded since, or the file fixed).
A progress file of another manifest or model is refused rather than
trusted: rows would be skipped that were never enrolled with this model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

# Outcomes a rerun does not repeat.
FINAL = ("enrolled", "skipped")


class ProgressMismatchError(Exception):
    code = "progress_mismatch"


@dataclass(frozen=True)
class RowOutcome:
    line: int
    account: str
    status: str  # "enrolled", "skipped" or "failed"
    code: str  # enrolled, replaced, already_enrolled, no_consent, bad_audio, too_little_speech, ...
    detail: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ProgressLog:
    path: Path
    done: dict[int, RowOutcome] = field(default_factory=dict)  # from earlier runs: line -> final outcome
    _out: IO[str] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path, *, manifest_sha256: str, model_id: str, restart: bool = False) -> "ProgressLog":
        header = {"manifest_sha256": manifest_sha256, "model_id": model_id}
        log = cls(Path(path))
        if log.path.exists() and not restart:
            lines = log.path.read_text(encoding="utf-8").splitlines()
            first = json.loads(lines[0]) if lines else {}
            if {k: first.get(k) for k in header} != header:
                raise ProgressMismatchError(
                    f"progress file {log.path} belongs to another manifest or model (the manifest changed, or "
                    "the model did); pass --restart to start over (accounts already enrolled are skipped)"
                )
            for line in lines[1:]:
                try:
                    outcome = RowOutcome(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short when the run was killed
                if outcome.status in FINAL:
                    log.done[outcome.line] = outcome
                else:
                    log.done.pop(outcome.line, None)
            log._out = log.path.open("a", encoding="utf-8")
            return log
        fd = os.open(log.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it names accounts
        log._out = os.fdopen(fd, "w", encoding="utf-8")
        log._write(header)
        return log

    def record(self, outcome: RowOutcome) -> None:
        self._write(outcome.to_dict())

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _write(self, data: dict[str, object]) -> None:
        assert self._out is not None
        self._out.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._out.flush()
