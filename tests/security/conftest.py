"""What the attack tests share: the real engine and database, the lines wired as the worker wires them,
a real SMTP server that receives one-time codes and security notices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from ivr.otp.backends import LocalOtpBackend
from ivr.otp.caps import OtpSendCaps
from ivr.otp.config import OtpConfig
from ivr.otp.senders.smtp import SmtpConfig, SmtpOtpSender
from ivr.otp.service import OtpService
from tests.fakes.mailbox import Mailbox, running_mailbox
from tests.flow_kit import Lines, build_lines
from tests.test_flows import phone_speech
from voiceprints.config import CoreConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.store.sql import open_store

VICTIM, PIN, EMAIL = "4572", "2580", "maria.lopez@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Bank:
    """A deployment under attack: lines, the victim's data, the victim's mailbox."""

    lines: Lines
    box: Mailbox
    clock: Clock

    def enrol_victim(self, utterances_of) -> None:  # type: ignore[no-untyped-def]
        self.lines.engine.enroll(VICTIM, [phone_speech(utterances_of, "alice", i) for i in range(3)])

    def victim_vector(self):  # type: ignore[no-untyped-def]
        vp = self.lines.engine.store.get_voiceprint(VICTIM, self.lines.engine.model_id)
        return None if vp is None else vp.vector


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest.fixture
def engine(tmp_path, ge2e, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    config = CoreConfig(data_dir=tmp_path)
    eng = VoiceprintEngine(ge2e, open_store(config), config)
    yield eng
    eng.close()


def _bank(engine: VoiceprintEngine, *, codes: bool) -> Bank:  # type: ignore[no-untyped-def]
    clock = Clock()
    with running_mailbox() as (box, port):
        sender = SmtpOtpSender(SmtpConfig(host="127.0.0.1", port=port, from_address="codes@bank.example",
                                          starttls=False, timeout_s=2.0))
        probe = build_lines(engine, clock=clock)
        backend = None
        if codes:
            backend = LocalOtpBackend(OtpService(probe.db, probe.secrets.otp_secret, OtpConfig(), clock=clock),
                                      {"email": sender}, caps=OtpSendCaps(probe.db, OtpConfig(), clock=clock))
        lines = build_lines(engine, otp=backend, clock=clock, notifier_senders={"email": sender})
        # The victim prefers SMS (not configured here): codes cannot reach her, so the enrolment line
        # falls back to her PIN; security notices still reach her e-mail.
        customer = lines.customers.add(VICTIM, email=EMAIL, phone_e164="+573001234567",
                                       preferred_otp_channel="sms" if not codes else "email", language="en")
        lines.knowledge.set_answers(customer, {"pin": PIN, "dob": "15/03/1987", "postal_code": "110111"})
        yield Bank(lines, box, clock)


@pytest.fixture
def bank(engine):
    """Codes are not reachable for the victim: the enrolment and opt-out lines ask for her PIN."""
    yield from _bank(engine, codes=False)


@pytest.fixture
def bank_with_codes(engine):
    """Codes by e-mail to the victim's address on file."""
    yield from _bank(engine, codes=True)
