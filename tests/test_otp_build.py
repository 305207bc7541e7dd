"""Which one-time-code channels the worker offers follows from the settings alone."""

from __future__ import annotations

import logging

import pytest

from ivr.db.engine import open_database
from ivr.otp.backends import LocalOtpBackend, TwilioVerifyBackend
from ivr.otp.build import otp_backend
from ivr.otp.settings import OtpSettings

SECRET = b"s" * 32


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'ivr.db'}")


def channels(backend: LocalOtpBackend) -> set[str]:
    return set(backend._senders)  # noqa: SLF001 - the configured channels are what this test is about


def test_no_channel_configured_means_no_codes_and_says_how_to_enable_them(db, caplog):
    caplog.set_level(logging.WARNING)
    assert otp_backend(OtpSettings(), db, SECRET) is None
    assert "VOICEAUTH_OTP__SMTP__" in caplog.text


def test_an_smtp_host_enables_email_codes(db):
    settings = OtpSettings.model_validate({"smtp": {"host": "127.0.0.1", "from_address": "codes@bank.example"}})
    backend = otp_backend(settings, db, SECRET)
    assert isinstance(backend, LocalOtpBackend) and channels(backend) == {"email"}


def test_twilio_credentials_and_a_number_enable_sms_and_voice(db):
    settings = OtpSettings.model_validate({"twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "t",
                                                      "from_number": "+15005550006"}})
    backend = otp_backend(settings, db, SECRET)
    assert isinstance(backend, LocalOtpBackend) and channels(backend) == {"sms", "voice"}


def test_twilio_verify_needs_its_service_sid(db):
    settings = OtpSettings.model_validate({"backend": "twilio-verify",
                                           "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "t"}})
    with pytest.raises(ValueError, match="VERIFY_SERVICE_SID"):
        otp_backend(settings, db, SECRET)
    settings.twilio.verify_service_sid = "VA" + "0" * 32
    assert isinstance(otp_backend(settings, db, SECRET), TwilioVerifyBackend)
