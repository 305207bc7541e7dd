"""Enrol, verify and identify speakers from recordings."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import ExitCode, emit, reports_errors

JSON = typer.Option(False, "--json", help="Print the result as JSON.")


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.command("verify")(verify)
    app.command("identify")(identify)


@reports_errors
def enroll(ctx: typer.Context,
           speaker: Optional[str] = typer.Argument(None, help="External id of the speaker (account number)."),
           files: Optional[List[Path]] = typer.Argument(None, help="Three or more recordings of the speaker."),
           manifest: Optional[Path] = typer.Option(
               None, "--manifest", help="Bulk enrolment from recorded calls: a CSV with columns account, files "
                                        "(';'-separated) and optional channel (left/right: the caller's side)."),
           replace: bool = typer.Option(False, "--replace", help="With --manifest: re-enrol accounts that already "
                                                                 "have a voiceprint of this model."),
           notify: bool = typer.Option(True, "--notify/--no-notify", help="With --manifest: tell each customer "
                                                                          "on the contact on file."),
           progress_file: Optional[Path] = typer.Option(
               None, "--progress-file", help="With --manifest: where progress is kept for resuming "
                                             "(default: MANIFEST.progress)."),
           restart: bool = typer.Option(False, "--restart", help="With --manifest: ignore earlier progress."),
           progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                                   help="Progress bar (default: on a terminal)."),
           as_json: bool = JSON) -> None:
    """Create or replace SPEAKER's voiceprint from several recordings, or enrol a manifest of accounts.

    With --manifest each account needs consent recorded (ivr consent import) and never withdrawn;
    rows that fail are reported and the run goes on; an interrupted run resumes where it stopped.
    """
    from ivr.notices import NoticeKind
    from voiceprints.audio.io import read_audio

    cli = ctx_of(ctx)
    if manifest is not None:
        if speaker is not None or files:
            typer.echo("error: give either SPEAKER FILES... or --manifest, not both", err=True)
            raise typer.Exit(2)
        from ivr.cli.bulk import enroll_manifest

        enroll_manifest(cli, manifest, replace=replace, notify=notify, progress_file=progress_file,
                        restart=restart, show_progress=progress, as_json=as_json)
        return
    if speaker is None or not files:
        typer.echo("error: give SPEAKER and three or more recordings, or --manifest CSV", err=True)
        raise typer.Exit(2)
    engine = cli.engine()
    replaced = bool(engine.store.model_ids_for(speaker))
    result = engine.enroll(speaker, [read_audio(f) for f in files])
    vp = result.voiceprint
    cli.audit("enroll", speaker, f"voiceprint {'replaced' if replaced else 'created'} by an admin from "
              f"{len(files)} recording(s)")
    cli.notify(speaker, NoticeKind.VOICEPRINT_REPLACED if replaced else NoticeKind.VOICEPRINT_CREATED)
    emit(
        {"speaker": speaker, "model_id": vp.model_id, "utterances": vp.meta.utterance_count,
         "net_speech_s": vp.meta.net_speech_s, "consistency": round(result.consistency, 4),
         "quality": [q.to_dict() for q in result.qualities]},
        as_json,
        f"enrolled {speaker}: {vp.meta.utterance_count} utterances, {vp.meta.net_speech_s:.1f} s of speech, "
        f"consistency {result.consistency:.2f} (model {vp.model_id})",
    )


@reports_errors
def verify(ctx: typer.Context, speaker: str = typer.Argument(..., help="The identity the caller claims."),
           file: Path = typer.Argument(..., help="A recording of the caller."), as_json: bool = JSON) -> None:
    """Does FILE sound like SPEAKER? Exit 0 accept, 1 reject, 3 inconclusive."""
    from voiceprints.audio.io import read_audio
    from voiceprints.scoring.decision import Outcome

    decision = ctx_of(ctx).engine().verify(speaker, read_audio(file))
    score = "n/a" if decision.score is None else f"{decision.score:.3f}"
    emit(decision.to_dict(), as_json,
         f"{decision.outcome.value.upper()} {speaker}: score {score} "
         f"(accept >= {decision.accept_threshold:.3f}, reject < {decision.reject_threshold:.3f}, "
         f"{decision.normalisation})" + "".join(f"\n  - {r}" for r in decision.reasons))
    code = {Outcome.ACCEPT: ExitCode.OK, Outcome.REJECT: ExitCode.REJECT,
            Outcome.INCONCLUSIVE: ExitCode.INCONCLUSIVE}[decision.outcome]
    raise typer.Exit(int(code))


@reports_errors
def identify(ctx: typer.Context, file: Path = typer.Argument(..., help="A recording of an unknown caller."),
             top: int = typer.Option(5, "--top", min=1, help="How many candidates to list."),
             as_json: bool = JSON) -> None:
    """Who among the enrolled speakers sounds most like FILE?"""
    from voiceprints.audio.io import read_audio

    quality, candidates = ctx_of(ctx).engine().identify(read_audio(file), top)
    lines = [f"{i + 1}. {c.speaker_id}  {c.score:.3f}" for i, c in enumerate(candidates)]
    if not quality.ok:
        lines = ["no identification: " + "; ".join(quality.reasons)]
    elif not candidates:
        lines = ["no speakers are enrolled with this model"]
    emit({"quality": quality.to_dict(), "candidates": [{"speaker": c.speaker_id, "score": round(c.score, 4)}
                                                       for c in candidates]}, as_json, "\n".join(lines))
    if not quality.ok:
        raise typer.Exit(int(ExitCode.INCONCLUSIVE))
