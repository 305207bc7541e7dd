"""Looking customers up by the identity callers claim (their account number)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.contacts import Contact
from ivr.db.engine import Database
from ivr.db.models import Customer


@dataclass(frozen=True)
class CustomerRecord:
    """A detached, immutable view of a customer for flows and factor services."""

    id: int
    external_id: str
    contact: Contact
    preferred_otp_channel: str
    language: str

    @classmethod
    def of(cls, row: Customer) -> CustomerRecord:
        return cls(
            id=row.id,
            external_id=row.external_id,
            contact=Contact(phone_e164=row.phone_e164, email=row.email),
            preferred_otp_channel=row.preferred_otp_channel,
            language=row.language,
        )


class CustomerDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, external_id: str) -> CustomerRecord | None:
        with self._db.sessions() as session:
            row = find_customer(session, external_id)
            return CustomerRecord.of(row) if row else None

    def add(
        self,
        external_id: str,
        *,
        phone_e164: str | None = None,
        email: str | None = None,
        preferred_otp_channel: str = "sms",
        language: str = "es",
    ) -> CustomerRecord:
        with self._db.transaction() as session:
            row = Customer(
                external_id=external_id,
                phone_e164=phone_e164,
                email=email,
                preferred_otp_channel=preferred_otp_channel,
                language=language,
            )
            session.add(row)
            session.flush()
            return CustomerRecord.of(row)


def find_customer(session: Session, external_id: str) -> Customer | None:
    return session.scalars(select(Customer).where(Customer.external_id == external_id)).one_or_none()
