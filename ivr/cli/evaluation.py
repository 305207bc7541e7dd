"""Measure accuracy on labelled recordings, and pick thresholds from them or from the enrolled callers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import emit, reports_errors

if TYPE_CHECKING:
    from voiceprints.evaluation.run import ConditionResult, EvaluationResult
    from voiceprints.store.base import Calibration

JSON = typer.Option(False, "--json", help="Print the result as JSON.")
CHANNEL = typer.Option("original", "--channel", help="original, or telephone (300-3400 Hz, 8 kHz, G.711 round trip).")
PROTOCOLS = ("pairs", "enrol3", "engine")
ROLES = typer.Option(
    None, "--roles",
    help="Manifest roles to use, comma-separated (e.g. eval,cohort). Default: every role but 'digits' "
         "(isolated digits are evaluated alone: --roles digits). 'cohort' rows are impostor-only.")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("calibrate")(calibrate)


def _methods() -> tuple[str, ...]:
    from voiceprints.scoring.normalise import METHODS

    return METHODS


def _run(ctx: typer.Context, manifest: Path, channel: str, protocol: str, normalisations: Sequence[str],
         roles: Optional[str], enrol_utterances: int = 3, cohort_folds: int = 2) -> "EvaluationResult":
    from voiceprints.errors import VoiceprintError
    from voiceprints.evaluation.run import evaluate as run_evaluation

    if channel not in ("original", "telephone"):
        raise VoiceprintError(f"unknown channel {channel!r}; use original or telephone")
    if protocol not in PROTOCOLS:
        raise VoiceprintError(f"unknown protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    unknown = [n for n in normalisations if n not in _methods()]
    if unknown:
        raise VoiceprintError(f"unknown normalisation {unknown[0]!r}; use {', '.join(_methods())} or all")
    cli = ctx_of(ctx)
    engine = cli.engine()
    calibrations = [c for n in normalisations if (c := cli.store().get_calibration(engine.model_id, n)) is not None]
    return run_evaluation(
        manifest, engine, channel=channel, protocol=protocol,  # type: ignore[arg-type]
        normalisations=normalisations, cache_dir=cli.settings.data_dir / "cache" / "probes",
        roles=[r for r in roles.split(",") if r.strip()] if roles else None,
        enrol_utterances=enrol_utterances, cohort_folds=cohort_folds, calibrations=calibrations,
    )


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f} %"


def _engine_lines(c: "ConditionResult") -> list[str]:
    e = c.engine
    assert e is not None
    lines = [
        f"engine protocol, {c.normalisation}: {e.enrolled} enrolled"
        + (f" ({len(e.enrolment_refused)} refused)" if e.enrolment_refused else "")
        + f", {e.probes} test clips ({e.probes_gated} fail the quality gate)",
    ]
    for norm, t in e.thresholds.items():
        lines.append(f"  thresholds ({norm}): accept >= {t['accept']:.4f}, reject < {t['reject']:.4f} "
                     f"({t['n_target']} target / {t['n_nontarget']} non-target trials behind them: {t['source']})")
    g, i = e.genuine, e.impostor
    lines.append(f"  genuine claims  {g.scored:>7} scored: accepted {_pct(e.genuine_accept_rate)}, grey band "
                 f"{_pct(g.rate(g.grey))}, rejected {_pct(g.rate(g.reject))}  ({g.gated} gated by quality)")
    lines.append(f"  impostor claims {i.scored:>7} scored: FAR {_pct(e.far, 3)} ({i.accept} accepted; 95 % upper "
                 f"bound {_pct(e.far_upper_95(), 3)}), grey band {_pct(i.rate(i.grey))}, rejected "
                 f"{_pct(i.rate(i.reject))}  ({i.gated} gated by quality)")
    for refused in e.enrolment_refused:
        lines.append(f"  enrolment refused: {refused}")
    return lines


@reports_errors
def evaluate(ctx: typer.Context, manifest: Path = typer.Argument(..., help="CSV: path,speaker,utterance_id[,role]."),
             channel: str = CHANNEL,
             protocol: str = typer.Option(
                 "enrol3", "--protocol",
                 help="pairs (every utterance pair), enrol3 (3-utterance voiceprints), or engine (enrol through the "
                      "engine, verify every other clip against every account at the configured thresholds)."),
             normalisation: Optional[str] = typer.Option(
                 None, help="none, asnorm, centred-asnorm, centred-znorm or all. Default: all for pairs/enrol3, "
                            "the configured one for engine."),
             roles: Optional[str] = ROLES,
             enrol_utterances: int = typer.Option(3, "--enrol-utterances", min=1,
                                                  help="engine protocol: utterances per enrolment."),
             cohort_folds: int = typer.Option(
                 2, "--cohort-folds", min=0,
                 help="engine protocol: also use 'cohort' rows as the engine's normalisation cohort, split in this "
                      "many folds so no clip normalises its own trials (0: never)."),
             json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON to this "
                                                     "file ('-': print JSON instead of text)."),
             det: Optional[Path] = typer.Option(None, "--det", help="Draw the DET curve(s) to this PNG.")) -> None:
    """Accuracy on labelled recordings: EER, minDCF, FRR at FAR 1 % / 0.1 %, and (engine) what callers get."""
    from voiceprints.scoring.metrics import det_curve, plot_det

    configured = ctx_of(ctx).settings.verification.normalisation
    if normalisation in (None, "all"):
        norms = [configured] if protocol == "engine" and normalisation is None else list(_methods())
    else:
        norms = [normalisation]
    result = _run(ctx, manifest, channel, protocol, norms, roles, enrol_utterances, cohort_folds)
    as_json = json_out is not None and str(json_out) == "-"
    if not as_json:
        typer.echo(f"model {result.model_id}, roles {','.join(r or '(empty)' for r in result.roles)}: "
                   f"{result.files} files ({len(result.skipped)} unreadable, {result.gated} fail the quality gate)")
        for c in result.conditions:
            if c.engine is not None:
                typer.echo("\n".join(_engine_lines(c)))
            if c.report is not None:
                typer.echo(("  scores: " if c.engine is not None else "") + c.report.row())
        for note in result.notes:
            typer.echo(f"note: {note}")
    data = json.dumps(result.to_dict(), indent=2, default=str)
    if as_json:
        typer.echo(data)
    elif json_out is not None:
        json_out.write_text(data)
    if det is not None:
        curves = {c.report.condition: det_curve(c.scores.target, c.scores.nontarget)[:2]
                  for c in result.conditions if c.report is not None and c.scores is not None}
        if curves:
            plot_det(curves, det)
            if not as_json:
                typer.echo(f"DET curve written to {det}")


@reports_errors
def calibrate(ctx: typer.Context,
              manifest: Optional[Path] = typer.Argument(None, help="CSV: path,speaker,utterance_id[,role]; "
                                                        "not with --from-enrolments."),
              from_enrolments: bool = typer.Option(
                  False, "--from-enrolments",
                  help="Measure thresholds on the enrolled callers themselves: leave-one-out genuine trials from each "
                       "voiceprint's enrolment utterances, impostor trials across speakers."),
              yes: bool = typer.Option(False, "--yes", help="--from-enrolments: store the proposed thresholds "
                                                           "(without it they are only shown)."),
              channel: str = typer.Option("original", "--channel",
                                          help="Use 'original' for recordings that came from your phone line."),
              protocol: str = typer.Option("engine", "--protocol",
                                           help="engine (what the engine computes; default), enrol3 or pairs."),
              roles: Optional[str] = ROLES,
              target_far: Optional[float] = typer.Option(None, help="False-accept rate for the accept threshold."),
              target_frr: Optional[float] = typer.Option(None, help="False-reject rate for the reject threshold."),
              min_nontarget: Optional[int] = typer.Option(
                  None, "--min-nontarget", help="--from-enrolments: impostor trials required (default 10/target-FAR; "
                                                "never below 1/target-FAR)."),
              det: Optional[Path] = typer.Option(None, "--det", help="Draw the DET curve to this PNG."),
              as_json: bool = JSON) -> None:
    """Pick accept/reject thresholds for the current model and store them (audited)."""
    from voiceprints.errors import VoiceprintError

    settings = ctx_of(ctx).settings
    far = target_far or settings.verification.target_far
    frr = target_frr or settings.verification.target_frr
    if from_enrolments:
        if manifest is not None:
            raise VoiceprintError("give either a manifest or --from-enrolments, not both")
        _calibrate_from_enrolments(ctx, far, frr, min_nontarget, yes, det, as_json)
        return
    if manifest is None:
        raise VoiceprintError("give a manifest of labelled recordings, or --from-enrolments")
    _calibrate_from_manifest(ctx, manifest, channel, protocol, roles, far, frr, as_json)


def _calibrate_from_manifest(ctx: typer.Context, manifest: Path, channel: str, protocol: str, roles: Optional[str],
                             far: float, frr: float, as_json: bool) -> None:
    from voiceprints.scoring.calibration import calibrate as pick

    norms = [ctx_of(ctx).settings.verification.normalisation] if protocol == "engine" else list(_methods())
    result = _run(ctx, manifest, channel, protocol, norms, roles)
    store = ctx_of(ctx).store()
    saved, notes = [], list(result.notes)
    for c in result.conditions:
        if c.scores is None or not c.scores.target.size or not c.scores.nontarget.size:
            notes.append(f"{c.normalisation}: no scored trials of both kinds; nothing calibrated")
            continue
        cal = pick(c.scores.target, c.scores.nontarget, model_id=result.model_id, normalisation=c.normalisation,
                   target_far=far, target_frr=frr, source=f"{manifest} ({channel}, {protocol})",
                   created_at=store.clock())
        store.save_calibration(cal)
        _audit(ctx, cal)
        saved.append(cal)
    emit({"calibrations": [vars(c) for c in saved], "notes": notes}, as_json, "\n".join(
        [_describe(c) for c in saved] + [f"note: {n}" for n in notes]))


def _describe(c: "Calibration") -> str:
    return (f"{c.normalisation:<14} accept >= {c.accept_threshold:.4f} (FAR {c.target_far:.2%}), reject < "
            f"{c.reject_threshold:.4f} (FRR {c.target_frr:.2%}) from {c.n_target}/{c.n_nontarget} trials")


def _calibrate_from_enrolments(ctx: typer.Context, far: float, frr: float, min_nontarget: Optional[int], yes: bool,
                               det: Optional[Path], as_json: bool) -> None:
    import math

    from voiceprints.embedding.base import layout_of
    from voiceprints.errors import VoiceprintError
    from voiceprints.scoring.calibration import MIN_TARGET_TRIALS
    from voiceprints.scoring.calibration import calibrate as pick
    from voiceprints.scoring.metrics import det_curve, eer, frr_at_far, plot_det
    from voiceprints.scoring.normalise import Population, build_normaliser
    from voiceprints.scoring.self_calibration import InsufficientTrialsError, check_counts, enrolment_trials

    cli = ctx_of(ctx)
    engine = cli.engine()
    vconf = cli.settings.verification
    floor = math.ceil(1.0 / far - 1e-9)
    need = max(floor, min_nontarget if min_nontarget is not None else math.ceil(10.0 / far - 1e-9))
    # The enrolled callers only, all of them: a cohort file's recordings have no genuine trials to
    # offer, and the engine's own population samples utterances of at most a few hundred callers.
    ids, matrix = engine.store.load_matrix(engine.model_id)
    if not ids:
        raise VoiceprintError(f"nobody is enrolled with model {engine.model_id}; nothing to calibrate on")
    utt_ids, utterances = engine.store.load_utterances(engine.model_id)
    population = Population(matrix, tuple(ids), utterances if utt_ids else matrix[:0], tuple(utt_ids))
    # Scored exactly as calls are: with the engine's own normaliser (its population may add a cohort file).
    normaliser = engine.normaliser() or build_normaliser(vconf.normalisation, population, layout_of(engine.embedder),
                                                          top_n=vconf.cohort_top_n)
    trials = enrolment_trials(population, normaliser)
    try:
        check_counts(trials, target_far=far, min_speakers=vconf.min_cohort_size, min_nontarget=need,
                     min_target=MIN_TARGET_TRIALS)
    except InsufficientTrialsError as exc:
        raise VoiceprintError(f"not calibrating: {exc}") from None
    now = engine.store.clock()
    cal = pick(trials.target, trials.nontarget, model_id=engine.model_id, normalisation=vconf.normalisation,
               target_far=far, target_frr=frr, created_at=now,
               source=f"enrolled population: {trials.speakers} speakers, {trials.utterances} enrolment utterances "
                      f"(leave-one-out genuine, cross-speaker impostor), {now.date().isoformat()}")
    e, _ = eer(trials.target, trials.nontarget)
    points = {f"{p:g}": frr_at_far(trials.target, trials.nontarget, p) for p in (0.01, 0.001)}
    achieved_far = float((trials.nontarget >= cal.accept_threshold).mean())
    achieved_frr = float((trials.target < cal.accept_threshold).mean())
    current = engine.calibration(vconf.normalisation)
    if det is not None:
        plot_det({f"{engine.model_id} ({vconf.normalisation})": det_curve(trials.target, trials.nontarget)[:2]},
                 det, title="DET on the enrolled population")
    if yes:
        cli.store().save_calibration(cal)
        _audit(ctx, cal)
    data = {
        "model_id": engine.model_id, "normalisation": vconf.normalisation, "stored": yes,
        "speakers": trials.speakers, "utterances": trials.utterances,
        "n_target": int(trials.target.size), "n_nontarget": int(trials.nontarget.size), "eer": e,
        "frr_at_far": {k: {"frr": v[0], "threshold": v[1], "measurable": v[2]} for k, v in points.items()},
        "proposed": {"accept_threshold": cal.accept_threshold, "reject_threshold": cal.reject_threshold,
                     "target_far": far, "target_frr": frr, "far_on_these_trials": achieved_far,
                     "not_accepted_on_these_trials": achieved_frr, "source": cal.source},
        "current": {"accept_threshold": current.accept_threshold, "reject_threshold": current.reject_threshold,
                    "source": current.source},
        "det": None if det is None else str(det),
    }
    lines = [
        f"model {engine.model_id} ({vconf.normalisation}); {trials.speakers} enrolled speakers, "
        f"{trials.utterances} enrolment utterances",
        f"trials: {trials.target.size:,} genuine (leave-one-out), {trials.nontarget.size:,} impostor (cross-speaker)",
        f"DET: EER {e * 100:.2f} %; "
        + "; ".join(f"FRR {v[0] * 100:.2f} % at FAR {float(k) * 100:g} %" + ("" if v[2] else " (too few trials)")
                    for k, v in points.items()),
        f"proposed: accept >= {cal.accept_threshold:.4f} (FAR {achieved_far * 100:.3f} % on these trials, "
        f"{achieved_frr * 100:.2f} % of genuine not accepted), reject < {cal.reject_threshold:.4f}",
        f"current:  accept >= {current.accept_threshold:.4f}, reject < {current.reject_threshold:.4f} "
        f"({current.source})",
        "stored." if yes else "not stored: run again with --yes to use these thresholds.",
    ]
    if det is not None:
        lines.append(f"DET curve written to {det}")
    emit(data, as_json, "\n".join(lines))


def _audit(ctx: typer.Context, cal: "Calibration") -> None:
    """One audit row per stored calibration: who changed the thresholds that decide calls, to what."""
    ctx_of(ctx).audit(
        "calibrate", None,
        f"thresholds of {cal.model_id} ({cal.normalisation}) set: accept >= {cal.accept_threshold:.4f}, "
        f"reject < {cal.reject_threshold:.4f}, from {cal.n_target:,} genuine / {cal.n_nontarget:,} "
        f"impostor trials ({cal.source})",
    )
