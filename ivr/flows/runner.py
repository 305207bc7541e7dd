"""Run one flow on one call: result to the dialplan, then hand the call back."""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from ivr.audit.log import scrub
from ivr.call import CallerHungUp, CallSession
from ivr.flows.base import Flow, FlowResult, Result
from voiceprints.errors import VoiceprintError
from voiceprints.redact import mask

log = logging.getLogger("ivr.calls")


async def run_call(flow: Flow, call: CallSession, *, flow_name: str = "flow",
                   on_done: Callable[[FlowResult | None, float], Awaitable[None] | None] | None = None
                   ) -> FlowResult | None:
    """Run ``flow``; set VOICEAUTH_* on the channel; end the session so the dialplan continues.

    Returns None when the caller hung up (there is no channel left to tell).
    An error inside the flow becomes ``ERROR`` with the reason, so the
    dialplan can always route the caller somewhere.
    """
    info = call.info
    started = time.monotonic()
    # The worker logs each call's start and end at INFO with channel and transport
    # (ivr.service.calls); here only DEBUG detail, so a call is one pair of lines.
    log.debug("call %s: %s flow started (caller %s, language %s)", info.call_id, flow_name,
             mask(info.caller_id), info.language)
    result: FlowResult | None
    try:
        result = await flow(call)
    except CallerHungUp:
        result = None
    except VoiceprintError as exc:
        log.error("call %s: %s flow failed: %s", info.call_id, flow_name, exc)
        result = FlowResult(Result.ERROR, reason=f"{exc.code}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the caller must still be routed
        log.exception("call %s: %s flow crashed", info.call_id, flow_name)
        result = FlowResult(Result.ERROR, reason=f"internal error ({type(exc).__name__})")
    if result is not None:
        try:
            await call.set_result(result.variables())
        except CallerHungUp:
            result = None
        except Exception:  # noqa: BLE001
            log.exception("call %s: could not hand the result to the dialplan", info.call_id)
    duration = time.monotonic() - started
    if result is None:
        log.debug("call %s: caller hung up during the %s flow after %.1f s; nothing stored",
                 info.call_id, flow_name, duration)
    else:
        log.debug("call %s: %s %s account=%s score=%s reason=%s (%.1f s)", info.call_id, flow_name,
                 result.result.value, mask(result.account),
                 "-" if result.score is None else f"{result.score:.3f}", scrub(result.reason) or "-", duration)
    try:
        await call.hang_up()
    except Exception:  # noqa: BLE001 - the call is over either way
        log.debug("call %s: hang-up after the flow failed", info.call_id, exc_info=True)
    if on_done is not None:
        maybe = on_done(result, duration)
        if maybe is not None:
            await maybe
    return result
