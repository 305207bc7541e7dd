"""Where a customer can be reached, and how to show it without disclosing it.

Phone numbers and e-mail addresses are personal data: anything logged,
spoken to a caller ("we sent a code to +57 *** *** 4567") or put in an error
message uses the masked forms. ``Contact``'s repr is masked too, so an
accidental ``log.debug("%r", contact)`` does not leak the address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# E.164 country codes are 1, 2 or 3 digits and prefix-free: "1" (NANP) and
# "7" are the only one-digit codes, these two-digit codes are assigned, and
# every other code is three digits long (ITU-T E.164 assignment list).
_TWO_DIGIT_CODES = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)
_E164 = re.compile(r"\+[1-9]\d{6,14}")
# Enough digits to recognise the number, too few to call it.
_VISIBLE_TAIL = 4


def country_code(e164: str) -> str:
    digits = e164.lstrip("+")
    if digits[:1] in ("1", "7"):
        return digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


def parse_e164(raw: str) -> str:
    """``"+57 300 123-4567"`` -> ``"+573001234567"``; ValueError if it is not a valid international number.

    Google's libphonenumber (``phonenumbers``) knows each country's number
    plan: a digit too many or a number range that does not exist is caught
    here, at import, not when a code fails to arrive mid-call.
    """
    import phonenumbers

    compact = re.sub(r"[\s\-().]", "", raw)
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not _E164.fullmatch(compact):
        raise ValueError(
            f"phone number {mask_phone(compact)!s} is not in international E.164 form (+ country code and number)"
        )
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone number {mask_phone(compact)!s} is not a valid number in country code "
                         f"+{number.country_code} (wrong length or range)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_email(raw: str) -> str:
    """A syntactically valid address on a domain of deliverable form, not a throw-away one; ValueError otherwise.

    ``email-validator`` checks the syntax and that the domain could receive
    mail (no DNS lookup: workers often cannot reach it);
    ``disposable-email-domains`` lists throw-away mailboxes, which an
    attacker would use to receive a customer's codes.
    """
    from disposable_email_domains import blocklist
    from email_validator import EmailNotValidError, validate_email

    address = raw.strip()
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"e-mail address {mask_email(address)} is not a valid address: {exc}") from None
    if checked.domain.lower() in blocklist:
        raise ValueError(f"e-mail address {mask_email(address)} is on a disposable e-mail domain")
    return checked.normalized


def mask_phone(phone: str) -> str:
    """``"+573001234567"`` -> ``"+57 *** *** 4567"``.

    The hidden part is always shown as ``*** ***`` whatever its length, so the
    mask does not reveal how many digits the number has either.
    """
    digits = re.sub(r"\D", "", phone)
    if not phone.startswith("+") or len(digits) < 7:
        return "*** ***" if len(digits) < 2 * _VISIBLE_TAIL else f"*** *** {digits[-_VISIBLE_TAIL:]}"
    return f"+{country_code(digits)} *** *** {digits[-_VISIBLE_TAIL:]}"


def _mask_word(word: str) -> str:
    if len(word) <= 2:
        return "*" * len(word)
    return word[0] + "*" * (len(word) - 2) + word[-1]


def mask_email(email: str) -> str:
    """``"maria.lopez@example.com"`` -> ``"m*********z@e******.com"``."""
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain:
        return "***"
    name, _, tld = domain.rpartition(".")
    masked_name = name[0] + "*" * (len(name) - 1) if name else ""
    return f"{_mask_word(local)}@{masked_name}.{tld}"


@dataclass(frozen=True, repr=False)
class Contact:
    """Where one-time codes for a customer may be sent."""

    phone_e164: str | None = None
    email: str | None = None

    def masked(self) -> str:
        parts = []
        if self.phone_e164:
            parts.append(mask_phone(self.phone_e164))
        if self.email:
            parts.append(mask_email(self.email))
        return ", ".join(parts) or "no contact"

    def __repr__(self) -> str:
        return f"Contact({self.masked()})"
