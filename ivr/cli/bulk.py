"""``ivr enroll --manifest CSV``: enrol thousands of accounts from recorded calls (see ivr/bulk)."""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

import numpy as np
import typer

from ivr.cli.output import ExitCode, emit

if TYPE_CHECKING:
    from ivr.cli.context import CliContext
    from voiceprints.audio.clip import AudioClip


def enroll_manifest(cli: "CliContext", manifest_path: Path, *, replace: bool, notify: bool,
                    progress_file: Path | None, restart: bool, show_progress: bool | None, as_json: bool) -> None:
    """Enrol every row; per-row problems are reported and the run goes on. Exit 0 all done, 6 some rows
    failed, 7 the run stopped (resume by running the same command), 130 interrupted (same)."""
    from tqdm import tqdm

    from ivr.bulk.enrol import BulkEnroller, RunStopped
    from ivr.bulk.manifest import ManifestError, read_manifest
    from ivr.bulk.progress import ProgressLog, ProgressMismatchError
    from ivr.consent.registry import ConsentRegistry
    from ivr.notices import NoticeKind
    from voiceprints.defences import AttackDefences

    try:
        manifest = read_manifest(manifest_path)
    except ManifestError as exc:
        _fail(exc, ExitCode.BAD_INPUT, as_json)
    engine = cli.engine()
    consent = ConsentRegistry(cli.database(), policy_version=cli.settings.consent.policy_version, store=engine.store)
    try:
        progress = ProgressLog.open(progress_file or manifest_path.with_name(manifest_path.name + ".progress"),
                                    manifest_sha256=manifest.sha256, model_id=engine.model_id, restart=restart)
    except (ProgressMismatchError, OSError) as exc:
        _fail(exc, ExitCode.BAD_INPUT, as_json)

    def audit(account: str, reason: str, result: str) -> None:
        cli.audit("enroll", account, reason, result=result)

    def notice(account: str, replaced: bool) -> str:
        return cli.notify(account, NoticeKind.VOICEPRINT_REPLACED if replaced else NoticeKind.VOICEPRINT_CREATED)

    defences = AttackDefences(engine)

    def watchlist(account: str, vector: np.ndarray) -> str | None:
        result = defences.screen_enrolment(vector)
        return f"the voice is on the watchlist: {result.reason}" if result.hit else None

    def remember(account: str, clips: Sequence[AudioClip]) -> None:
        # No digit templates come from a recorded call: the account's liveness check is skipped until it
        # enrols on the enrolment line, as for any voiceprint made without them.
        defences.remember_enrolment(account, None, clips)

    enroller = BulkEnroller(engine, consent, audit, notice if notify else None, screen=watchlist, remember=remember,
                            replace=replace, source=f"manifest {manifest_path.name}")
    counts: Counter[str] = Counter()
    failures: list[dict[str, object]] = []
    stopped: str | None = None
    todo = [row for row in manifest.rows if row.line not in progress.done]
    counts["done_before"] = len(manifest.rows) - len(todo)
    # tqdm's disable=None: a bar on a terminal, none in a log file or a pipe.
    bar = tqdm(todo, desc="enrolling", unit="account", file=sys.stderr,
               disable=None if show_progress is None else not show_progress)
    interrupt = _StopBetweenRows()
    try:
        with interrupt:
            for row in bar:
                if interrupt.requested:
                    stopped = "interrupted"
                    break
                try:
                    outcome = enroller.enrol(row)
                except RunStopped as exc:
                    stopped = str(exc)
                    break
                progress.record(outcome)
                counts[outcome.status] += 1
                if outcome.status == "failed":
                    failures.append(outcome.to_dict())
                    if not as_json:
                        bar.write(f"line {outcome.line} ({outcome.account}): {outcome.code}: {outcome.detail}",
                                  file=sys.stderr)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once (the row in progress is redone next time)
        stopped = "interrupted"
    finally:
        bar.close()
        progress.close()
    summary = (f"manifest {manifest_path.name}: {counts['enrolled']} enrolled, {counts['skipped']} skipped, "
               f"{counts['failed']} failed, {counts['done_before']} done in an earlier run"
               + ("" if notify else "; customers not notified (--no-notify)")
               + (f"; stopped: {stopped}" if stopped else ""))
    cli.audit("bulk-enroll", None, summary, result="OK" if not stopped else "ERROR")
    emit({"manifest": str(manifest_path), "progress_file": str(progress.path), "enrolled": counts["enrolled"],
          "skipped": counts["skipped"], "failed": counts["failed"], "done_before": counts["done_before"],
          "stopped": stopped, "failures": failures}, as_json,
         summary + (f"\nrun the same command again to resume (progress in {progress.path})" if stopped else ""))
    if stopped == "interrupted":
        raise typer.Exit(130)
    if stopped:
        raise typer.Exit(int(ExitCode.ERROR))
    if counts["failed"]:
        raise typer.Exit(int(ExitCode.BAD_INPUT))


class _StopBetweenRows:
    """Ctrl-C or SIGTERM ends the run after the row in progress, never between its audit row and its
    voiceprint; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "_StopBetweenRows":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _on_signal(self, sig: int, frame: object) -> None:
        if self.requested and sig == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        typer.echo("stopping after this account (Ctrl-C again to stop at once)", err=True)


def _fail(exc: Exception, code: ExitCode, as_json: bool) -> NoReturn:
    import json

    if as_json:
        typer.echo(json.dumps({"error": getattr(exc, "code", "error"), "message": str(exc), "exit_code": int(code)}))
    else:
        typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(int(code))
