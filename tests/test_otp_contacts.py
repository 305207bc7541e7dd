"""Phone numbers and e-mail addresses are shown and logged only masked."""

from __future__ import annotations

import logging

import pytest

from ivr.contacts import Contact, mask_email, mask_phone, parse_e164, parse_email


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+573001234567", "+57 *** *** 4567"),  # Colombia, 2-digit country code
        ("+14155550123", "+1 *** *** 0123"),  # NANP
        ("+5215512345678", "+52 *** *** 5678"),  # Mexico mobile
        ("+593991234567", "+593 *** *** 4567"),  # Ecuador, 3-digit country code
        ("+74951234567", "+7 *** *** 4567"),
        ("3001234567", "*** *** 4567"),  # not E.164: no country code to show
        ("12345", "*** ***"),  # too short to show anything
        ("", "*** ***"),
    ],
)
def test_phone_numbers_keep_only_country_code_and_last_four_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_the_phone_mask_does_not_reveal_the_number_length() -> None:
    assert mask_phone("+57300123456").replace("3456", "") == mask_phone("+573001234567890").replace("7890", "")


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("maria.lopez@example.com", "m*********z@e******.com"),
        ("jo@bank.co", "**@b***.co"),
        ("a@mail.example.org", "*@m***********.org"),
        ("not-an-address", "***"),
        ("@example.com", "***"),
        ("x@localhost", "***"),
    ],
)
def test_email_addresses_keep_first_and_last_letters_and_the_top_level_domain(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_a_contact_never_prints_its_addresses(caplog) -> None:
    contact = Contact(phone_e164="+573001234567", email="maria.lopez@example.com")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").debug("sending to %r / %s", contact, contact)
    assert "3001234567" not in caplog.text and "maria.lopez" not in caplog.text
    assert "+57 *** *** 4567" in caplog.text and contact.masked() == "+57 *** *** 4567, m*********z@e******.com"
    assert Contact().masked() == "no contact"


@pytest.mark.parametrize("raw", ["+57 300 123-4567", "+57 (300) 123 4567", "+573001234567"])
def test_phone_numbers_are_normalised_to_e164(raw: str) -> None:
    assert parse_e164(raw) == "+573001234567"


@pytest.mark.parametrize("raw", ["3001234567", "+57", "+0573001234567", "+57300123456789012", "+57 300 ABC 4567"])
def test_non_e164_phone_numbers_are_refused_without_echoing_them(raw: str) -> None:
    with pytest.raises(ValueError, match="E.164") as refused:
        parse_e164(raw)
    assert "300123" not in str(refused.value)


def test_email_addresses_are_checked_loosely() -> None:
    assert parse_email(" maria@example.com ") == "maria@example.com"
    for bad in ("maria", "maria@", "maria@example", "ma ria@example.com"):
        with pytest.raises(ValueError, match="not a valid address"):
            parse_email(bad)
