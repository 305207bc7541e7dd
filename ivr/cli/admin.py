"""Voiceprint records, models, cohorts and keys: the admin's housekeeping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ivr.cli.context import ctx_of
from ivr.cli.output import ExitCode, emit, reports_errors

JSON = typer.Option(False, "--json", help="Print the result as JSON.")

voiceprints_app = typer.Typer(help="List, show, delete and export stored voiceprints.", no_args_is_help=True)
models_app = typer.Typer(help="Speaker-embedding models.", no_args_is_help=True)
cohort_app = typer.Typer(help="Score-normalisation cohorts.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of the voiceprint store.", no_args_is_help=True)
prompts_app = typer.Typer(help="The IVR prompt set (Spanish and English).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(voiceprints_app, name="voiceprints")
    app.add_typer(models_app, name="models")
    app.add_typer(cohort_app, name="cohort")
    app.add_typer(keys_app, name="keys")
    app.add_typer(prompts_app, name="prompts")
    app.command("demo")(reports_errors(demo))


def _summary(s) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"speaker": s.speaker_id, "model_id": s.model_id, "utterances": s.utterance_count,
            "net_speech_s": s.net_speech_s, "key_id": s.key_id,
            "created_at": s.created_at.isoformat(), "updated_at": s.updated_at.isoformat()}


@voiceprints_app.command("list")
@reports_errors
def list_(ctx: typer.Context, model: Optional[str] = typer.Option(None, help="Only this model_id."),
          as_json: bool = JSON) -> None:
    """Every stored voiceprint (never the vectors)."""
    rows = [_summary(s) for s in ctx_of(ctx).store().list_voiceprints(model)]
    text = "\n".join(f"{r['speaker']:<24} {r['model_id']:<48} {r['utterances']} utt  {r['net_speech_s']:.1f} s  "
                     f"updated {r['updated_at']}" for r in rows) or "no voiceprints stored"
    emit({"voiceprints": rows}, as_json, text)


@voiceprints_app.command("show")
@reports_errors
def show(ctx: typer.Context, speaker: str, as_json: bool = JSON) -> None:
    """Metadata of SPEAKER's voiceprints."""
    from voiceprints.errors import UnknownSpeakerError

    rows = [_summary(s) for s in ctx_of(ctx).store().list_voiceprints() if s.speaker_id == speaker]
    if not rows:
        raise UnknownSpeakerError(f"speaker {speaker} is not enrolled")
    emit({"voiceprints": rows}, as_json, "\n".join(json.dumps(r, default=str) for r in rows))


@voiceprints_app.command("delete")
@reports_errors
def delete(ctx: typer.Context, speaker: str, as_json: bool = JSON) -> None:
    """Erase everything stored about SPEAKER (right to erasure)."""
    from ivr.notices import NoticeKind
    from voiceprints.errors import UnknownSpeakerError

    cli = ctx_of(ctx)
    if not cli.store().model_ids_for(speaker):
        raise UnknownSpeakerError(f"speaker {speaker} is not enrolled; nothing to delete")
    cli.notify(speaker, NoticeKind.VOICEPRINT_DELETED)
    cli.store().delete_speaker(speaker)
    cli.audit("vp-delete", speaker, "voiceprint deleted by an admin")
    emit({"deleted": speaker}, as_json, f"deleted every voiceprint and record of {speaker}")


