"""Audit entries as CSV (for spreadsheets) or JSON (for scripts)."""

from __future__ import annotations

import csv
import json
from typing import Iterable, TextIO

from ivr.audit.log import AuditRecord

CSV_COLUMNS = (
    "id",
    "at",
    "call_id",
    "flow",
    "identity",
    "caller_hash",
    "factors",
    "decision",
    "rule",
    "result",
    "reason",
    "error",
    "latency_ms",
    "locked_out",
    "policy_version",
)


def factors_text(factors: list[dict[str, object]]) -> str:
    """``voice:fail(0.412<0.600) > otp:pass``: the factors in one cell, in the order tried."""
    parts = []
    for f in factors:
        text = f"{f.get('factor')}:{f.get('outcome')}"
        score, threshold = f.get("score"), f.get("threshold")
        if isinstance(score, (int, float)):
            text += (
                f"({score:.3f}" + (f"/{threshold:.3f}" if isinstance(threshold, (int, float)) else "") + ")"
            )
        parts.append(text)
    return " > ".join(parts)


def write_csv(records: Iterable[AuditRecord], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for r in records:
        data = r.to_dict()
        data["factors"] = factors_text(r.factors)
        writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
        count += 1
    return count


def write_json(records: Iterable[AuditRecord], out: TextIO) -> int:
    rows = [r.to_dict() for r in records]
    json.dump(rows, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return len(rows)
