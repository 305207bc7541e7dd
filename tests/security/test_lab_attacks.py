"""The attacks of this directory, by phone, through the real lab Asterisk 22 with sipp as the attacker.

One worker with the shipped defaults (policy, limits, lease, audit) and
e-mail configured only for security notices: the victims' code channel is
SMS, which is not configured here, so the enrolment line falls back to the
PIN, the factor an attacker can guess. Prompts are 0.25 s tones to keep the
calls short (as in tests/lab/test_e2e_calls.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from ivr.audit.log import AuditLog
from ivr.db.engine import open_database
from ivr.prompts.catalog import PROMPTS
from ivr.service.worker import VoiceAuthService
from ivr.settings import Settings
from tests.fakes.mailbox import running_mailbox
from scripts.lab.asterisk import Lab
from scripts.lab.callers import DialplanResults, keys, pause, place_call, quiet, running_worker, speak, speech_file
from tests.lab.test_e2e_calls import GENERATED_PROMPTS, write_tone
from tests.speech import SENTENCES, SPEAKERS, synth
from voiceprints.audio.telephone import telephone_channel

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PIN = "2580"
GUESSED, PARALLEL, SILENT, REENROL = "6101", "6102", "6103", "6104"
EMAIL = "victim@bank.co"


@pytest.fixture(scope="module")
def mailbox():
    with running_mailbox() as (box, port):
        yield box, port


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work, cache = tmp_path_factory.mktemp("attackers"), tmp_path_factory.mktemp("attack-speech")

    def sentences(name: str, indexes: range) -> list[np.ndarray]:
        return [synth(SPEAKERS[name], SENTENCES[i % len(SENTENCES)], 8000, cache).samples for i in indexes]

    noise = (np.random.default_rng(3).standard_normal(8000 * 20) * 3e-4).astype(np.float32)
    return {"alice": speech_file(work / "alice.ulaw", sentences("alice", range(4, 8))),
            "frank": speech_file(work / "frank.ulaw", sentences("frank", range(0, 8))),
            "silence": speech_file(work / "silence.ulaw", [noise], gap_s=0)}


@pytest.fixture(scope="module")
def settings(asterisk: Lab, mailbox, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    _, smtp_port = mailbox
    data = tmp_path_factory.mktemp("attack-worker")
    override = data / "admin-prompts"
    for name in PROMPTS:
        write_tone(override / "en" / f"{name}.wav")
    return Settings(
        data_dir=data,
        ami={"port": asterisk.ami_port, "username": asterisk.ami_user, "secret": asterisk.ami_secret},
        audiosocket={"port": asterisk.audiosocket_port}, fastagi={"port": asterisk.agi_port}, http={"port": 0},
        prompts={"generated_dir": GENERATED_PROMPTS, "override_dir": override},
        service={"shutdown_grace_s": 5},
        # Silent callers wait 4 s for speech (15 s in production): shorter calls, same counting.
        flows={"verify_listen_deadline_s": 4.0},
        otp={"smtp": {"host": "127.0.0.1", "port": smtp_port, "from_address": "security@bank.example",
                      "starttls": False}},
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(settings: Settings, tmp_path_factory):
    async with running_worker(settings) as service:
        from ivr.db.customers import CustomerDirectory
        from ivr.knowledge.service import KnowledgeService
        from ivr.secrets import load_server_secrets

        db = open_database(settings.core().database_url())
        pepper = load_server_secrets(settings.secrets, settings.data_dir).knowledge_pepper
        cache = tmp_path_factory.mktemp("enrol-speech")
        for n, account in enumerate((GUESSED, PARALLEL, SILENT, REENROL)):
            # 8 kHz speech through the telephone channel, as the calls will carry it.
            clips = [telephone_channel(synth(SPEAKERS["alice"], SENTENCES[(n + i) % len(SENTENCES)], 8000, cache))
                     for i in range(3)]
            customer = CustomerDirectory(db).add(account, email=EMAIL, phone_e164="+573001234567",
                                                 preferred_otp_channel="sms", language="en")
            KnowledgeService(db, pepper=pepper).set_answers(customer, {"pin": PIN})
            await service.engine.aenroll(account, clips)
        db.dispose()
        yield service


def typing(digits: str, silence: Path) -> list:
    """Key in ``digits`` (0.4 s each, sipp plays them in the background), then back to the line's audio."""
    return [quiet(), keys(digits), pause(400 * len(digits) + 500), speak(silence), pause(1500)]


def audit_rows(settings: Settings, account: str, flow: str):  # type: ignore[no-untyped-def]
    db = open_database(settings.core().database_url())
    try:
        return AuditLog(db).query(identity=account, flow=flow)
    finally:
        db.dispose()


