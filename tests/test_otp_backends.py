"""The flow-facing one-time-code interface, end to end through real peers.

LocalOtpBackend: our codes, delivered by our senders to a loopback SMTP
server or Twilio-shaped API, read back from what the peer received (as the
customer would read them). TwilioVerifyBackend: Twilio Verify makes and
checks the code; the fake plays the customer's phone.
"""

from __future__ import annotations

import logging
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from ivr.contacts import Contact
from ivr.db import OtpChallenge, open_database
from ivr.db.customers import CustomerDirectory, CustomerRecord
from ivr.otp.backends import LocalOtpBackend, TwilioVerifyBackend
from ivr.otp.config import OtpConfig
from ivr.otp.errors import NoDestinationError, OtpDeliveryError, OtpUnavailableError, ResendRefused
from ivr.otp.service import OtpResult, OtpService
from ivr.otp.senders.base import DeliveryErrorKind
from ivr.otp.senders.smtp import SmtpConfig, SmtpOtpSender
from ivr.otp.senders.twilio_sms import TwilioSmsSender
from ivr.otp.senders.twilio_voice import TwilioVoiceSender
from tests.fakes.twilio_api import FakeTwilio

SECRET = b"k" * 32
FROM_NUMBER = "+15005550006"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Inbox:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.bodies.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def _spoken_code(twiml: str) -> str:
    first_say = re.search(r"<Say[^>]*>(.*?)</Say>", twiml).group(1)
    return "".join(re.findall(r"\d", first_say))


def _not_logged(caplog, *codes: str) -> None:
    for record in caplog.records:
        if record.name.startswith("mail."):
            continue  # the SMTP peer logs the mail it receives
        text = record.getMessage() + repr(record.args)
        assert not any(code in text for code in codes), f"{record.name} logged a code"


@pytest.fixture(autouse=True)
def debug_logs(caplog) -> None:
    caplog.set_level(logging.DEBUG)


@pytest.fixture(scope="module")
def fake_twilio():
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def twilio(fake_twilio: FakeTwilio):
    fake_twilio.heal()
    yield fake_twilio
    fake_twilio.heal()


@pytest.fixture
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(f"sqlite:///{tmp_path / 'ivr.db'}")
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(db, clock, twilio, inbox) -> LocalOtpBackend:
    _, port = inbox
    client = twilio.client()
    service = OtpService(db, SECRET, OtpConfig(), clock=clock)
    return LocalOtpBackend(
        service,
        {
            "sms": TwilioSmsSender(client, from_number=FROM_NUMBER),
            "voice": TwilioVoiceSender(client, from_number=FROM_NUMBER),
            "email": SmtpOtpSender(SmtpConfig(host="127.0.0.1", port=port, from_address="otp@bank.example",
                                              starttls=False, timeout_s=2)),
        },
    )


@pytest.fixture
def maria(db) -> CustomerRecord:
    return CustomerDirectory(db).add(
        "700123", phone_e164="+573001234567", email="maria.lopez@example.com", preferred_otp_channel="sms"
    )


async def test_local_code_by_sms_is_accepted_once(local: LocalOtpBackend, twilio: FakeTwilio, maria, caplog) -> None:
    handle = await local.start(maria)
    assert handle.channel == "sms" and handle.destination == "+57 *** *** 4567"
    code = _code_in(twilio.messages[-1]["Body"])
    assert (await local.check(handle, code)).result is OtpResult.OK
    assert (await local.check(handle, code)).result is OtpResult.USED
    _not_logged(caplog, code)


async def test_local_code_by_email_in_english(local: LocalOtpBackend, inbox, db, caplog) -> None:
    box, _ = inbox
    john = CustomerDirectory(db).add("700200", email="john@example.org", language="en", preferred_otp_channel="email")
    handle = await local.start(john)
    assert handle.destination == "j**n@e******.org"
    [mail] = box.bodies
    assert "Your verification code is" in mail
    code = _code_in(mail)
    wrong = await local.check(handle, "000000" if code != "000000" else "111111")
    assert wrong.result is OtpResult.WRONG and wrong.remaining_attempts == 2
    assert (await local.check(handle, code)).ok
    _not_logged(caplog, code)


async def test_local_resend_delivers_a_new_code_and_retires_the_old_one(
    local: LocalOtpBackend, twilio: FakeTwilio, maria, clock: Clock, caplog
) -> None:
    handle = await local.start(maria, "voice")
    first = _spoken_code(twilio.calls[-1]["Twiml"])
    with pytest.raises(ResendRefused):
        await local.resend(handle)  # cooldown
    clock.advance(31)
    again = await local.resend(handle)
    assert again.resends == 1 and again.id == handle.id
    second = _spoken_code(twilio.calls[-1]["Twiml"])
    if first != second:
        assert (await local.check(again, first)).result is OtpResult.WRONG
    assert (await local.check(again, second)).ok
    _not_logged(caplog, first, second)


async def test_a_failed_delivery_closes_the_challenge(local: LocalOtpBackend, twilio: FakeTwilio, maria, db) -> None:
    twilio.fail_with(400, 21614, "'To' number is not a valid mobile number")
    with pytest.raises(OtpDeliveryError) as failed:
        await local.start(maria)
    assert failed.value.delivery.error is DeliveryErrorKind.INVALID_DESTINATION
    with db.sessions() as session:
        [challenge] = session.query(OtpChallenge).all()
        assert challenge.status == "cancelled"


