"""How commands report: human text or ``--json``, and exit codes scripts can rely on."""

from __future__ import annotations

import enum
import functools
import json
import logging
import sys
from typing import Any, Callable, TypeVar

import click
import typer

from ivr.secrets import SecretsError
from voiceprints import errors

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(enum.IntEnum):
    OK = 0  # success; for verify: accept
    REJECT = 1  # verify: the voice does not match
    # 2 is reserved by the command-line parser for usage errors.
    INCONCLUSIVE = 3  # verify: not enough / poor speech or score in the grey band
    NOT_ENROLLED = 4  # the speaker has no voiceprint
    REENROL = 5  # the speaker's voiceprint was made with another model
    BAD_INPUT = 6  # unusable audio, manifest or arguments
    ERROR = 7  # store unreachable, model missing, key problems, anything else


def exit_code_for(exc: Exception) -> ExitCode:
    # SecretsError (server secrets missing or unusable) is a configuration problem: ERROR, like a key problem.
    if isinstance(exc, errors.UnknownSpeakerError):
        return ExitCode.NOT_ENROLLED
    if isinstance(exc, errors.ReenrolmentNeededError):
        return ExitCode.REENROL
    if isinstance(exc, (errors.AudioError, errors.EnrolmentError)):
        return ExitCode.BAD_INPUT
    return ExitCode.ERROR


def emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        typer.echo(text)


def reports_errors(fn: F) -> F:
    """Turn the core's typed errors into one clear line on stderr (or JSON) and the matching exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except (errors.VoiceprintError, SecretsError) as exc:
            code = exit_code_for(exc)
            if kwargs.get("as_json"):
                typer.echo(json.dumps({"error": exc.code, "message": str(exc), "exit_code": int(code)}))
            else:
                typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(int(code)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # last resort: never a bare traceback for an admin
            logging.getLogger("ivr.cli").debug("unexpected error", exc_info=True)
            typer.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(int(ExitCode.ERROR)) from None

    return wrapper  # type: ignore[return-value]


# Every line starts with its local time (asctime); identifiers in messages are
# masked where they are logged (voiceprints.redact.mask, ivr.audit.log.scrub), never times.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
