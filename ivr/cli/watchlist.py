"""``ivr watchlist``: known fraudsters' voices, and screening a recording against them.

Exit codes of ``screen``: 0 no match, 1 the voice matches an entry, 3 too
little speech to tell. ``remove`` of an unknown name exits 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import ExitCode, emit, reports_errors

JSON = typer.Option(False, "--json", help="Print the result as JSON.")

watchlist_app = typer.Typer(help="Known fraudsters' voices: add, list, remove, screen a recording.",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(watchlist_app, name="watchlist")


@watchlist_app.command("add")
@reports_errors
def add(ctx: typer.Context, name: str = typer.Argument(..., help="Name of the entry, e.g. a fraud case reference."),
        files: List[Path] = typer.Argument(..., help="Recordings of the fraudster's voice (3 s of speech or more)."),
        note: str = typer.Option("", "--note", help="Why the voice is on the list (kept with the entry)."),
        as_json: bool = JSON) -> None:
    """Put the voice in FILES on the watchlist as NAME (replaces an entry of that name)."""
    from voiceprints.audio.io import read_audio
    from voiceprints.watchlist import SqlWatchlistStore, entry_vector

    cli = ctx_of(ctx)
    engine = cli.engine()
    vector, speech_s = entry_vector(engine.embedder, [read_audio(f) for f in files], detector=engine.detector,
                                    min_speech_s=cli.settings.verification.min_speech_s)
    entry = SqlWatchlistStore(cli.store()).add(
        name, engine.model_id, vector, source="files: " + ", ".join(f.name for f in files), note=note,
        net_speech_s=speech_s)
    cli.audit("watchlist-add", None, f"watchlist entry {name} added from {len(files)} recording(s)")
    emit(entry.to_dict(), as_json, f"added {name} to the watchlist: {speech_s:.1f} s of speech (model {entry.model_id})")


@watchlist_app.command("add-call")
@reports_errors
def add_call(ctx: typer.Context, call_id: str = typer.Argument(..., help="The call's id (VOICEAUTH_UUID, in the "
                                                                         "audit log and the worker's log)."),
             name: str = typer.Option(..., "--name", help="Name of the entry, e.g. a fraud case reference."),
             note: str = typer.Option("", "--note", help="Why the voice is on the list."),
             as_json: bool = JSON) -> None:
    """Put the voice of a recent call (found to be fraud) on the watchlist; it expires by itself."""
    import datetime as dt

    from voiceprints.watchlist import SqlWatchlistStore
    from voiceprints.watchlist.calls import SqlCallEmbeddings

    cli = ctx_of(ctx)
    model_id, vector, speech_s = SqlCallEmbeddings(cli.store()).get(call_id)
    days = cli.settings.watchlist.call_entry_days
    entry = SqlWatchlistStore(cli.store()).add(
        name, model_id, vector, source=f"call: {call_id}", note=note, net_speech_s=speech_s,
        expires_at=cli.store().clock() + dt.timedelta(days=days) if days else None)
    cli.audit("watchlist-add", None, f"watchlist entry {name} added from call {call_id}")
    emit(entry.to_dict(), as_json, f"added {name} to the watchlist from call {call_id}"
         + (f"; it expires in {days} days" if days else ""))


@watchlist_app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every watchlist entry (never the vectors)."""
    from voiceprints.watchlist import SqlWatchlistStore

    entries = [e.to_dict() for e in SqlWatchlistStore(ctx_of(ctx).store()).entries()]
    text = "\n".join(f"{e['name']:<24} {e['model_id']:<48} {e['net_speech_s']:.1f} s  {e['source']}"
                     + (f"  ({e['note']})" if e["note"] else "") for e in entries) or "the watchlist is empty"
    emit({"entries": entries}, as_json, text)


@watchlist_app.command("remove")
@reports_errors
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="Entry to delete (every model's)."),
           as_json: bool = JSON) -> None:
    """Delete NAME from the watchlist."""
    from voiceprints.watchlist import SqlWatchlistStore

    removed = SqlWatchlistStore(ctx_of(ctx).store()).remove(name)
    if removed:
        ctx_of(ctx).audit("watchlist-del", None, f"watchlist entry {name} removed")
    emit({"name": name, "removed": removed}, as_json,
         f"removed {name} ({removed} entr{'y' if removed == 1 else 'ies'})" if removed else f"no entry named {name}")
    if not removed:
        raise typer.Exit(int(ExitCode.NOT_ENROLLED))


@watchlist_app.command("screen")
@reports_errors
def screen(ctx: typer.Context, file: Path = typer.Argument(..., help="A recording of a caller."),
           as_json: bool = JSON) -> None:
    """Does the voice in FILE match a watchlist entry? Exit 0 no, 1 yes, 3 too little speech."""
    from voiceprints.audio.io import read_audio
    from voiceprints.defences import AttackDefences

    engine = ctx_of(ctx).engine()
    probe = engine.probe(read_audio(file))
    if probe.vector is None:
        emit({"hit": None, "quality": probe.quality.to_dict()}, as_json,
             "no screening: " + "; ".join(probe.quality.reasons))
        raise typer.Exit(int(ExitCode.INCONCLUSIVE))
    # The same screen as a call's (a fused model screens on its GE2E part, where the thresholds were measured).
    result = AttackDefences(engine).screen_enrolment(probe.vector)
    emit(result.to_dict(), as_json, ("MATCH " if result.hit else "no match: ") + result.reason)
    if result.hit:
        raise typer.Exit(int(ExitCode.REJECT))
