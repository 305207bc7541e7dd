"""Right to erasure: remove everything the engine holds about one person, and say what was removed.

The voiceprint (with the store's own secure deletion), the customer record
with its contact data, knowledge answers and PIN, one-time codes and send
records (they cascade with the customer), attempt limits and the account's
lease, voiceprint-use and consent history. Audit rows are not deleted (the
log must stay complete and verifiable): their account column is blanked and
only the keyed digest that seals them remains, a pseudonym that nobody
without the audit key can tie back to the account.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import delete

from ivr.audit.log import AuditLog
from ivr.db.customers import find_customer
from ivr.db.engine import Database
from ivr.db.models import KnowledgeAnswer, OtpChallenge, OtpSend
from ivr.db.models_policy import AuthLease, ConsentEvent, LimitSubject, VoiceprintUse
from voiceprints.store.base import VoiceprintStore


@dataclass(frozen=True)
class ErasureReport:
    account: str
    voiceprint: bool
    customer_record: bool
    knowledge_answers: int
    one_time_codes: int
    code_sends: int
    limit_records: int
    consent_events: int
    audit_rows_pseudonymised: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        return (f"erased {self.account}: voiceprint {'deleted' if self.voiceprint else 'none on file'}, "
                f"customer record {'deleted' if self.customer_record else 'none on file'}, "
                f"{self.knowledge_answers} knowledge answer(s) incl. PIN, {self.one_time_codes} one-time code(s), "
                f"{self.code_sends} code send record(s), {self.limit_records} attempt-limit record(s), "
                f"{self.consent_events} consent event(s); {self.audit_rows_pseudonymised} audit row(s) "
                "pseudonymised")


def erase_person(db: Database, store: VoiceprintStore, audit: AuditLog, account: str) -> ErasureReport:
    voiceprint = store.delete_speaker(account)
    with db.transaction() as session:
        customer = find_customer(session, account)
        counts = {"answers": 0, "codes": 0, "sends": 0}
        if customer is not None:
            # Counted before the customer row goes: they cascade with it.
            for key, table in (("answers", KnowledgeAnswer), ("codes", OtpChallenge), ("sends", OtpSend)):
                counts[key] = session.execute(delete(table).where(table.customer_id == customer.id)).rowcount
            session.delete(customer)
        limits = session.execute(
            delete(LimitSubject).where(LimitSubject.kind == "identity", LimitSubject.subject == account)).rowcount
        session.execute(delete(AuthLease).where(AuthLease.identity == account))
        session.execute(delete(VoiceprintUse).where(VoiceprintUse.identity == account))
        consent = session.execute(delete(ConsentEvent).where(ConsentEvent.identity == account)).rowcount
    return ErasureReport(account, voiceprint, customer is not None, counts["answers"], counts["codes"],
                         counts["sends"], limits, consent, audit.pseudonymise(account))
