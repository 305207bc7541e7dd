"""Code senders against real protocol peers on loopback: an SMTP server and a Twilio-shaped REST API.

Every path also checks that the code never reaches a log record, whatever
library emitted it (our modules, twilio, requests, urllib3, smtplib).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ivr.contacts import Contact
from ivr.otp.senders.base import DeliveryErrorKind
from ivr.otp.senders.smtp import SmtpConfig, SmtpOtpSender
from ivr.otp.senders.twilio_sms import TwilioSmsSender
from ivr.otp.senders.twilio_voice import TwilioVoiceSender
from ivr.otp.senders.twilio_voice import code_twiml
from tests.fakes.mailbox import Mailbox, free_port, running_mailbox
from tests.fakes.twilio_api import FakeTwilio

CODE = "047193"
MARIA = Contact(phone_e164="+573001234567", email="maria.lopez@example.com")
FROM_NUMBER = "+15005550006"
# Loggers of the test peers themselves: the SMTP server logs what it receives.
PEER_LOGGERS = ("mail.",)


def assert_code_not_logged(caplog: pytest.LogCaptureFixture, code: str = CODE) -> None:
    records = [r for r in caplog.records if not r.name.startswith(PEER_LOGGERS)]
    assert records, "expected some log output to check"
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        assert code not in text, f"code leaked in a log record of {record.name}: {record.getMessage()!r}"


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


# --- SMTP ---------------------------------------------------------------------
@pytest.fixture
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    # Valid whatever the date: its lifetime is not under test, and OpenSSL checks it against the machine's
    # clock, which `--clock-shift-days` (tests/clock_shift.py) does not move.
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2099, 12, 31, tzinfo=dt.timezone.utc))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_mailbox(tmp_path: Path):
    """A submission server that insists on STARTTLS and a login."""
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"ivr", b"s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    box = Mailbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True,
        authenticator=authenticator, auth_required=True,
    )
    controller.start()
    yield box, controller.port, cert
    controller.stop()


def smtp(port: int, **overrides) -> SmtpOtpSender:
    settings = dict(host="127.0.0.1", port=port, from_address="codes@bank.example", starttls=False, timeout_s=2.0)
    settings.update(overrides)
    return SmtpOtpSender(SmtpConfig(**settings))


@pytest.mark.parametrize(
    ("language", "subject", "sentence", "expiry"),
    [
        ("es", "Tu código de verificación", f"Tu código de verificación es {CODE}.", "Vence en 5 minutos."),
        ("en", "Your verification code", f"Your verification code is {CODE}.", "It expires in 5 minutes."),
    ],
)
async def test_email_reaches_the_mail_server_in_the_customers_language(
    mailbox, caplog, language: str, subject: str, sentence: str, expiry: str
) -> None:
    box, port = mailbox
    result = await smtp(port).send(MARIA, CODE, language, valid_for_s=300)
    assert result.ok and result.error is None and result.provider_id
    [(mail_from, rcpt)] = box.envelopes
    [message] = box.messages
    assert mail_from == "codes@bank.example" and rcpt == ["maria.lopez@example.com"]
    assert message["To"] == "maria.lopez@example.com"
    assert message["Subject"] == subject and CODE not in message["Subject"]
    assert message["Message-ID"] == result.provider_id
    assert message["Content-Language"] == language
    body = message.get_content()
    assert body.startswith(sentence) and expiry in body
    assert "maria.lopez" not in result.message and CODE not in result.message
    assert_code_not_logged(caplog)


async def test_email_goes_over_starttls_with_a_login(tls_mailbox, caplog) -> None:
    box, port, cert = tls_mailbox
    sender = smtp(port, starttls=True, ca_file=cert, username="ivr", password="s3cret")
    result = await sender.send(MARIA, CODE, "es", valid_for_s=120)
    assert result.ok, result.message
    assert "Vence en 2 minutos" in box.messages[0].get_content()
    assert_code_not_logged(caplog)


async def test_a_wrong_smtp_password_is_a_rejection(tls_mailbox, caplog) -> None:
    box, port, cert = tls_mailbox
    sender = smtp(port, starttls=True, ca_file=cert, username="ivr", password="wrong")
    result = await sender.send(MARIA, CODE, "es", valid_for_s=300)
    assert not result.ok and result.error is DeliveryErrorKind.REJECTED and "password" in result.message
    assert box.messages == []
    assert_code_not_logged(caplog)


async def test_an_untrusted_smtp_certificate_is_a_rejection(tls_mailbox, caplog) -> None:
    box, port, _ = tls_mailbox
    result = await smtp(port, starttls=True, username="ivr", password="s3cret").send(MARIA, CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.REJECTED and "certificate" in result.message
    assert box.messages == []


async def test_a_refused_recipient_is_an_invalid_destination(mailbox, caplog) -> None:
    box, port = mailbox
    result = await smtp(port).send(Contact(email=Mailbox.refused), CODE, "en", valid_for_s=300)
    assert result.error is DeliveryErrorKind.INVALID_DESTINATION and "550" in result.message
    assert Mailbox.refused not in result.message and box.messages == []
    assert_code_not_logged(caplog)


async def test_a_mail_server_that_is_down_is_unreachable(caplog) -> None:
    result = await smtp(free_port()).send(MARIA, CODE, "es", valid_for_s=300)
    assert not result.ok and result.error is DeliveryErrorKind.UNREACHABLE
    assert_code_not_logged(caplog)


async def test_a_mail_server_that_never_greets_times_out(caplog) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever speaks
        result = await smtp(silent.getsockname()[1], timeout_s=0.5).send(MARIA, CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.TIMEOUT
    assert_code_not_logged(caplog)


async def test_no_email_address_is_an_invalid_destination() -> None:
    result = await smtp(free_port()).send(Contact(phone_e164="+573001234567"), CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.INVALID_DESTINATION


# --- Twilio ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_twilio():
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def twilio(fake_twilio: FakeTwilio):
    fake_twilio.heal()
    yield fake_twilio
    fake_twilio.heal()


@pytest.mark.parametrize(
    ("language", "body"),
    [
        ("es", f"Tu código de verificación es {CODE}. Vence en 5 minutos."),
        ("en", f"Your verification code is {CODE}. It expires in 5 minutes."),
    ],
)
async def test_sms_is_created_through_the_twilio_api(twilio: FakeTwilio, caplog, language: str, body: str) -> None:
    before = len(twilio.messages)
    result = await TwilioSmsSender(twilio.client(), from_number=FROM_NUMBER).send(MARIA, CODE, language, valid_for_s=300)
    assert result.ok, result.message
    sent = twilio.messages[before]
    assert sent["To"] == "+573001234567" and sent["From"] == FROM_NUMBER and sent["Body"] == body
    assert result.provider_id == sent["Sid"] and result.provider_id.startswith("SM")
    assert "+573001234567" not in result.message and "4567" in result.message
    assert twilio.requests[-1][2] == "application/x-www-form-urlencoded"
    assert_code_not_logged(caplog)


async def test_sms_can_go_through_a_messaging_service(twilio: FakeTwilio) -> None:
    sender = TwilioSmsSender(twilio.client(), messaging_service_sid="MG" + "1" * 32)
    result = await sender.send(MARIA, CODE, "en", valid_for_s=60)
    assert result.ok and twilio.messages[-1]["MessagingServiceSid"] == "MG" + "1" * 32
    assert "expires in 1 minute." in twilio.messages[-1]["Body"]


async def test_voice_call_reads_the_code_digit_by_digit_twice(twilio: FakeTwilio, caplog) -> None:
    result = await TwilioVoiceSender(twilio.client(), from_number=FROM_NUMBER).send(MARIA, CODE, "es", valid_for_s=300)
    assert result.ok and result.provider_id.startswith("CA")
    call = twilio.calls[-1]
    assert call["To"] == "+573001234567" and call["From"] == FROM_NUMBER
    twiml = call["Twiml"]
    assert twiml.count('<Say language="es-MX">') == 2
    assert twiml.count("0, 4, 7, 1, 9, 3") == 2 and CODE not in twiml
    assert_code_not_logged(caplog)


def test_voice_twiml_speaks_english_for_english_customers() -> None:
    twiml = code_twiml("5512", "en")
    assert twiml.count('<Say language="en-US">') == 2 and "Your verification code is: 5, 5, 1, 2." in twiml


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, 21211, DeliveryErrorKind.INVALID_DESTINATION),
        (400, 21614, DeliveryErrorKind.INVALID_DESTINATION),
        (400, 21610, DeliveryErrorKind.REJECTED),  # recipient replied STOP
        (429, 20429, DeliveryErrorKind.REJECTED),
        (500, 20500, DeliveryErrorKind.UNREACHABLE),
        (503, 20503, DeliveryErrorKind.UNREACHABLE),
    ],
)
@pytest.mark.parametrize("sender_class", [TwilioSmsSender, TwilioVoiceSender])
async def test_twilio_errors_are_classified(twilio: FakeTwilio, caplog, sender_class, status, code, kind) -> None:
    twilio.fail_with(status, code, "The 'To' number +573001234567 is not a valid phone number.")
    result = await sender_class(twilio.client(), from_number=FROM_NUMBER).send(MARIA, CODE, "es", valid_for_s=300)
    assert not result.ok and result.error is kind and result.provider_id is None
    assert str(code) in result.message and "+573001234567" not in result.message
    assert_code_not_logged(caplog)


async def test_a_number_twilio_finds_invalid_is_an_invalid_destination(twilio: FakeTwilio, caplog) -> None:
    """Not a switched failure: the fake validates the number like Twilio does."""
    sender = TwilioSmsSender(twilio.client(), from_number=FROM_NUMBER)
    result = await sender.send(Contact(phone_e164="3001234567"), CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.INVALID_DESTINATION and "21211" in result.message
    assert_code_not_logged(caplog)


async def test_wrong_twilio_credentials_are_a_rejection_that_names_the_fix(twilio: FakeTwilio, caplog) -> None:
    sender = TwilioSmsSender(twilio.client(auth_token="0" * 32), from_number=FROM_NUMBER)
    result = await sender.send(MARIA, CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.REJECTED
    assert "20003" in result.message and "auth token" in result.message
    assert_code_not_logged(caplog)


@pytest.mark.parametrize("sender_class", [TwilioSmsSender, TwilioVoiceSender])
async def test_a_slow_twilio_is_a_timeout(twilio: FakeTwilio, caplog, sender_class) -> None:
    twilio.answer_slowly(1.0)
    sender = sender_class(twilio.client(timeout_s=5.0), from_number=FROM_NUMBER, timeout_s=0.4)
    result = await sender.send(MARIA, CODE, "en", valid_for_s=300)
    assert result.error is DeliveryErrorKind.TIMEOUT
    assert_code_not_logged(caplog)


async def test_the_http_clients_own_timeout_is_also_a_timeout(twilio: FakeTwilio, caplog) -> None:
    twilio.answer_slowly(1.0)
    sender = TwilioSmsSender(twilio.client(timeout_s=0.3), from_number=FROM_NUMBER, timeout_s=5.0)
    result = await sender.send(MARIA, CODE, "en", valid_for_s=300)
    assert result.error is DeliveryErrorKind.TIMEOUT
    assert_code_not_logged(caplog)


async def test_an_unreachable_twilio_is_unreachable(caplog) -> None:
    from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, LoopbackHttpClient
    from twilio.rest import Client

    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LoopbackHttpClient(f"http://127.0.0.1:{free_port()}", timeout=2))
    result = await TwilioSmsSender(client, from_number=FROM_NUMBER).send(MARIA, CODE, "es", valid_for_s=300)
    assert result.error is DeliveryErrorKind.UNREACHABLE
    assert_code_not_logged(caplog)


async def test_no_phone_number_is_an_invalid_destination(twilio: FakeTwilio) -> None:
    before = len(twilio.requests)
    result = await TwilioSmsSender(twilio.client(), from_number=FROM_NUMBER).send(
        Contact(email="a@b.example"), CODE, "es", valid_for_s=300
    )
    assert result.error is DeliveryErrorKind.INVALID_DESTINATION and len(twilio.requests) == before


def test_an_sms_sender_needs_something_to_send_from(twilio: FakeTwilio) -> None:
    with pytest.raises(ValueError, match="from_number"):
        TwilioSmsSender(twilio.client())
