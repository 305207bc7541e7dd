"""Telling the customer, on the contact on file, that something changed on their account.

Banks do this for every security-relevant change, because the customer is
the one person who knows whether it was them: a voiceprint created, replaced
or deleted, or the account locked after failed attempts. A notice goes to
the e-mail address or the mobile number on file (never to the caller's
number: an attacker may be calling from anywhere), through the senders the
one-time codes use. It never holds the account number or a code, and every
notice, sent or not, is an audit row.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from ivr.audit.log import AuditEntry, AuditLog
from ivr.contacts import mask_email, mask_phone
from ivr.db.customers import CustomerRecord
from ivr.otp.senders.base import DeliveryResult, Notice, NoticeSender

log = logging.getLogger("ivr.notices")


class NoticeKind(str, enum.Enum):
    VOICEPRINT_CREATED = "voiceprint_created"
    VOICEPRINT_REPLACED = "voiceprint_replaced"
    VOICEPRINT_DELETED = "voiceprint_deleted"
    ACCOUNT_LOCKED = "account_locked"


_WHAT = {
    "en": {
        NoticeKind.VOICEPRINT_CREATED: "a voiceprint was created for voice authentication on your account",
        NoticeKind.VOICEPRINT_REPLACED: "the voiceprint used for voice authentication on your account was replaced",
        NoticeKind.VOICEPRINT_DELETED: "the voiceprint used for voice authentication on your account was deleted",
        NoticeKind.ACCOUNT_LOCKED: "phone authentication on your account was locked after repeated failed attempts",
    },
    "es": {
        NoticeKind.VOICEPRINT_CREATED: "se creó una huella de voz para la autenticación por voz de tu cuenta",
        NoticeKind.VOICEPRINT_REPLACED: "se reemplazó la huella de voz de la autenticación por voz de tu cuenta",
        NoticeKind.VOICEPRINT_DELETED: "se eliminó la huella de voz de la autenticación por voz de tu cuenta",
        NoticeKind.ACCOUNT_LOCKED: "se bloqueó la autenticación telefónica de tu cuenta tras varios intentos fallidos",
    },
}
_FRAME = {
    "en": ("Security notice", "On {when} UTC {what}.\n\nIf this was you, there is nothing to do. If it was not, "
           "call us at once: someone may be trying to get into your account.\n",
           "Security notice: on {when} UTC {what}. Not you? Call us at once."),
    "es": ("Aviso de seguridad", "El {when} UTC {what}.\n\nSi fuiste tú, no tienes que hacer nada. Si no, "
           "llámanos de inmediato: alguien podría estar intentando entrar a tu cuenta.\n",
           "Aviso de seguridad: el {when} UTC {what}. ¿No fuiste tú? Llámanos de inmediato."),
}


def compose(kind: NoticeKind, language: str, when: datetime) -> Notice:
    lang = language[:2].lower() if language[:2].lower() in _WHAT else "en"
    subject, body, sms = _FRAME[lang]
    values = {"when": when.strftime("%Y-%m-%d %H:%M"), "what": _WHAT[lang][kind]}
    return Notice(subject=subject, body=body.format(**values), sms=sms.format(**values))


@dataclass(frozen=True)
class NoticeOutcome:
    sent: bool
    channel: str | None
    detail: str


class CustomerNotifier:
    """Sends notices by e-mail or SMS (the customer's preference first) and audits each one."""

    # A notice is sent at the end of a call; the caller must not wait long for a slow relay.
    TIMEOUT_S = 15.0

    def __init__(self, senders: Mapping[str, NoticeSender], audit: AuditLog) -> None:
        self._senders = {channel: s for channel, s in senders.items() if channel in ("email", "sms")}
        self._audit = audit

    async def notify(self, customer: CustomerRecord | None, kind: NoticeKind, *, call_id: str | None = None,
                     caller_hash: str | None = None) -> NoticeOutcome:
        if customer is None:
            return NoticeOutcome(False, None, "not a known customer: no contact on file")
        outcome = await self._send(customer, kind)
        (log.info if outcome.sent else log.warning)("notice %s: %s", kind.value, outcome.detail)
        try:
            await asyncio.to_thread(self._audit.record, AuditEntry(
                flow="notify", result="SENT" if outcome.sent else "NOT_SENT", call_id=call_id,
                identity=customer.external_id, caller_hash=caller_hash, reason=f"{kind.value}: {outcome.detail}"))
        except Exception:  # noqa: BLE001 - the change itself is audited by its own row
            log.exception("could not audit the %s notice", kind.value)
        return outcome

    async def _send(self, customer: CustomerRecord, kind: NoticeKind) -> NoticeOutcome:
        notice = compose(kind, customer.language, self._audit.now())
        tried: list[str] = []
        for channel in self._channels(customer):
            sender = self._senders[channel]
            try:
                result = await asyncio.wait_for(sender.notify(customer.contact, notice, customer.language),
                                                self.TIMEOUT_S)
            except asyncio.TimeoutError:
                result = DeliveryResult(ok=False, message=f"{channel} did not answer in {self.TIMEOUT_S:g} s")
            where = (mask_email(customer.contact.email or "") if channel == "email"
                     else mask_phone(customer.contact.phone_e164 or ""))
            if result.ok:
                return NoticeOutcome(True, channel, f"sent by {channel} to {where}")
            tried.append(f"{channel} to {where} failed ({result.message})")
        if not tried:
            return NoticeOutcome(False, None, "no e-mail or SMS channel reaches this customer")
        return NoticeOutcome(False, None, "; ".join(tried))

    def _channels(self, customer: CustomerRecord) -> list[str]:
        """E-mail or SMS, the customer's preferred one first, each only with an address on file."""
        contact = customer.contact
        usable = [c for c in ("email", "sms") if c in self._senders
                  and (contact.email if c == "email" else contact.phone_e164)]
        preferred = "email" if customer.preferred_otp_channel == "email" else "sms"
        return sorted(usable, key=lambda c: c != preferred)
