"""Measure accuracy on labelled recordings and pick thresholds from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import emit, reports_errors

JSON = typer.Option(False, "--json", help="Print the result as JSON.")
CHANNEL = typer.Option("original", "--channel", help="original, or telephone (300-3400 Hz, 8 kHz, G.711 round trip).")
NORMALISATIONS = ("none", "asnorm", "centred-asnorm")
PROTOCOL = typer.Option("pairs", "--protocol", help="pairs (every utterance pair) or enrol3 (3-utterance enrolment).")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("calibrate")(calibrate)


def _run(ctx: typer.Context, manifest: Path, channel: str, protocol: str, normalisations: list[str]):  # type: ignore[no-untyped-def]
    from voiceprints.errors import VoiceprintError
    from voiceprints.evaluation.run import evaluate as run_evaluation

    if channel not in ("original", "telephone"):
        raise VoiceprintError(f"unknown channel {channel!r}; use original or telephone")
    if protocol not in ("pairs", "enrol3"):
        raise VoiceprintError(f"unknown protocol {protocol!r}; use pairs or enrol3")
    cli = ctx_of(ctx)
    engine = cli.engine()
    return run_evaluation(
        manifest, engine.embedder, engine.detector, channel=channel, protocol=protocol,  # type: ignore[arg-type]
        normalisations=normalisations, cache_dir=cli.settings.data_dir / "cache" / "embeddings",
        top_n=cli.settings.verification.cohort_top_n, min_cohort_speakers=cli.settings.verification.min_cohort_size,
    )


@reports_errors
def evaluate(ctx: typer.Context, manifest: Path = typer.Argument(..., help="CSV: path,speaker,utterance_id[,role]."),
             channel: str = CHANNEL, protocol: str = PROTOCOL,
             normalisation: str = typer.Option("all", help="none, asnorm, centred-asnorm or all."),
             json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
             det: Optional[Path] = typer.Option(None, "--det", help="Draw the DET curve(s) to this PNG.")) -> None:
    """EER, minDCF and FRR at FAR 1 % / 0.1 % on labelled recordings (embeddings are cached)."""
    from voiceprints.scoring.metrics import det_curve, plot_det

    norms = list(NORMALISATIONS) if normalisation == "all" else [normalisation]
    result = _run(ctx, manifest, channel, protocol, norms)
    typer.echo(f"model {result.model_id}, {result.files} files ({len(result.skipped)} unusable)")
    for c in result.conditions:
        typer.echo(c.report.row())
    for note in result.notes:
        typer.echo(f"note: {note}")
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    if det is not None:
        curves = {c.report.condition: det_curve(c.scores.target, c.scores.nontarget)[:2] for c in result.conditions}
        plot_det(curves, det)
        typer.echo(f"DET curve written to {det}")


@reports_errors
def calibrate(ctx: typer.Context, manifest: Path = typer.Argument(..., help="CSV: path,speaker,utterance_id[,role]."),
              channel: str = typer.Option("original", "--channel",
                                          help="Use 'original' for recordings that came from your phone line."),
              protocol: str = typer.Option("enrol3", "--protocol", help="enrol3 matches how callers are enrolled."),
              target_far: Optional[float] = typer.Option(None, help="False-accept rate for the accept threshold."),
              target_frr: Optional[float] = typer.Option(None, help="False-reject rate for the reject threshold."),
              as_json: bool = JSON) -> None:
    """Pick accept/reject thresholds from labelled recordings and store them for the current model."""
    from voiceprints.scoring.calibration import calibrate as pick

    settings = ctx_of(ctx).settings
    far = target_far or settings.verification.target_far
    frr = target_frr or settings.verification.target_frr
    result = _run(ctx, manifest, channel, protocol, list(NORMALISATIONS))
    store = ctx_of(ctx).store()
    saved = []
    for c in result.conditions:
        cal = pick(c.scores.target, c.scores.nontarget, model_id=result.model_id, normalisation=c.normalisation,
                   target_far=far, target_frr=frr, source=f"{manifest} ({channel}, {protocol})")
        store.save_calibration(cal)
        saved.append(cal)
    emit({"calibrations": [vars(c) for c in saved], "notes": result.notes}, as_json, "\n".join(
        [f"{c.normalisation:<7} accept >= {c.accept_threshold:.4f} (FAR {c.target_far:.2%}), reject < "
         f"{c.reject_threshold:.4f} (FRR {c.target_frr:.2%}) from {c.n_target}/{c.n_nontarget} trials"
         for c in saved] + [f"note: {n}" for n in result.notes]))
