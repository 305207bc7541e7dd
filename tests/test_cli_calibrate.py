"""``ivr calibrate --from-enrolments``: thresholds from the enrolled callers, shown first, stored only when confirmed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ivr.cli.app import app
from voiceprints.embedding.ge2e import ge2e_model_id
from voiceprints.scoring.cosine import l2_normalise
from voiceprints.store.base import EnrolmentMeta


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICEAUTH_MODEL__EMBEDDER", "ge2e")  # the model only names the vector space here
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    return tmp_path


def ivr(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def enrol_population(speakers: int, seed: int = 0) -> None:
    """Voiceprints with their three enrolment-utterance embeddings, as engine.enroll stores them."""
    from ivr.settings import Settings
    from voiceprints.store.sql import open_store

    store = open_store(Settings().core())
    rng = np.random.default_rng(seed)
    model = ge2e_model_id()
    for s in range(speakers):
        voice = rng.standard_normal(256)
        utterances = l2_normalise(voice + 0.7 * rng.standard_normal((3, 256)))
        store.save_voiceprint(f"{1000 + s}", model, l2_normalise(utterances.mean(axis=0)), EnrolmentMeta(3, 10.0),
                              utterances=utterances)
    store.close()


def stored_calibration():
    from ivr.settings import Settings
    from voiceprints.store.sql import open_store

    with open_store(Settings().core()) as store:
        return store.get_calibration(ge2e_model_id(), Settings().verification.normalisation)


def audit_rows():
    from ivr.audit.log import AuditLog
    from ivr.db.engine import open_database
    from ivr.settings import Settings

    db = open_database(Settings().core().database_url())
    try:
        return AuditLog(db).query(flow="calibrate")
    finally:
        db.dispose()


def test_proposed_thresholds_are_shown_with_the_det_and_not_stored_without_yes(env):
    enrol_population(25)
    det = env / "det.png"
    code, out = ivr("calibrate", "--from-enrolments", "--target-far", "0.01", "--det", str(det), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert (data["speakers"], data["n_target"], data["n_nontarget"]) == (25, 25 * 3, 25 * 24 * 3)
    proposed = data["proposed"]
    assert proposed["reject_threshold"] < proposed["accept_threshold"]
    assert proposed["far_on_these_trials"] <= 0.01
    assert data["stored"] is False and stored_calibration() is None and audit_rows() == []
    assert det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out = ivr("calibrate", "--from-enrolments", "--target-far", "0.01")
    assert "not stored: run again with --yes" in out and "proposed: accept >=" in out


def test_with_yes_the_thresholds_decide_from_then_on_and_an_audit_row_says_so(env):
    enrol_population(25)
    code, out = ivr("calibrate", "--from-enrolments", "--target-far", "0.01", "--yes", "--json")
    assert code == 0, out
    proposed = json.loads(out)["proposed"]
    cal = stored_calibration()
    assert cal.accept_threshold == pytest.approx(proposed["accept_threshold"])
    assert (cal.n_target, cal.n_nontarget) == (75, 1800) and cal.source.startswith("enrolled population: 25 speakers")
    [row] = audit_rows()
    assert row.result == "OK" and "accept >=" in row.reason and "impostor trials" in row.reason


def test_too_few_enrolled_callers_are_refused_with_how_many_more_are_needed(env):
    enrol_population(12)
    code, _ = ivr("calibrate", "--from-enrolments", "--target-far", "0.01", "--yes")
    assert code != 0 and stored_calibration() is None
    enrol_population(25)
    # 0.1 % needs 10,000 impostor trials by default: 25 callers give 1,800.
    result = CliRunner().invoke(app, ["calibrate", "--from-enrolments", "--yes"], catch_exceptions=False)
    assert result.exit_code != 0
    assert "only 1,800 impostor trials" in result.output and "needs at least 10,000" in result.output
    assert stored_calibration() is None and audit_rows() == []


def test_a_manifest_and_from_enrolments_together_are_a_usage_error(env, tmp_path):
    code, _ = ivr("calibrate", str(tmp_path / "m.csv"), "--from-enrolments")
    assert code != 0