async def test_a_customer_without_an_address_for_the_channel_gets_no_challenge(local: LocalOtpBackend, db) -> None:
    pedro = CustomerDirectory(db).add("700300", phone_e164="+573009876543")
    with pytest.raises(NoDestinationError, match="no e-mail address"):
        await local.start(pedro, "email")
    with db.sessions() as session:
        assert session.query(OtpChallenge).count() == 0


# --- Twilio Verify -------------------------------------------------------------------
_numbers = iter(range(10_000, 99_999))


@pytest.fixture
def ana() -> CustomerRecord:
    """A fresh Verify customer per test: Verify ties pending verifications to the destination."""
    n = next(_numbers)
    return CustomerRecord(
        id=n, external_id=str(n), contact=Contact(phone_e164=f"+52551234{n}", email=f"ana{n}@example.mx"),
        preferred_otp_channel="sms", language="es",
    )


@pytest.fixture
def verify(twilio: FakeTwilio, clock: Clock) -> TwilioVerifyBackend:
    return TwilioVerifyBackend(twilio.client(), twilio.service_sid, OtpConfig(), timeout_s=2, clock=clock)


async def test_verify_sends_and_checks_through_twilio(verify, twilio: FakeTwilio, ana, caplog) -> None:
    handle = await verify.start(ana)
    assert handle.id.startswith("VE") and handle.destination == f"+52 *** *** {ana.external_id[-4:]}"
    sent = twilio.verification(handle.id)
    assert (sent.channel, sent.locale) == ("sms", "es")
    code = twilio.code_sent_to(ana.contact.phone_e164)
    wrong = "0" * 6 if code != "0" * 6 else "1" * 6
    assert (await verify.check(handle, wrong)).result is OtpResult.WRONG
    assert (await verify.check(handle, code + "#")).result is OtpResult.OK
    # Verify forgets approved verifications: the same code again is no longer valid.
    assert (await verify.check(handle, code)).result is OtpResult.EXPIRED
    _not_logged(caplog, code)


async def test_verify_channels_map_to_twilios_names(verify, twilio: FakeTwilio, ana) -> None:
    by_call = await verify.start(ana, "voice")
    by_mail = await verify.start(ana, "email")
    assert twilio.verification(by_call.id).channel == "call"
    assert twilio.verification(by_mail.id).to == ana.contact.email
    assert by_mail.destination == f"a******{ana.external_id[-1]}@e******.mx"


async def test_verify_runs_out_of_attempts(verify, twilio: FakeTwilio) -> None:
    customer = CustomerRecord(2, "800200", Contact(phone_e164="+525500000002"), "sms", "en")
    handle = await verify.start(customer)
    code = twilio.code_sent_to("+525500000002")
    wrong = "0" * 6 if code != "0" * 6 else "1" * 6
    results = [(await verify.check(handle, wrong)).result for _ in range(6)]
    assert results == [OtpResult.WRONG] * 5 + [OtpResult.TOO_MANY_ATTEMPTS]


async def test_entries_verify_cannot_accept_are_wrong_without_asking_twilio(verify, twilio: FakeTwilio, ana) -> None:
    handle = await verify.start(ana)
    before = len(twilio.requests)
    assert (await verify.check(handle, "12#")).result is OtpResult.WRONG
    assert len(twilio.requests) == before


async def test_verify_resends_within_limits(verify, twilio: FakeTwilio, clock: Clock) -> None:
    customer = CustomerRecord(3, "800300", Contact(phone_e164="+525500000003"), "sms", "es")
    handle = await verify.start(customer)
    with pytest.raises(ResendRefused) as early:
        await verify.resend(handle)
    assert early.value.reason == "cooldown"
    for expected_sends in (2, 3):
        clock.advance(30)
        handle = await verify.resend(handle)
        assert twilio.verification(handle.id).sends == expected_sends
    clock.advance(30)
    with pytest.raises(ResendRefused) as over:
        await verify.resend(handle)
    assert over.value.reason == "too_many_resends"


async def test_verify_refusing_the_number_is_a_delivery_failure(verify, twilio: FakeTwilio) -> None:
    bad = CustomerRecord(4, "800400", Contact(phone_e164="5512345678"), "sms", "es")
    with pytest.raises(OtpDeliveryError) as failed:
        await verify.start(bad)
    assert failed.value.delivery.error is DeliveryErrorKind.INVALID_DESTINATION
    assert "5512345678" not in str(failed.value)


async def test_verify_outage_during_a_check_is_unavailable_not_wrong(verify, twilio: FakeTwilio, ana) -> None:
    handle = await verify.start(ana)
    twilio.fail_with(503, 20503, "Service unavailable")
    with pytest.raises(OtpUnavailableError, match="503"):
        await verify.check(handle, "123456")


async def test_verify_slow_check_is_unavailable(verify, twilio: FakeTwilio, ana) -> None:
    handle = await verify.start(ana)
    twilio.answer_slowly(1.0)
    slow = TwilioVerifyBackend(twilio.client(timeout_s=0.3), twilio.service_sid, timeout_s=0.3)
    with pytest.raises(OtpUnavailableError, match="within"):
        await slow.check(handle, "123456")
