"""Per-customer caps on codes sent, whatever the backend (local codes or Twilio Verify).

Resend limits live on one challenge; these hold across calls, lines and
caller numbers, so nobody can make the IVR flood a customer's phone by
calling again and again. Every refused send is reported to the flow, which
puts it in the call's audit row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from ivr.db.engine import Database
from voiceprints.clock import Clock
from ivr.db.models import Customer, OtpSend
from ivr.otp.config import OtpConfig
from ivr.otp.errors import SendCapReached



class OtpSendCaps:
    def __init__(self, db: Database, config: OtpConfig, *, clock: Clock | None = None) -> None:
        self._db = db
        self._config = config
        self._clock = clock or db.clock

    def take(self, customer_id: int, channel: str) -> None:
        """Count one send to the customer, or raise SendCapReached when a cap is full."""
        now = self._clock()
        with self._db.transaction() as session:
            # Writing first takes the customer's row lock (PostgreSQL) or the
            # write lock (SQLite): two workers cannot both take the last send.
            session.execute(update(Customer).where(Customer.id == customer_id).values(id=Customer.id))
            for window, cap, what in ((timedelta(hours=1), self._config.max_sends_per_hour, "hour"),
                                      (timedelta(days=1), self._config.max_sends_per_day, "day")):
                sent = session.scalar(
                    select(func.count()).select_from(OtpSend)
                    .where(OtpSend.customer_id == customer_id, OtpSend.at > now - window)
                ) or 0
                if sent >= cap:
                    raise SendCapReached(f"{sent} codes sent to this customer in the last {what} (cap {cap})")
            session.add(OtpSend(customer_id=customer_id, channel=channel, at=now))

    def purge(self, older_than: datetime) -> int:
        with self._db.transaction() as session:
            return session.execute(delete(OtpSend).where(OtpSend.at < older_than)).rowcount
