"""One-time codes generated here: single use, expiring, limited, stored only as a keyed hash."""

from __future__ import annotations

import hmac
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from ivr.db import OtpChallenge, open_database
from ivr.db.customers import CustomerDirectory
from ivr.otp.config import OtpConfig
from ivr.otp.errors import ResendRefused
from ivr.otp.service import OtpResult, OtpService
from ivr.otp.codes import generate_code
from tests.fakes.postgres import temporary_database

SECRET = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        # Whole seconds: no microsecond digits in stored timestamps that could
        # look like a code when the database is scanned for codes.
        self.now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def postgres_url():
    with temporary_database("ivr_otp_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ivr.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = open_database(url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def otp(db, clock) -> OtpService:
    return OtpService(db, SECRET, OtpConfig(), clock=clock)


_accounts = iter(range(10_000, 99_999))


@pytest.fixture
def customer(db) -> int:
    return CustomerDirectory(db).add(str(next(_accounts)), phone_e164="+573001234567").id


def _other(code: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in code)


def test_codes_are_uniform_digits_of_the_configured_length_with_leading_zeros_allowed() -> None:
    codes = [generate_code(6) for _ in range(2000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert any(c.startswith("0") for c in codes)
    counts = Counter("".join(codes))
    # 12,000 digits: 1,200 expected per digit, standard deviation ~33.
    assert set(counts) == set("0123456789")
    assert all(1000 < n < 1400 for n in counts.values()), counts
    assert len({generate_code(8) for _ in range(50)}) == 50


def test_the_right_code_works_once(otp: OtpService, customer: int) -> None:
    challenge, code = otp.issue(customer, "sms")
    first = otp.verify(challenge, code)
    assert first.ok and first.result is OtpResult.OK and first.remaining_attempts == 2
    assert otp.verify(challenge, code).result is OtpResult.USED


def test_keypad_terminators_are_ignored(otp: OtpService, customer: int) -> None:
    challenge, code = otp.issue(customer, "voice")
    assert otp.verify(challenge, f"{code}#").ok


def test_a_wrong_code_says_how_many_attempts_remain(otp: OtpService, customer: int) -> None:
    challenge, code = otp.issue(customer, "sms")
    wrong = otp.verify(challenge, _other(code))
    assert wrong.result is OtpResult.WRONG and wrong.remaining_attempts == 2 and not wrong.ok
    assert otp.verify(challenge, code).ok


def test_the_code_expires_after_its_time_to_live(otp: OtpService, customer: int, clock: Clock) -> None:
    early, early_code = otp.issue(customer, "sms")
    late, late_code = otp.issue(customer, "sms")
    clock.advance(299)
    assert otp.verify(early, early_code).ok
    clock.advance(2)
    assert otp.verify(late, late_code).result is OtpResult.EXPIRED
    with otp._db.sessions() as session:
        assert session.get(OtpChallenge, late).status == "expired"


def test_attempts_are_limited_and_the_right_code_is_refused_afterwards(otp: OtpService, customer: int) -> None:
    challenge, code = otp.issue(customer, "sms")
    results = [otp.verify(challenge, _other(code)) for _ in range(3)]
    assert [(r.result, r.remaining_attempts) for r in results] == [
        (OtpResult.WRONG, 2),
        (OtpResult.WRONG, 1),
        (OtpResult.TOO_MANY_ATTEMPTS, 0),
    ]
    assert otp.verify(challenge, code).result is OtpResult.TOO_MANY_ATTEMPTS


def test_an_unknown_challenge_is_reported_as_such(otp: OtpService) -> None:
    assert otp.verify("0" * 32, "123456").result is OtpResult.UNKNOWN
    with pytest.raises(ResendRefused) as refused:
        otp.resend("0" * 32)
    assert refused.value.reason == "unknown"


def test_resend_waits_for_the_cooldown_then_replaces_the_code(otp: OtpService, customer: int, clock: Clock) -> None:
    challenge, old = otp.issue(customer, "sms")
    clock.advance(10)
    with pytest.raises(ResendRefused) as refused:
        otp.resend(challenge)
    assert refused.value.reason == "cooldown" and refused.value.retry_after_s == pytest.approx(20)
    clock.advance(20)
    same_challenge, new = otp.resend(challenge)
    assert same_challenge == challenge
    if new != old:  # 1 in a million they coincide
        assert otp.verify(challenge, old).result is OtpResult.WRONG
    assert otp.verify(challenge, new).ok


def test_resends_are_limited(otp: OtpService, customer: int, clock: Clock) -> None:
    challenge, _ = otp.issue(customer, "email")
    for _ in range(2):
        clock.advance(30)
        otp.resend(challenge)
    clock.advance(30)
    with pytest.raises(ResendRefused) as refused:
        otp.resend(challenge)
    assert refused.value.reason == "too_many_resends"


def test_a_resend_gives_an_expired_challenge_a_fresh_lifetime_but_no_fresh_attempts(
    otp: OtpService, customer: int, clock: Clock
) -> None:
    challenge, code = otp.issue(customer, "sms")
    otp.verify(challenge, _other(code))
    otp.verify(challenge, _other(code))
    clock.advance(400)
    assert otp.verify(challenge, code).result is OtpResult.EXPIRED
    _, fresh = otp.resend(challenge)
    clock.advance(200)
    assert otp.verify(challenge, _other(fresh)).result is OtpResult.TOO_MANY_ATTEMPTS
    assert otp.verify(challenge, fresh).result is OtpResult.TOO_MANY_ATTEMPTS


def test_a_used_challenge_cannot_be_resent(otp: OtpService, customer: int, clock: Clock) -> None:
    challenge, code = otp.issue(customer, "sms")
    otp.verify(challenge, code)
    clock.advance(60)
    with pytest.raises(ResendRefused) as refused:
        otp.resend(challenge)
    assert refused.value.reason == "closed"


def test_a_cancelled_challenge_no_longer_accepts_its_code(otp: OtpService, customer: int) -> None:
    challenge, code = otp.issue(customer, "sms")
    otp.cancel(challenge)
    assert otp.verify(challenge, code).result is OtpResult.EXPIRED


def test_old_challenges_are_purged(otp: OtpService, db, customer: int, clock: Clock) -> None:
    old, _ = otp.issue(customer, "sms")
    clock.advance(300 + 3600)
    recent, _ = otp.issue(customer, "sms")
    # >= 1: on PostgreSQL the module shares one database with other tests.
    assert otp.purge(older_than_s=1800) >= 1
    assert otp.verify(old, "123456").result is OtpResult.UNKNOWN
    with db.sessions() as session:
        assert session.get(OtpChallenge, recent) is not None


def test_codes_are_compared_in_constant_time(otp: OtpService, customer: int, monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    challenge, code = otp.issue(customer, "sms")
    assert otp.verify(challenge, code).ok
    assert len(calls) == 1 and all(isinstance(x, bytes) and len(x) == 32 for x in calls[0])


def test_only_a_keyed_hash_of_the_code_is_stored(otp: OtpService, db, customer: int, tmp_path: Path) -> None:
    issued = [otp.issue(customer, "sms") for _ in range(5)]
    codes = [code for _, code in issued]
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM otp_challenges")).all()
    dump = repr(rows)
    assert all(code not in dump for code in codes)
    with db.sessions() as session:
        stored = session.scalars(select(OtpChallenge.code_hash)).all()
    assert all(len(h) == 32 for h in stored)
    if db.engine.dialect.name == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("ivr.db*"))
        assert raw and all(code.encode() not in raw for code in codes)
    # Another server secret does not accept the code: the hash is keyed.
    other = OtpService(db, bytes(reversed(range(32))), clock=otp._clock)
    assert other.verify(issued[0][0], codes[0]).result is OtpResult.WRONG


def test_bad_configuration_and_inputs_are_refused(db, customer: int) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        OtpService(db, b"short")
    otp = OtpService(db, SECRET)
    with pytest.raises(ValueError, match="channel"):
        otp.issue(customer, "fax")
    with pytest.raises(LookupError):
        otp.issue(999_999_999, "sms")


def _hold_write_lock(db, challenge_id: str):
    """Block writers to the challenge until the returned function is called.

    This holds the race open: both verifications start while the lock is
    held and proceed at the same moment once it is released.
    """
    if db.engine.dialect.name == "sqlite":
        connection = sqlite3.connect(db.engine.url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        return lambda: (connection.execute("ROLLBACK"), connection.close())
    raw = db.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("SELECT id FROM otp_challenges WHERE id = %s FOR UPDATE", (challenge_id,))
    return lambda: (raw.rollback(), raw.close())


def _verify_together(otp: OtpService, db, challenge: str, entries: list[str]) -> list:
    release = _hold_write_lock(db, challenge)
    results: list = [None] * len(entries)

    def verify(i: int) -> None:
        results[i] = otp.verify(challenge, entries[i])

    threads = [threading.Thread(target=verify, args=(i,)) for i in range(len(entries))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    release()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    return results


def test_two_simultaneous_entries_of_the_right_code_succeed_only_once(otp: OtpService, db, customer: int) -> None:
    for _ in range(3):
        challenge, code = otp.issue(customer, "sms")
        results = _verify_together(otp, db, challenge, [code, code])
        assert sorted(r.result.value for r in results) == ["ok", "used"]


def test_simultaneous_guesses_cannot_exceed_the_attempt_limit(otp: OtpService, db, customer: int) -> None:
    challenge, code = otp.issue(customer, "sms")
    results = _verify_together(otp, db, challenge, [_other(code)] * 6)
    assert Counter(r.result for r in results) == {OtpResult.WRONG: 2, OtpResult.TOO_MANY_ATTEMPTS: 4}
    with db.sessions() as session:
        row = session.get(OtpChallenge, challenge)
        assert row.attempts == 3 and row.status == "locked"
