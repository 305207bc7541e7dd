"""``ivr``: the engine's command line for admins and scripts.

Exit codes (see ``ivr.cli.output.ExitCode``): 0 success/accept, 1 reject,
2 usage error, 3 inconclusive, 4 not enrolled, 5 re-enrolment needed,
6 bad input, 7 other error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ivr.cli import biometrics, evaluation, admin
from ivr.cli import serve
from ivr.cli import fallback
from ivr.cli import policy
from ivr.cli import watchlist
from ivr.cli.context import CliContext
from ivr.cli.output import configure_logging
from ivr.settings import Settings

app = typer.Typer(
    name="ivr",
    help="Voice-biometric authentication engine for telephone IVRs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="VOICEAUTH_DATA_DIR",
                                            help="Where the embedded database, keys and caches live."),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)."),
) -> None:
    configure_logging(log_level)
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    ctx.obj = CliContext(settings)
    ctx.call_on_close(ctx.obj.close)


biometrics.register(app)
evaluation.register(app)
admin.register(app)
serve.register(app)
fallback.register(app)
policy.register(app)
watchlist.register(app)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m ivr.cli.app, as the console script `ivr` does
    main()