@voiceprints_app.command("export")
@reports_errors
def export(ctx: typer.Context, speaker: str,
           out: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout.")) -> None:
    """All data held about SPEAKER, as JSON (data-subject access request)."""
    from voiceprints.errors import UnknownSpeakerError

    data = ctx_of(ctx).store().export_speaker(speaker)
    if not data:
        raise UnknownSpeakerError(f"speaker {speaker} is not enrolled")
    ctx_of(ctx).audit("vp-export", speaker, f"voiceprint exported by an admin to {out or 'stdout'}")
    text = json.dumps(data, indent=2, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


@models_app.command("list")
@reports_errors
def models_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Which embedding models are available, and which one the engine would use."""
    from voiceprints.embedding.select import available_models

    infos = available_models(ctx_of(ctx).settings.model)
    rows = [{"name": i.name, "available": i.available, "model_id": i.model_id, "detail": i.detail} for i in infos]
    text = "\n".join(f"{r['name']:<6} {'available' if r['available'] else 'unavailable':<12} "
                     f"{r['model_id'] or ''} {r['detail'] or ''}" for r in rows)
    emit({"models": rows, "configured": ctx_of(ctx).settings.model.embedder}, as_json, text)


@models_app.command("pull")
@reports_errors
def models_pull(name: str = typer.Argument(..., help="Only 'ecapa' is pulled; GE2E ships inside resemblyzer."),
                to: Path = typer.Option(..., "--to", help="Directory to write the model to."),
                source: str = typer.Option("speechbrain/spkrec-ecapa-voxceleb", help="Model hub id.")) -> None:
    """Download ECAPA-TDNN weights where the internet allows; then set VOICEAUTH_MODEL__ECAPA_DIR."""
    from voiceprints.embedding.ecapa import pull_ecapa

    if name != "ecapa":
        typer.echo("error: only 'ecapa' can be pulled (GE2E is built in)", err=True)
        raise typer.Exit(int(ExitCode.BAD_INPUT))
    path = pull_ecapa(to, source=source)
    typer.echo(f"ECAPA-TDNN saved in {path}; use it with VOICEAUTH_MODEL__ECAPA_DIR={path}")


@cohort_app.command("build")
@reports_errors
def cohort_build(ctx: typer.Context, directory: Path = typer.Argument(..., help="Where to write the cohort."),
                 files: List[Path] = typer.Argument(..., help="Recordings of speakers who are NOT enrolled users, "
                                                       "one speaker per file, from the same channel as callers."),
                 as_json: bool = JSON) -> None:
    """Build a score-normalisation cohort; use it with VOICEAUTH_VERIFICATION__COHORT_DIR=DIRECTORY."""
    import numpy as np

    from voiceprints.audio.io import read_audio
    from voiceprints.cohort import Cohort

    engine = ctx_of(ctx).engine()
    vectors = np.stack([engine.embedder.embed(engine.detector.speech_only(read_audio(f))) for f in files])
    path = Cohort(engine.model_id, tuple(f.stem for f in files), vectors).save(directory)
    emit({"cohort": str(path), "size": len(files), "model_id": engine.model_id}, as_json,
         f"cohort of {len(files)} recordings written to {path} (model {engine.model_id})")


@keys_app.command("rotate")
@reports_errors
def keys_rotate(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Re-encrypt every voiceprint with the primary (first) configured key."""
    count = ctx_of(ctx).store().rotate_keys()
    ctx_of(ctx).audit("keys-rotate", None, f"{count} voiceprint(s) re-encrypted with the primary key")
    emit({"reencrypted": count}, as_json, f"re-encrypted {count} voiceprint(s) with the primary key")


@keys_app.command("generate")
@reports_errors
def keys_generate(
    key_id: str = typer.Option("k1", "--key-id", help="Id of the new voiceprint key (1-64 of A-Z a-z 0-9 _ - .)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Write DIR/voiceprint.keys and DIR/server.secrets (0600, never overwritten) "
                            "instead of printing an environment file."),
    as_json: bool = JSON,
) -> None:
    """Fresh voiceprint key and server secrets for a deployment: the same on every worker host.

    Prints a systemd EnvironmentFile (VOICEAUTH_KEYS=..., VOICEAUTH_SECRETS__...=...) or, with --out,
    writes the two files and prints the settings that point at them. Nothing is stored in the
    database: distribute the values to every host and keep a copy offline (docs/deploy.md).
    """
    from ivr.secrets import generate_secrets, secrets_env_lines, secrets_file_text
    from voiceprints.private_files import create_private_text, ensure_private_dir
    from voiceprints.store.crypto import KeyRing, key_file_text

    from voiceprints.errors import EncryptionKeyError

    try:
        ring = KeyRing.generate(key_id)
    except EncryptionKeyError as exc:
        typer.echo(f"error: --key-id: {str(exc).removeprefix('generated key: ')}", err=True)
        raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    values = generate_secrets()
    env_lines = [f"VOICEAUTH_KEYS={ring.serialise().strip()}", *secrets_env_lines(values)]
    if out is None:
        emit({"environment": dict(line.split("=", 1) for line in env_lines)}, as_json,
             "# voiceauth keys and server secrets: the same on every worker host; keep a copy offline.\n"
             "# A systemd EnvironmentFile (mode 0600): EnvironmentFile=/etc/voiceauth/secrets.env\n"
             + "\n".join(env_lines))
        return
    ensure_private_dir(out)
    keys_path, secrets_path = out / "voiceprint.keys", out / "server.secrets"
    for path in (keys_path, secrets_path):
        if path.exists():
            typer.echo(f"error: {path} exists; not overwriting keys (a new key cannot read old voiceprints)",
                       err=True)
            raise typer.Exit(int(ExitCode.BAD_INPUT))
    create_private_text(keys_path, key_file_text(ring))
    create_private_text(secrets_path, secrets_file_text(values))
    settings = {"VOICEAUTH_STORE__KEY_FILE": str(keys_path.resolve()),
                "VOICEAUTH_SECRETS__FILE": str(secrets_path.resolve())}
    emit({"files": [str(keys_path), str(secrets_path)], "environment": settings}, as_json,
         f"wrote {keys_path} and {secrets_path} (0600); copy both to every worker host and set:\n"
         + "\n".join(f"{k}={v}" for k, v in settings.items()))


@prompts_app.command("build")
@reports_errors
def prompts_build(ctx: typer.Context, to: Optional[Path] = typer.Option(
        None, "--to", help="Output directory (default: DATA_DIR/prompts)."), as_json: bool = JSON) -> None:
    """Generate the shipped prompts with espeak-ng as DIR/<lang>/<name>.wav (8 kHz); replace any with your own."""
    from ivr.prompts.build import build_prompts
    from ivr.prompts.catalog import PROMPTS

    out = to or ctx_of(ctx).settings.data_dir / "prompts"
    made = build_prompts(out)
    emit({"directory": str(out), "generated": made, "prompts": sorted(PROMPTS)}, as_json,
         f"{made} prompt file(s) generated in {out} ({len(PROMPTS)} prompts x en, es)")


def demo(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Enrol and verify demonstration voices end to end (separate data directory: DATA_DIR/demo)."""
    from ivr.demo import run_demo
    from voiceprints.embedding.select import load_embedder
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import open_store

    core = ctx_of(ctx).settings.core()
    core = core.model_copy(update={"data_dir": core.data_dir / "demo", "store": core.store.model_copy(
        update={"url": None})})
    engine = VoiceprintEngine(load_embedder(core.model), open_store(core), core)
    typer.echo(f"model {engine.model_id}; voiceprints in {core.database_url()}", err=True)
    steps = run_demo(engine)
    emit({"steps": [vars(s) for s in steps]}, as_json,
         "\n".join(f"{s.title:<52} -> {s.outcome:<13} {s.detail}" for s in steps))
