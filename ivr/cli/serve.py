"""``ivr serve``: run the telephony worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Optional

import typer

from ivr.cli.context import ctx_of

log = logging.getLogger("ivr.service")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    grace: Optional[float] = typer.Option(
        None,
        "--grace",
        help="Seconds calls in progress may take to finish on shutdown "
        "(default: VOICEAUTH_SERVICE__SHUTDOWN_GRACE_S).",
    ),
) -> None:
    """Serve calls: Asterisk (AudioSocket, FastAGI, AMI; docs/admins.md), Twilio when configured
    (docs/twilio.md), a SIP endpoint when enabled (docs/sip.md), and /healthz, /readyz, /metrics.

    Each transport is switched with VOICEAUTH_<TRANSPORT>__ENABLED; /readyz
    counts only those that are on.

    Logs go to stderr at INFO unless --log-level says otherwise; one line per
    call start and end.
    """
    settings = ctx_of(ctx).settings
    if ctx.parent is not None and ctx.parent.params.get("log_level") == "WARNING":
        # WARNING is the CLI's quiet default for commands; a service is expected to log its
        # calls, so it follows VOICEAUTH_LOG_LEVEL (INFO) unless --log-level chose otherwise.
        logging.getLogger().setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    try:
        from ivr.sharing import check_shared_setup

        # Refuse before loading anything: on a shared database, per-host keys or secrets split the data.
        check_shared_setup(settings)
        asyncio.run(_serve(settings, grace))
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - one actionable line for the admin
        log.error("worker failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        raise typer.Exit(7) from None


async def _serve(settings, grace: Optional[float]) -> None:  # type: ignore[no-untyped-def]
    from ivr.service.worker import VoiceAuthService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    service = VoiceAuthService(settings)
    try:
        await service.start()
        await stop.wait()
    finally:
        # Also after a failed start (port in use, AMI refused...): release what was opened.
        await service.stop(grace)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        log.warning("%s again while shutting down; still waiting for calls to end", sig.name)
        return
    log.info("%s received: shutting down gracefully", sig.name)
    stop.set()
