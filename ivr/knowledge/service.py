"""Storing and checking knowledge answers, as argon2id hashes only.

Answers here are low-entropy (10,000 possible last-four digits, ~36,500
birth dates), so no hash alone stops an attacker holding the table from
trying them all. Two things make a leaked table much less useful: argon2id
(memory-hard, so the trial is slow even on GPUs) and an optional server-side
pepper (HMAC key kept outside the database, e.g. in the same secret store as
the one-time-code key): without it the hashes cannot be tested at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ivr.db.customers import CustomerRecord
from ivr.db.engine import Database
from ivr.db.models import KnowledgeAnswer
from ivr.knowledge.catalogue import CATALOGUE, question

log = logging.getLogger(__name__)


def default_hasher() -> PasswordHasher:
    """argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1).

    Why not argon2-cffi's default (64 MiB, t=3, p=4): checks run inside live
    calls on a shared server; 19 MiB x the concurrent calls stays bounded
    and one check costs ~20-40 ms of one core instead of ~100 ms of four.
    p=1 because parallelism buys nothing when many calls hash at once.
    """
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)


CustomerRef = CustomerRecord | int


def _customer_id(customer: CustomerRef) -> int:
    return customer.id if isinstance(customer, CustomerRecord) else customer


class KnowledgeService:
    def __init__(self, db: Database, *, pepper: bytes | None = None, hasher: PasswordHasher | None = None) -> None:
        self._db = db
        self._pepper = pepper
        self._hasher = hasher or default_hasher()
        self._decoy_hash: str | None = None

    def _material(self, key: str, normalised: str) -> bytes:
        # The question key is part of what is hashed: a hash copied onto
        # another question's row never verifies.
        message = f"{key}:{normalised}".encode()
        if self._pepper:
            return hmac.new(self._pepper, message, hashlib.sha256).digest()
        return message

    def hash_answer(self, key: str, plain: str) -> str:
        """Normalise and hash one answer (raises AnswerFormatError for unusable answers)."""
        return self._hasher.hash(self._material(key, question(key).normalise(plain)))

    def set_answers(self, customer: CustomerRef, answers: Mapping[str, str]) -> None:
        """Store (or replace) the given answers; other answers on file are kept."""
        hashed = {key: self.hash_answer(key, plain) for key, plain in answers.items()}
        with self._db.transaction() as session:
            store_hashed_answers(session, _customer_id(customer), hashed)

    def questions_for(self, customer: CustomerRef) -> list[str]:
        """Keys of the questions this customer can be asked, in catalogue order."""
        with self._db.sessions() as session:
            keys = set(
                session.scalars(
                    select(KnowledgeAnswer.question_key).where(KnowledgeAnswer.customer_id == _customer_id(customer))
                )
            )
        return [key for key, q in CATALOGUE.items() if key in keys and q.asked_as_knowledge]

    def has_answer(self, customer: CustomerRef, key: str) -> bool:
        with self._db.sessions() as session:
            return session.scalar(
                select(KnowledgeAnswer.id).where(
                    KnowledgeAnswer.customer_id == _customer_id(customer), KnowledgeAnswer.question_key == key
                )
            ) is not None

    def check_nobody(self, key: str, entered: str) -> bool:
        """Costs what ``check`` costs and is always False: an unknown account must not answer faster."""
        if self._decoy_hash is None:
            self._decoy_hash = self._hasher.hash(self._material(key, "decoy"))
        try:
            self._hasher.verify(self._decoy_hash, self._material(key, entered or "-"))
        except (VerificationError, InvalidHashError):
            pass
        return False

    def check(self, customer: CustomerRef, key: str, entered: str) -> bool:
        entry = question(key).normalise_entry(entered)
        customer_id = _customer_id(customer)
        with self._db.sessions() as session:
            row = session.scalars(
                select(KnowledgeAnswer).where(
                    KnowledgeAnswer.customer_id == customer_id, KnowledgeAnswer.question_key == key
                )
            ).one_or_none()
            if row is None:
                log.warning("knowledge question %s asked of customer %s who has no answer on file", key, customer_id)
                return False
            try:
                self._hasher.verify(row.answer_hash, self._material(key, entry))
            except InvalidHashError:
                log.error("stored %s answer of customer %s is not an argon2 hash; re-import it", key, customer_id)
                return False
            except VerificationError:
                return False
            if self._hasher.check_needs_rehash(row.answer_hash):
                # Parameters were raised since this was stored: upgrade now,
                # while the plain answer is at hand.
                row.answer_hash = self._hasher.hash(self._material(key, entry))
                session.commit()
            return True

    def reset(self, customer: CustomerRef) -> int:
        """Forget all answers of a customer; returns how many were removed."""
        with self._db.transaction() as session:
            result = session.execute(
                delete(KnowledgeAnswer).where(KnowledgeAnswer.customer_id == _customer_id(customer))
            )
            return result.rowcount


def store_hashed_answers(session: Session, customer_id: int, hashed: Mapping[str, str]) -> None:
    """Upsert already hashed answers inside the caller's transaction (used by imports too)."""
    existing = {
        row.question_key: row
        for row in session.scalars(
            select(KnowledgeAnswer).where(
                KnowledgeAnswer.customer_id == customer_id, KnowledgeAnswer.question_key.in_(list(hashed))
            )
        )
    }
    for key, answer_hash in hashed.items():
        if key in existing:
            existing[key].answer_hash = answer_hash
        else:
            session.add(KnowledgeAnswer(customer_id=customer_id, question_key=key, answer_hash=answer_hash))
