"""Bulk import of customers and their knowledge answers from CSV.

All or nothing: every row is validated before anything is written, and all
writes share one transaction, so a file with one bad row changes nothing and
the operator gets every problem (with its line number) in one go. Answers
are hashed before the transaction and never logged or echoed in errors.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ivr.contacts import parse_e164, parse_email
from ivr.db.customers import find_customer
from ivr.db.engine import Database
from ivr.db.models import LANGUAGES, OTP_CHANNELS, Customer
from ivr.knowledge.catalogue import CATALOGUE, AnswerFormatError
from ivr.knowledge.service import KnowledgeService, store_hashed_answers

CONTACT_COLUMNS = ("external_id", "phone", "email", "preferred_channel", "language")
COLUMNS = CONTACT_COLUMNS + tuple(CATALOGUE)
# Matches customers.external_id.
_MAX_EXTERNAL_ID = 64


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.problem}"


class CsvImportError(Exception):
    """Nothing was imported; ``errors`` lists every problem found."""

    code = "csv_import_failed"

    def __init__(self, path: Path, errors: list[RowError]) -> None:
        self.path = path
        self.errors = errors
        shown = "\n  ".join(str(e) for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{path}: nothing imported, {len(errors)} problem(s):\n  {shown}{more}")


@dataclass(frozen=True)
class ImportReport:
    customers_added: int
    customers_updated: int
    answers_stored: int


@dataclass
class _Row:
    line: int
    external_id: str
    phone: str | None
    email: str | None
    channel: str
    language: str
    answers: dict[str, str] = field(default_factory=dict)  # plain; lives only until hashed


def _validate_header(path: Path, header: list[str] | None) -> None:
    if not header:
        raise CsvImportError(path, [RowError(1, "header", "the file is empty; expected a header line")])
    errors = []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        errors.append(RowError(1, "header", f"unknown column(s) {', '.join(map(repr, unknown))}; "
                                            f"allowed: {', '.join(COLUMNS)}"))
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        errors.append(RowError(1, "header", f"column(s) {', '.join(duplicated)} appear more than once"))
    if "external_id" not in header:
        errors.append(RowError(1, "header", "the external_id column is required"))
    if errors:
        raise CsvImportError(path, errors)


def _parse_row(line: int, values: dict[str, str | None], errors: list[RowError]) -> _Row | None:
    def cell(name: str) -> str | None:
        value = (values.get(name) or "").strip()
        return value or None

    before = len(errors)
    external_id = cell("external_id")
    if external_id is None:
        errors.append(RowError(line, "external_id", "missing"))
    elif len(external_id) > _MAX_EXTERNAL_ID:
        errors.append(RowError(line, "external_id", f"longer than {_MAX_EXTERNAL_ID} characters"))
    phone = email = None
    if (raw := cell("phone")) is not None:
        try:
            phone = parse_e164(raw)
        except ValueError as exc:
            errors.append(RowError(line, "phone", str(exc)))
    if (raw := cell("email")) is not None:
        try:
            email = parse_email(raw)
        except ValueError as exc:
            errors.append(RowError(line, "email", str(exc)))
    # Without an explicit choice: SMS when there is a phone, else e-mail.
    explicit = cell("preferred_channel")
    channel = (explicit or ("email" if cell("email") and not cell("phone") else "sms")).lower()
    if channel not in OTP_CHANNELS:
        errors.append(RowError(line, "preferred_channel", f"{channel!r} is not one of {', '.join(OTP_CHANNELS)}"))
    elif explicit and channel == "email" and not cell("email"):
        errors.append(RowError(line, "preferred_channel", "email preferred but no email address given"))
    elif explicit and channel != "email" and not cell("phone"):
        errors.append(RowError(line, "preferred_channel", f"{channel} preferred but no phone number given"))
    language = (cell("language") or "es").lower()[:2]
    if language not in LANGUAGES:
        errors.append(RowError(line, "language", f"{cell('language')!r} is not one of {', '.join(LANGUAGES)}"))
    answers = {}
    for key, question in CATALOGUE.items():
        if (raw := cell(key)) is None:
            continue
        try:
            question.normalise(raw)  # validated now, hashed later
        except AnswerFormatError as exc:
            errors.append(RowError(line, key, str(exc)))
        else:
            answers[key] = raw
    if len(errors) > before or external_id is None:
        return None
    return _Row(line, external_id, phone, email, channel, language, answers)


def import_customers_csv(db: Database, path: Path | str, *, knowledge: KnowledgeService | None = None) -> ImportReport:
    """Add or update customers from ``path``; an empty answer cell keeps the answer already on file.

    ``knowledge`` must be configured like the service that later checks the
    answers (same pepper); by default an unpeppered one.
    """
    path = Path(path)
    knowledge = knowledge or KnowledgeService(db)
    errors: list[RowError] = []
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    # utf-8-sig: spreadsheets save CSV with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _validate_header(path, reader.fieldnames)
        for values in reader:
            line = reader.line_num
            if None in values:
                errors.append(RowError(line, "row", "more cells than header columns"))
                continue
            if not any((v or "").strip() for v in values.values()):
                continue  # blank line
            row = _parse_row(line, values, errors)
            if row is None:
                continue
            if row.external_id in first_line:
                errors.append(RowError(line, "external_id", f"duplicate of line {first_line[row.external_id]}"))
                continue
            first_line[row.external_id] = line
            rows.append(row)
    if errors:
        raise CsvImportError(path, errors)

    # argon2 releases the GIL: hash on all cores, it dominates import time.
    jobs = [(row, key, plain) for row in rows for key, plain in row.answers.items()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        hashes = list(pool.map(lambda job: knowledge.hash_answer(job[1], job[2]), jobs))
    hashed: dict[int, dict[str, str]] = {}
    for (row, key, _), answer_hash in zip(jobs, hashes):
        hashed.setdefault(row.line, {})[key] = answer_hash
    for row in rows:
        row.answers.clear()

    added = updated = 0
    with db.transaction() as session:
        for row in rows:
            customer = find_customer(session, row.external_id)
            if customer is None:
                customer = Customer(external_id=row.external_id)
                session.add(customer)
                added += 1
            else:
                updated += 1
            customer.phone_e164 = row.phone
            customer.email = row.email
            customer.preferred_otp_channel = row.channel
            customer.language = row.language
            session.flush()
            store_hashed_answers(session, customer.id, hashed.get(row.line, {}))
    return ImportReport(added, updated, sum(len(h) for h in hashed.values()))
