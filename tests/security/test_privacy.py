"""Attack: read people's data where it should not be: files, logs, error text, and data that should be gone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from ivr.audit.log import AuditLog
from ivr.call import CallInfo
from ivr.erasure import erase_person
from ivr.service.calls import run_call
from tests.scripted_call import Keys, KeysFrom, Say, ScriptedCall
from tests.security.conftest import EMAIL, VICTIM
from tests.test_flows import phone_speech
from voiceprints.config import CoreConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.store.sql import open_store

CALLER = "+573009876543"


def test_the_data_directory_database_and_key_files_are_private(bank):
    data = bank.lines.engine.config.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("voiceprints.db", "voiceprint.keys", "server.secrets"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    for extra in data.glob("voiceprints.db-*"):  # SQLite's -wal / -shm
        assert extra.stat().st_mode & 0o077 == 0, extra


def test_an_existing_data_directory_open_to_others_is_tightened(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    data = tmp_path / "shared"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    open_store(CoreConfig(data_dir=data)).close()
    assert data.stat().st_mode & 0o777 == 0o700


async def test_logs_never_show_an_account_or_caller_number(bank_with_codes, utterances_of, caplog):
    bank = bank_with_codes
    bank.enrol_victim(utterances_of)
    caplog.set_level(logging.DEBUG)
    call = ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "frank", 5))],
                         "otp-enter": [KeysFrom(lambda: bank.box.latest_code() + "#")]},
                        info=CallInfo("log-1", CALLER, "en", {"channel": "PJSIP/x-1"}))
    await run_call(bank.lines.verify(), call)
    from ivr.service.calls import CallRunner  # the admin's per-call lines
    from ivr.service.metrics import ServiceMetrics

    again = ScriptedCall({"enter-account": [Keys(VICTIM + "#")]}, info=CallInfo("log-2", CALLER, "en", {}))
    await CallRunner({"verify": bank.lines.voice_only()}, ServiceMetrics()).run("verify", again, via="test")
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("ivr", "voiceprints")]
    text = "\n".join(r.getMessage() for r in ours)
    assert "call end log-2" in text, "the test looked at the right logs"
    for secret in (VICTIM, "3009876543", EMAIL, bank.box.latest_code()):
        assert secret not in text, secret


def test_database_errors_do_not_quote_the_values_they_were_given(bank):
    bank.lines.customers.add("770055", email="unique@bank.co")
    with pytest.raises(SQLAlchemyError) as raised:
        bank.lines.customers.add("770055", email="unique@bank.co")
    assert "770055" not in str(raised.value) and "unique@bank.co" not in str(raised.value)


async def test_erasing_a_person_removes_everything_and_keeps_the_audit_log_verifiable(bank, utterances_of):
    bank.enrol_victim(utterances_of)
    call = ScriptedCall({"enter-account": [Keys(VICTIM + "#")],
                         "verify-speak": [Say(phone_speech(utterances_of, "alice", 5))]},
                        info=CallInfo("before-erasure", CALLER, "en", {}))
    await run_call(bank.lines.voice_only(), call)
    bank.lines.limits.record_failure(VICTIM, None, "pin")
    kit = bank.lines.guard.kit
    kit.consent.record_consent(VICTIM, "ivr-enroll")
    report = erase_person(bank.lines.db, bank.lines.engine.store, kit.audit, VICTIM)
    assert report.voiceprint and report.customer_record and report.knowledge_answers == 3
    assert report.limit_records == 1 and report.consent_events == 1 and report.audit_rows_pseudonymised >= 1
    assert bank.lines.customers.get(VICTIM) is None
    assert bank.lines.engine.store.model_ids_for(VICTIM) == []
    assert kit.consent.state(VICTIM).history == ()
    assert AuditLog(bank.lines.db).query(identity=VICTIM) == []
    assert kit.audit.verify().intact


def test_an_erased_voiceprint_leaves_every_worker_cache_at_once(bank, utterances_of, say):
    from voiceprints.audio.telephone import telephone_channel

    engine = bank.lines.engine
    for account, speaker in ((VICTIM, "alice"), ("6001", "bob"), ("6002", "erin")):
        engine.enroll(account, [phone_speech(utterances_of, speaker, i) for i in range(3)])
    probe = telephone_channel(say("alice", "Please identify me from my voice, this is a longer sentence."))
    assert engine.identify(probe, top_k=1)[1][0].speaker_id == VICTIM  # now cached
    # Another process (the CLI, another worker) erases her.
    other = open_store(engine.config)
    other.delete_speaker(VICTIM)
    other.close()
    assert VICTIM not in [c.speaker_id for c in engine.identify(probe, top_k=3)[1]]


def test_an_engine_started_after_an_erasure_does_not_mistake_old_erasures_for_new(bank, utterances_of):
    engine = bank.lines.engine
    engine.enroll(VICTIM, [phone_speech(utterances_of, "alice", i) for i in range(3)])
    engine.forget(VICTIM)
    fresh = VoiceprintEngine(engine.embedder, engine.store, engine.config)
    assert fresh._change_mark == engine.store.changes_since(0).mark > 0
    fresh.close()
