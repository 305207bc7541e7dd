"""Enrol, verify and identify speakers from recordings."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import ExitCode, emit, reports_errors

JSON = typer.Option(False, "--json", help="Print the result as JSON.")


def register(app: typer.Typer) -> None:
    app.command("enroll")(enroll)
    app.command("verify")(verify)
    app.command("identify")(identify)


@reports_errors
def enroll(ctx: typer.Context, speaker: str = typer.Argument(..., help="External id of the speaker (account number)."),
           files: List[Path] = typer.Argument(..., help="Three or more recordings of the speaker."),
           as_json: bool = JSON) -> None:
    """Create or replace SPEAKER's voiceprint from several recordings."""
    from ivr.notices import NoticeKind
    from voiceprints.audio.io import read_audio

    cli = ctx_of(ctx)
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
