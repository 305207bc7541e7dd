"""Knowledge answers: stored only as argon2id hashes, checked as keyed in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from ivr.db import open_database
from ivr.db.customers import CustomerDirectory
from ivr.knowledge import AnswerFormatError, KnowledgeService

ANSWERS = {"dob": "1987-03-15", "doc_last4": "79.771.3318", "card_last4": "4821", "postal_code": "110231"}
PLAIN = ["15031987", "19870315", "3318", "4821", "110231", "1987-03-15"]


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


@pytest.fixture
def maria(db):
    return CustomerDirectory(db).add("700123", phone_e164="+573001234567")


@pytest.fixture
def knowledge(db) -> KnowledgeService:
    return KnowledgeService(db)


def test_right_answers_pass_and_wrong_ones_fail(knowledge: KnowledgeService, maria) -> None:
    knowledge.set_answers(maria, ANSWERS)
    assert knowledge.questions_for(maria) == ["dob", "doc_last4", "card_last4", "postal_code"]
    assert knowledge.check(maria, "dob", "15031987#")
    assert knowledge.check(maria.id, "doc_last4", "3318")
    assert knowledge.check(maria, "card_last4", "4821")
    assert knowledge.check(maria, "postal_code", "110231")
    assert not knowledge.check(maria, "dob", "16031987")
    assert not knowledge.check(maria, "card_last4", "3318")  # another question's answer
    assert not knowledge.check(maria, "doc_last4", "")


def test_only_argon2id_hashes_are_stored(knowledge: KnowledgeService, maria, db, tmp_path: Path) -> None:
    knowledge.set_answers(maria, ANSWERS)
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT question_key, answer_hash FROM knowledge_answers")).all()
    assert len(rows) == 4 and all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for _, h in rows)
    dump = repr(rows)
    assert not any(p in dump for p in PLAIN)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ivr.db*"))
    # Stored timestamps have arbitrary microsecond digits; they are not answers.
    raw = re.sub(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?", b"", raw)
    assert raw and not any(p.encode() in raw for p in PLAIN)


def test_a_customer_without_answers_has_no_questions(knowledge: KnowledgeService, maria) -> None:
    assert knowledge.questions_for(maria) == []
    assert not knowledge.check(maria, "dob", "15031987")
    knowledge.set_answers(maria, {"postal_code": "110231", "dob": "15/03/1987"})
    assert knowledge.questions_for(maria) == ["dob", "postal_code"]


def test_setting_answers_replaces_only_those_given(knowledge: KnowledgeService, maria) -> None:
    knowledge.set_answers(maria, ANSWERS)
    knowledge.set_answers(maria, {"card_last4": "9900"})
    assert knowledge.check(maria, "card_last4", "9900") and not knowledge.check(maria, "card_last4", "4821")
    assert knowledge.check(maria, "dob", "15031987")


def test_reset_forgets_every_answer(knowledge: KnowledgeService, maria, db) -> None:
    other = CustomerDirectory(db).add("700999")
    knowledge.set_answers(maria, {"dob": "15031987", "card_last4": "4821"})
    knowledge.set_answers(other, {"dob": "01011990"})
    assert knowledge.reset(maria) == 2
    assert knowledge.questions_for(maria) == [] and not knowledge.check(maria, "dob", "15031987")
    assert knowledge.questions_for(other) == ["dob"]


def test_unusable_answers_and_unknown_questions_are_refused(knowledge: KnowledgeService, maria) -> None:
    with pytest.raises(AnswerFormatError):
        knowledge.set_answers(maria, {"dob": "31/02/1990"})
    with pytest.raises(KeyError):
        knowledge.set_answers(maria, {"pet_name": "Firulais"})
    with pytest.raises(KeyError):
        knowledge.check(maria, "pet_name", "1234")
    assert knowledge.questions_for(maria) == []


def test_a_pepper_makes_hashes_useless_without_it(db, maria) -> None:
    peppered = KnowledgeService(db, pepper=b"p" * 32)
    peppered.set_answers(maria, {"card_last4": "4821"})
    assert peppered.check(maria, "card_last4", "4821")
    assert not KnowledgeService(db).check(maria, "card_last4", "4821")
    assert not KnowledgeService(db, pepper=b"q" * 32).check(maria, "card_last4", "4821")


def test_hashes_made_with_weaker_parameters_are_upgraded_on_a_right_answer(db, maria) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    KnowledgeService(db, hasher=weak).set_answers(maria, {"card_last4": "4821"})
    strong = KnowledgeService(db)
    with db.engine.connect() as connection:
        before = connection.execute(text("SELECT answer_hash FROM knowledge_answers")).scalar()
    assert not strong.check(maria, "card_last4", "0000")
    assert strong.check(maria, "card_last4", "4821")
    with db.engine.connect() as connection:
        after = connection.execute(text("SELECT answer_hash FROM knowledge_answers")).scalar()
    assert "m=8192" in before and after.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert strong.check(maria, "card_last4", "4821")


def test_a_corrupt_stored_hash_fails_closed(knowledge: KnowledgeService, maria, db) -> None:
    knowledge.set_answers(maria, {"dob": "15031987"})
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE knowledge_answers SET answer_hash = 'not-a-hash'"))
    assert not knowledge.check(maria, "dob", "15031987")
