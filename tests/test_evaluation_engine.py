"""Evaluation through the engine: roles, the quality gate, and the same score as a real verify call."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import soundfile as sf

from voiceprints.audio.io import read_audio
from voiceprints.config import CoreConfig, VerificationConfig
from voiceprints.engine import VoiceprintEngine
from voiceprints.errors import VoiceprintError
from voiceprints.evaluation.manifest import Item, read_manifest, select_roles
from voiceprints.evaluation.run import evaluate
from voiceprints.store.crypto import KeyRing
from voiceprints.store.sql import SqlVoiceprintStore

SPEAKERS = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="module")
def ge2e():
    from voiceprints.embedding.ge2e import Ge2eEmbedder

    return Ge2eEmbedder()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, utterances_of, say):
    """Five speakers x 5 sentences, a cohort speaker, one far too short answer and two isolated digits."""
    folder = tmp_path_factory.mktemp("recordings")
    rows = []

    def add(name: str, clip, utterance_id: str, role: str) -> None:
        path = folder / f"{utterance_id}.wav"
        sf.write(path, clip.samples, clip.sample_rate)
        rows.append({"path": path.name, "speaker": name, "utterance_id": utterance_id, "role": role})

    for name in SPEAKERS:
        for i, clip in enumerate(utterances_of(name, 5)):
            add(name, clip, f"{name}{i}", "eval")
    add("frank", utterances_of("frank", 1, offset=3)[0], "frank0", "cohort")
    add("alice", say("alice", "Yes."), "alice9", "eval")  # sorts last: a test clip, never enrolment
    add("bob", say("bob", "Seven."), "seven_bob_0", "digits")
    add("carol", say("carol", "Three."), "three_carol_0", "digits")
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def make_engine(tmp_path: Path, embedder, **verification) -> VoiceprintEngine:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = CoreConfig(data_dir=tmp_path, verification=VerificationConfig(**verification))
    store = SqlVoiceprintStore(f"sqlite:///{tmp_path / 'v.db'}", KeyRing.generate())
    return VoiceprintEngine(embedder, store, config)


# --- roles ----------------------------------------------------------------------
def items(*roles: str) -> list[Item]:
    return [Item(Path(f"{i}.wav"), f"s{i % 3}", f"u{i}", role) for i, role in enumerate(roles)]


def test_digits_are_left_out_by_default_and_the_note_says_how_to_get_them():
    selection = select_roles(items("eval", "eval", "cohort", "digits", "digits"))
    assert [it.role for it in selection.items] == ["eval", "eval", "cohort"]
    assert selection.roles == ("cohort", "eval")
    assert "2 row(s) with role 'digits' left out" in selection.notes[0] and "--roles digits" in selection.notes[0]


def test_digits_can_be_evaluated_alone_but_never_mixed_with_sentences():
    assert [it.role for it in select_roles(items("eval", "digits", "digits"), ["digits"]).items] == ["digits"] * 2
    assert [it.role for it in select_roles(items("digits", "digits")).items] == ["digits"] * 2  # nothing else there
    with pytest.raises(VoiceprintError, match="cannot be evaluated together"):
        select_roles(items("eval", "digits"), ["eval", "digits"])


def test_unknown_roles_and_a_cohort_without_speakers_are_refused_with_what_the_manifest_has():
    with pytest.raises(VoiceprintError, match=r"no rows with role evaluation.*eval \(2\)"):
        select_roles(items("eval", "eval"), ["evaluation"])
    with pytest.raises(VoiceprintError, match="nobody to enrol"):
        select_roles(items("eval", "cohort"), ["cohort"])


# --- quality gate -----------------------------------------------------------------
def test_a_clip_the_engine_would_not_score_is_counted_and_in_no_trial(recordings, ge2e, tmp_path):
    engine = make_engine(tmp_path, ge2e)
    result = evaluate(recordings, engine, channel="telephone", protocol="pairs", normalisations=["none"],
                      cache_dir=None, progress=False)
    assert result.roles == ("cohort", "eval") and result.files == 27  # the two digits left out
    assert result.gated == 1  # "Yes.": far less than 3 s of speech
    assert any("1 of 27 clip(s) fail the engine's quality gate" in n for n in result.notes)
    report = result.conditions[0].report
    assert report.n_target == 5 * 10  # C(5, 2) per speaker: alice's short answer is in no pair
    assert report.n_nontarget == 25 * 24 // 2 - 50 + 25  # other pairs, plus each clip against the cohort clip


def test_digits_alone_are_all_gated_and_the_error_says_so(recordings, ge2e, tmp_path):
    with pytest.raises(VoiceprintError, match="none of the 2 selected clips can be scored: 2 fail"):
        evaluate(recordings, make_engine(tmp_path, ge2e), channel="original", protocol="enrol3",
                 normalisations=["none"], roles=["digits"], cache_dir=None, progress=False)


# --- the engine protocol ----------------------------------------------------------------
def test_engine_protocol_enrols_everyone_and_decides_every_claim(recordings, ge2e, tmp_path):
    engine = make_engine(tmp_path, ge2e, min_cohort_size=3, cohort_top_n=3)
    result = evaluate(recordings, engine, channel="telephone", protocol="engine",
                      normalisations=["centred-znorm"], cache_dir=tmp_path / "cache", progress=False)
    [condition] = result.conditions
    trials = condition.engine
    assert trials.enrolled == 5 and not trials.enrolment_refused
    # Tests: 2 per speaker + alice's short answer + the cohort clip, each against all 5 accounts.
    assert trials.probes == 12 and trials.probes_gated == 1
    assert trials.genuine.trials == 11 and trials.genuine.gated == 1 and trials.genuine.scored == 10
    assert trials.impostor.trials == 49 and trials.impostor.gated == 4 and trials.impostor.scored == 45
    assert trials.fallback_trials == 0 and len(trials.target_scores) == 10
    assert trials.thresholds["centred-znorm"]["source"].startswith("shipped default")
    assert min(trials.target_scores) > sorted(trials.nontarget_scores)[-3]  # genuine claims outscore impostors
    counts = trials.genuine.accept + trials.genuine.grey + trials.genuine.reject
    assert counts == 10 and trials.far == trials.impostor.accept / 45


def test_evaluation_and_verify_give_the_same_score_for_the_same_trial(recordings, ge2e, tmp_path):
    """One scoring path: what `ivr evaluate --protocol engine` reports is what `ivr verify` decides."""
    cfg = dict(min_cohort_size=3, cohort_top_n=3)
    result = evaluate(recordings, make_engine(tmp_path / "eval", ge2e, **cfg), channel="original",
                      protocol="engine", normalisations=["centred-znorm"], cache_dir=None, progress=False,
                      cohort_folds=0)  # the cohort clip is only an impostor here, as in the live store
    records = {(account, utt): (outcome, score) for account, utt, outcome, score, _ in
               result.conditions[0].engine.records}

    live = make_engine(tmp_path / "live", ge2e, **cfg)
    rows = read_manifest(recordings)
    for name in SPEAKERS:  # a deployment enrolling the same callers from the same answers
        live.enroll(name, [read_audio(it.path) for it in rows if it.speaker == name and it.role == "eval"][:3])
    for account, utt in [("alice", "alice3"), ("alice", "bob4"), ("dave", "frank0"), ("erin", "alice9")]:
        path = next(it.path for it in rows if it.utterance_id == utt)
        decision = live.verify(account, read_audio(path))
        outcome, score = records[(account, utt)]
        assert decision.outcome.value == outcome
        assert (decision.score is None and score is None) or decision.score == pytest.approx(score, abs=1e-9)
        assert decision.normalisation == ("centred-znorm" if score is not None else "none")


def test_ivr_evaluate_engine_protocol_prints_what_callers_get_as_json(recordings, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from ivr.cli.app import app

    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICEAUTH_MODEL__EMBEDDER", "ge2e")
    monkeypatch.delenv("VOICEAUTH_KEYS", raising=False)
    result = CliRunner().invoke(app, ["evaluate", str(recordings), "--protocol", "engine", "--json", "-"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["roles"] == ["cohort", "eval"] and data["gated_by_quality"] == 1
    [row] = data["results"]
    engine = row["engine"]
    assert row["normalisation"] == engine["normalisation"] == "centred-znorm"  # the configured one
    # Five enrolled callers are fewer than the 20 the engine normalises with: every claim says so.
    assert engine["fallback_trials"] == engine["genuine"]["scored"] + engine["impostor"]["scored"] == 10 + 45
    assert set(engine["thresholds"]) == {"none"}
    assert engine["far"] == engine["impostor"]["accept"] / 45 and 0 <= engine["far_upper_95"] <= 1
    assert any("digits" in n for n in data["notes"])
