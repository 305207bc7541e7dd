"""Importing customers and knowledge answers from CSV: all or nothing, line-numbered errors, no plaintext kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ivr.db import Customer, KnowledgeAnswer, open_database
from ivr.db.customers import CustomerDirectory
from ivr.knowledge import CsvImportError, KnowledgeService, import_customers_csv

HEADER = "external_id,phone,email,preferred_channel,language,dob,doc_last4,card_last4,postal_code\n"
GOOD = (
    HEADER
    + "700123,+57 300 123 4567,maria.lopez@example.com,sms,es,15/03/1987,79.771.3318,4821,110231\n"
    + "700124,,john@example.org,,EN,1990-12-01,,,\n"
    + "700125,+525512345678,,voice,es-MX,19751104,5562,,06600\n"
)
SECRETS = ["15031987", "3318", "4821", "110231", "01121990", "04111975", "5562", "06600"]


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


def write(tmp_path: Path, content: str, name: str = "customers.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_text(("\ufeff" if bom else "") + content, encoding="utf-8")
    return path


# Stored timestamps ("2025-06-01 12:00:00.123456") have arbitrary microsecond
# digits that could contain a 4-digit answer by chance; they are not answers.
_TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?")


def database_bytes(tmp_path: Path) -> bytes:
    return _TIMESTAMP.sub(b"", b"".join(p.read_bytes() for p in tmp_path.glob("ivr.db*")))


def counts(db) -> tuple[int, int]:
    with db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Customer)),
            session.scalar(select(func.count()).select_from(KnowledgeAnswer)),
        )


def test_a_good_file_imports_customers_and_answers(db, tmp_path: Path) -> None:
    report = import_customers_csv(db, write(tmp_path, GOOD, bom=True))
    assert (report.customers_added, report.customers_updated, report.answers_stored) == (3, 0, 8)
    directory, knowledge = CustomerDirectory(db), KnowledgeService(db)
    maria = directory.get("700123")
    assert maria.contact.phone_e164 == "+573001234567" and maria.preferred_otp_channel == "sms"
    assert knowledge.questions_for(maria) == ["dob", "doc_last4", "card_last4", "postal_code"]
    assert knowledge.check(maria, "dob", "15031987") and knowledge.check(maria, "doc_last4", "3318")
    john = directory.get("700124")
    assert (john.language, john.preferred_otp_channel, john.contact.phone_e164) == ("en", "email", None)
    assert knowledge.questions_for(john) == ["dob"] and knowledge.check(john, "dob", "01121990")
    pedro = directory.get("700125")
    assert (pedro.language, pedro.preferred_otp_channel) == ("es", "voice")
    assert knowledge.check(pedro, "postal_code", "06600") and knowledge.check(pedro, "dob", "04111975")


def test_no_plaintext_answer_is_kept_anywhere_in_the_database(db, tmp_path: Path) -> None:
    import_customers_csv(db, write(tmp_path, GOOD))
    with db.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT customer_id, question_key, answer_hash FROM knowledge_answers")).all())
        dump += repr(connection.execute(text("SELECT id, external_id, phone_e164, email FROM customers")).all())
    assert not any(secret in dump for secret in SECRETS)
    db.dispose()  # checkpoint the WAL into the file
    raw = database_bytes(tmp_path)
    assert raw and not any(secret.encode() in raw for secret in SECRETS)


def test_reimporting_updates_customers_and_keeps_answers_left_blank(db, tmp_path: Path) -> None:
    import_customers_csv(db, write(tmp_path, GOOD))
    update = HEADER + "700123,+573009999999,,,en,,,9900,\n700200,+573001110000,,,,,,,\n"
    report = import_customers_csv(db, write(tmp_path, update, "update.csv"))
    assert (report.customers_added, report.customers_updated, report.answers_stored) == (1, 1, 1)
    maria = CustomerDirectory(db).get("700123")
    assert maria.contact.phone_e164 == "+573009999999" and maria.contact.email is None and maria.language == "en"
    knowledge = KnowledgeService(db)
    assert knowledge.check(maria, "card_last4", "9900") and knowledge.check(maria, "dob", "15031987")
    assert counts(db) == (4, 8)


def test_columns_may_be_a_subset_in_any_order(db, tmp_path: Path) -> None:
    import_customers_csv(db, write(tmp_path, "card_last4,external_id\n1234,900001\n"))
    assert KnowledgeService(db).check(CustomerDirectory(db).get("900001"), "card_last4", "1234")


def test_unknown_columns_are_rejected_with_the_allowed_list(db, tmp_path: Path) -> None:
    path = write(tmp_path, "external_id,phone,mothers_maiden_name\n1,+573001234567,Perez\n")
    with pytest.raises(CsvImportError) as failed:
        import_customers_csv(db, path)
    message = str(failed.value)
    assert "'mothers_maiden_name'" in message and "allowed: external_id, phone" in message
    assert "line 1" in message and counts(db) == (0, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("phone,dob\n+573001234567,15031987\n", "external_id column is required"),
        ("external_id,dob,dob\n1,15031987,15031987\n", "more than once"),
    ],
)
def test_bad_headers_are_explained(db, tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(CsvImportError, match=expected):
        import_customers_csv(db, write(tmp_path, content))


def test_row_errors_name_every_line_and_nothing_is_imported(db, tmp_path: Path) -> None:
    content = (
        HEADER
        + "800001,+573001234567,,,,15/03/1987,3318,4821,110231\n"  # line 2: fine
        + "800002,3001234567,,,,,,,\n"  # line 3: not E.164
        + "800003,,not-an-email,,,,,,\n"  # line 4
        + "800004,,,,,03/15/1987,,,\n"  # line 5: month-first date
        + ",+573001234567,,,,,,,\n"  # line 6: no external_id
        + "800001,,,,,,,,\n"  # line 7: duplicate of line 2
        + "800005,,,fax,fr,,12,,SW1A 1AA\n"  # line 8: four problems
        + "800006,,,email,,,,,\n"  # line 9: email preferred, no address
        + "800007,,,,,,,,,extra\n"  # line 10: too many cells
    )
    with pytest.raises(CsvImportError) as failed:
        import_customers_csv(db, write(tmp_path, content))
    found = {(e.line, e.column) for e in failed.value.errors}
    assert found == {
        (3, "phone"), (4, "email"), (5, "dob"), (6, "external_id"), (7, "external_id"),
        (8, "preferred_channel"), (8, "language"), (8, "doc_last4"), (8, "postal_code"),
        (9, "preferred_channel"), (10, "row"),
    }
    message = str(failed.value)
    assert "line 7, external_id: duplicate of line 2" in message
    assert "nothing imported" in message
    # Secrets are not echoed in error messages.
    assert "03/15/1987" not in message and "SW1A" not in message
    assert counts(db) == (0, 0)


def test_a_database_failure_midway_leaves_nothing_behind(db, tmp_path: Path) -> None:
    """All writes share one transaction: a row that breaks at the database rolls back the rows before it."""
    with db.engine.begin() as connection:
        # Simulate a constraint the CSV validation cannot know about.
        connection.execute(text(
            "CREATE TRIGGER refuse_900003 BEFORE INSERT ON customers WHEN NEW.external_id = '900003' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ))
    content = HEADER + "900001,,,,,15031987,,,\n900002,,,,,,,4821,\n900003,,,,,,,,\n"
    with pytest.raises(Exception, match="refused"):
        import_customers_csv(db, write(tmp_path, content))
    assert counts(db) == (0, 0)
