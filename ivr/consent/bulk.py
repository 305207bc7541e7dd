"""Consent given outside the IVR (a signed form, a recorded call, the bank's CRM), recorded in bulk.

Bulk enrolment from recorded calls needs each account's consent in the
registry, with when, how and under which privacy notice it was given
(``ivr consent import``). Accounts whose latest event is an opt-out are left
as they are: an older consent kept elsewhere must not undo a later opt-out.
Accounts already consenting get no second event.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ivr.consent.registry import ConsentRegistry
from ivr.db.models_policy import SUBJECT_LEN


class ConsentFileError(Exception):
    code = "bad_consent_file"


@dataclass
class ConsentImport:
    recorded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    opted_out: list[str] = field(default_factory=list)  # left alone: their opt-out stands
    invalid: list[str] = field(default_factory=list)  # "line N: why"

    def to_dict(self) -> dict[str, object]:
        return {"recorded": len(self.recorded), "already_consented": len(self.already),
                "opted_out_left_alone": self.opted_out, "invalid": self.invalid}


def read_accounts(path: Path) -> list[tuple[int, str]]:
    """(line, account) from a CSV with an ``account`` column (an enrolment manifest will do)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsentFileError(f"{path} cannot be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    if "account" not in fields:
        raise ConsentFileError(f"{path} has no 'account' column; the first line must name the columns")
    return [(reader.line_num, (row.get(fields["account"]) or "").strip()) for row in reader]


def record_consents(registry: ConsentRegistry, accounts: list[tuple[int, str]], channel: str) -> ConsentImport:
    result = ConsentImport()
    seen: set[str] = set()
    for line, account in accounts:
        if not account or len(account) > SUBJECT_LEN:
            result.invalid.append(f"line {line}: account must be 1-{SUBJECT_LEN} characters")
            continue
        if account in seen:
            continue
        seen.add(account)
        state = registry.state(account)
        if state.opted_out:
            result.opted_out.append(account)
        elif state.consented:
            result.already.append(account)
        else:
            registry.record_consent(account, channel)
            result.recorded.append(account)
    return result
