"""Attack: a bad contact on file receives the customer's codes and notices.

Before: any string with an @ and a dot was an e-mail address (a throw-away
mailbox included) and phone numbers were only checked for digits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.db.customers import CustomerDirectory
from ivr.db.engine import open_database
from ivr.knowledge.importer import CsvImportError, import_customers_csv
from ivr.knowledge.service import KnowledgeService


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


def test_every_bad_contact_is_named_with_its_reason_and_nothing_is_imported(db, tmp_path: Path):
    path = tmp_path / "customers.csv"
    path.write_text(
        "external_id,phone,email,preferred_channel,language\n"
        "3001,+57 300 123-4567,ana@bank.co,sms,es\n"
        "3002,,thief@mailinator.com,email,es\n"
        "3003,+57300123,,sms,es\n"
        "3004,,luis@@bank.co,email,en\n"
        "3005,+1 202 555 0123,bad@localhost,sms,en\n")
    with pytest.raises(CsvImportError) as raised:
        import_customers_csv(db, path, knowledge=KnowledgeService(db))
    problems = {(e.line, e.column): e.problem for e in raised.value.errors}
    assert "disposable" in problems[(3, "email")]
    assert "not a valid number" in problems[(4, "phone")]
    assert "not a valid address" in problems[(5, "email")]
    assert (6, "email") in problems
    assert (2, "phone") not in problems and (2, "email") not in problems
    assert CustomerDirectory(db).get("3001") is None, "nothing is half-imported"


def test_phone_numbers_are_stored_in_e164(db, tmp_path: Path):
    path = tmp_path / "customers.csv"
    path.write_text("external_id,phone,email,preferred_channel,language\n3001,+57 (300) 123-4567,,sms,es\n")
    import_customers_csv(db, path, knowledge=KnowledgeService(db))
    assert CustomerDirectory(db).get("3001").contact.phone_e164 == "+573001234567"