async def test_a_pin_guessing_caller_ends_locked_audited_and_the_customer_is_told(
        asterisk: Lab, worker, settings: Settings, results: DialplanResults, mailbox, audio, tmp_path: Path):
    box, _ = mailbox
    seen = []
    for n in range(3):
        # Between key entries the line carries the caller's (silent) audio, as a real phone does;
        # keys go out while it is paused (sipp would otherwise send each digit twice).
        script = [speak(audio["silence"]), pause(800), *typing(f"{GUESSED}#", audio["silence"])]
        for i in range(3):
            script += typing(f"{1111 * (n + 1) + i:04d}#", audio["silence"])
        caller = f"pin-guesser-{n}"
        await place_call(asterisk, "200", script,
                         caller=caller, workdir=tmp_path, audio=[audio["silence"]], wait_ms=60000)
        seen.append(await results.of(caller, timeout=15))
    assert [r["Result"] for r in seen] == ["FAILED", "LOCKED", "LOCKED"], seen
    seen = [r["Result"] for r in seen]
    rows = audit_rows(settings, GUESSED, "enroll")
    assert [r.result for r in rows] == seen and any(r.locked_out for r in rows)
    assert sum(1 for r in rows for f in r.factors if f["factor"] == "pin") == 2
    assert any("locked after repeated failed attempts" in n for n in box.notices(EMAIL))


async def test_simultaneous_calls_claiming_one_account_never_authenticate_two_at_once(
        asterisk: Lab, worker, settings: Settings, results: DialplanResults, audio, tmp_path: Path):
    callers = [f"parallel-{n}" for n in range(4)]
    placed = await asyncio.gather(*(
        place_call(asterisk, "100", [pause(800), keys(f"{PARALLEL}#"), pause(2000), speak(audio["alice"])],
                   caller=c, workdir=tmp_path, audio=[audio["alice"]], wait_ms=60000) for c in callers))
    assert all(p.returncode == 0 for p in placed), [(p.returncode, p.stdout[-500:], p.stderr[-800:]) for p in placed if p.returncode]
    seen = [await results.of(c, timeout=15) for c in callers]
    refused = [r for r in seen if "another call is authenticating" in r["Reason"]]
    assert refused and all(r["Result"] == "INCONCLUSIVE" for r in refused), seen
    assert [r["Result"] for r in seen].count("PASS") <= 1
    # The calls that got a try had it one after the other, never two at once (the audit row's time is
    # when the call ended; its latency, how long it had been authenticating).
    tried = sorted((r.at.timestamp() - r.latency_ms / 1000, r.at.timestamp())
                   for r in audit_rows(settings, PARALLEL, "verify") if r.factors)
    assert tried and all(end <= start for (_, end), (start, _) in zip(tried, tried[1:])), tried


async def test_repeated_silence_locks_the_account(
        asterisk: Lab, worker, results: DialplanResults, audio, tmp_path: Path):
    seen = []
    for n in range(6):
        caller = f"silent-{n}"
        await place_call(asterisk, "100", [pause(800), keys(f"{SILENT}#"), pause(2500), speak(audio["silence"])],
                         caller=caller, workdir=tmp_path, audio=[audio["silence"]], wait_ms=60000)
        seen.append((await results.of(caller, timeout=15))["Result"])
    assert seen == ["INCONCLUSIVE"] * 4 + ["LOCKED", "LOCKED"], seen


async def test_re_enrolment_by_pin_alone_is_refused(
        asterisk: Lab, worker: VoiceAuthService, results: DialplanResults, audio, tmp_path: Path):
    before = worker.engine.store.get_voiceprint(REENROL, worker.engine.model_id).vector
    script = [pause(800), keys(f"{REENROL}#"), pause(2500), keys(f"{PIN}#"), pause(2500), speak(audio["frank"])]
    await place_call(asterisk, "200", script, caller="pin-thief", workdir=tmp_path, audio=[audio["frank"]],
                     wait_ms=60000)
    result = await results.of("pin-thief", timeout=15)
    assert (result["Result"], result["Account"]) == ("FAILED", REENROL), result
    assert "pin pass" in result["Reason"] and "voice pass" not in result["Reason"], result
    after = worker.engine.store.get_voiceprint(REENROL, worker.engine.model_id).vector
    assert np.array_equal(before, after)


@pytest.mark.parametrize(("result", "route", "verified"), [
    ("PASS", "verified", "yes"), ("INCONCLUSIVE", "unverified", "no"), ("NOT_ENROLLED", "unverified", "no"),
    ("ERROR", "unverified", "no"), ("FAIL", "failed", "no"), ("LOCKED", "locked", "no")])
async def test_the_example_routing_never_sends_an_unverified_caller_where_verified_ones_go(
        asterisk: Lab, result: str, route: str, verified: str, tmp_path: Path):
    async with asterisk.ami_client() as ami:
        await ami.wait_connected(10)
        routes = DialplanResults(ami, event="VoiceAuthRoute")
        caller = f"route-{result.lower()}"
        await place_call(asterisk, f"route-{result}", [pause(500)], caller=caller, workdir=tmp_path,
                         audio=[], wait_ms=10000)
        seen = await routes.of(caller, timeout=10, flow=None)
        routes.close()
    assert (seen["Route"], seen["Verified"]) == (route, verified), seen
    if route in ("verified", "unverified"):
        assert seen["Queue"] == f"agents-{route}"
