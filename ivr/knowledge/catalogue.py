"""The knowledge questions a caller can answer on a phone keypad.

Every answer is reduced to digits, both when it is imported (where people
write dates as "15/03/1987" or "1987-03-15") and when the caller keys it in,
so that the stored hash and the entry are compared in the same form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Callable

from voiceprints.clock import system_clock


class AnswerFormatError(ValueError):
    """An answer that cannot be stored; the message never repeats the answer (it is a secret)."""


def digits_only(raw: str) -> str:
    return "".join(ch for ch in raw if ch.isascii() and ch.isdigit())


_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
# Birth dates before 1900 are data-entry errors, not customers.
_EARLIEST_YEAR = 1900


def normalise_date(raw: str) -> str:
    """Day-first or ISO dates -> ``DDMMYYYY``.

    Accepted: ``15/03/1987``, ``15-03-1987``, ``15.03.1987``, ``15031987``,
    ``1987-03-15``, ``1987/03/15``, ``19870315``. US month-first dates are not
    guessed at: ``03/15/1987`` is refused rather than read as the 3rd of a
    15th month. Eight bare digits are unambiguous: in ``DDMMYYYY`` the 5th-6th
    digits are a century (19, 20), never a valid month.
    """
    text = raw.strip()
    if m := _ISO.fullmatch(text):
        year, month, day = (int(g) for g in m.groups())
    elif m := _DAY_FIRST.fullmatch(text):
        day, month, year = (int(g) for g in m.groups())
    elif re.fullmatch(r"\d{8}", text):
        if 1 <= int(text[2:4]) <= 12:
            day, month, year = int(text[:2]), int(text[2:4]), int(text[4:])
        else:
            year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    else:
        raise AnswerFormatError("not a date; write it as DD/MM/YYYY or YYYY-MM-DD")
    try:
        value = date(year, month, day)
    except ValueError:
        raise AnswerFormatError("not a real calendar date (day-first DD/MM/YYYY expected)") from None
    this_year = system_clock().year
    if not _EARLIEST_YEAR <= value.year <= this_year:
        raise AnswerFormatError(f"year outside {_EARLIEST_YEAR}-{this_year}")
    return value.strftime("%d%m%Y")


def _last_four(raw: str) -> str:
    digits = digits_only(raw)
    if len(digits) < 4:
        raise AnswerFormatError("needs at least 4 digits")
    # A full document or card number is accepted, but only its last four
    # digits are ever hashed: the rest is not ours to keep.
    return digits[-4:]


def _postal_code(raw: str) -> str:
    if re.search(r"[A-Za-z]", raw):
        raise AnswerFormatError("contains letters, which cannot be keyed in on a phone keypad")
    digits = digits_only(raw)
    if not 3 <= len(digits) <= 10:
        raise AnswerFormatError("a postal code must have 3 to 10 digits")
    return digits


def _pin(raw: str) -> str:
    digits = digits_only(raw)
    if len(digits) != len(raw.strip()) or not 4 <= len(digits) <= 8:
        raise AnswerFormatError("a PIN must be 4 to 8 digits")
    return digits


@dataclass(frozen=True)
class Question:
    key: str
    # Prompt the flow plays, e.g. "kba-dob" ("key in your date of birth, day month year").
    prompt: str
    # Digits the caller is expected to key in (bounds the DTMF collection).
    min_digits: int
    max_digits: int
    # Stored-answer normalisation (imports): strict, raises AnswerFormatError.
    normalise: Callable[[str], str]
    # False for secrets that prove possession for one purpose only (the enrolment
    # line's PIN) and must not be asked as a fallback knowledge question.
    asked_as_knowledge: bool = True

    def normalise_entry(self, entered: str) -> str:
        """What a caller keyed in, compared as digits (terminators like '#' dropped)."""
        return digits_only(entered)


CATALOGUE: dict[str, Question] = {
    q.key: q
    for q in (
        Question("dob", "kba-dob", 8, 8, normalise_date),
        Question("doc_last4", "kba-doc-last4", 4, 4, _last_four),
        Question("card_last4", "kba-card-last4", 4, 4, _last_four),
        Question("postal_code", "kba-postal-code", 3, 10, _postal_code),
        Question("pin", "enter-pin", 4, 8, _pin, asked_as_knowledge=False),
    )
}


def question(key: str) -> Question:
    try:
        return CATALOGUE[key]
    except KeyError:
        raise KeyError(f"unknown knowledge question {key!r}; known: {', '.join(CATALOGUE)}") from None
