"""Running calls: pick the flow, keep count, log for the admin, catch what escapes, end calls cleanly.

Every transport hands every call here, whatever protocol it came in on, and
so does :func:`run_call` for a single flow: there is one place that logs a
call (one line when it starts, one when it ends) and turns whatever escapes a
flow into a result the caller's next step can route on. Each flow runs in
its own task so that shutdown can cut one call without touching the
transport's connection: the cut call still gets ``ERROR`` (reason "worker
shutting down") through :meth:`~ivr.call.CallSession.finish`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Mapping

from ivr.audit.log import scrub
from ivr.call import CallerHungUp, CallSession, FlowResult, Result
from ivr.flows.base import Flow
from ivr.service.metrics import ServiceMetrics
from voiceprints.errors import VoiceprintError
from voiceprints.redact import mask

log = logging.getLogger("ivr.service.calls")

SHUTTING_DOWN = "worker shutting down"
# Handing a result on is a few protocol messages (setting channel variables,
# closing a stream): seconds mean the peer is gone, and the call's slot must
# not wait for ever.
FINISH_TIMEOUT_S = 15.0


@dataclass
class ActiveCall:
    call_id: str
    flow: str
    session: CallSession
    task: asyncio.Task[FlowResult | None]
    started: float = field(default_factory=time.monotonic)


class CallRunner:
    def __init__(self, flows: Mapping[str, Flow], metrics: ServiceMetrics | None = None) -> None:
        self._flows = dict(flows)
        self._metrics = metrics
        self.accepting = True
        self.active: dict[str, ActiveCall] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._flows)

    async def run(self, mode: str, session: CallSession, *, via: str) -> FlowResult | None:
        """Run the flow named ``mode`` on ``session`` and finish the session; None if the caller hung up."""
        info = session.info
        channel = info.params.get("channel") or "-"
        mode = (mode or "").strip().lower()
        flow = self._flows.get(mode)
        if not self.accepting or flow is None:
            reason = (
                SHUTTING_DOWN
                if not self.accepting
                else (f"unknown VOICEAUTH_MODE {mode!r}; expected one of {', '.join(self.flow_names)}")
            )
            (log.info if not self.accepting else log.warning)(
                "call %s channel=%s via=%s refused: %s", info.call_id, channel, via, reason
            )
            self._error("refused_shutdown" if not self.accepting else "unknown_mode")
            await _finish(session, FlowResult(Result.ERROR, reason=reason))
            return None
        log.info(
            "call start %s channel=%s flow=%s via=%s caller=%s lang=%s",
            info.call_id, channel, mode, via, mask(info.caller_id), info.language,
        )
        task = asyncio.create_task(_outcome(flow, session, mode), name=f"call-{mode}-{info.call_id}")
        call = ActiveCall(info.call_id, mode, session, task)
        self.active[info.call_id] = call
        self._idle.clear()
        if self._metrics is not None:
            self._metrics.calls_in_progress.labels(mode).inc()
        result: FlowResult | None
        try:
            await asyncio.wait({task})
            if task.cancelled():
                result = FlowResult(Result.ERROR, reason=SHUTTING_DOWN)
                self._error("cut_at_shutdown")
            else:
                result = task.result()
            result = await _finish(session, result)
        finally:
            if not task.done():  # our own waiter was cancelled (server closing): take the flow with us
                task.cancel()
            self.active.pop(info.call_id, None)
            if self._metrics is not None:
                self._metrics.calls_in_progress.labels(mode).dec()
            if not self.active:
                self._idle.set()
        duration = time.monotonic() - call.started
        self._log_end(info.call_id, channel, mode, result, duration)
        return result

    def _error(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.error(kind)

    def _log_end(self, call_id: str, channel: str, mode: str, result: FlowResult | None, duration: float) -> None:
        metrics = self._metrics
        if metrics is not None:
            metrics.call_duration.labels(mode).observe(duration)
        if result is None:
            if metrics is not None:
                metrics.calls.labels(mode, "HUNGUP").inc()
            log.info('call end %s channel=%s flow=%s result=HUNGUP reason="caller hung up before a result" '
                     "duration=%.1fs", call_id, channel, mode, duration)
            return
        if metrics is not None:
            metrics.observe_result(mode, result)
            if result.result is Result.ERROR:
                metrics.error("flow_error")
        score = "-" if result.score is None else f"{result.score:.3f}"
        log.info(
            'call end %s channel=%s flow=%s account=%s result=%s score=%s reason="%s" duration=%.1fs%s',
            call_id, channel, mode, mask(result.account), result.result.value, score,
            (scrub(result.reason) or "").replace('"', "'"), duration,
            # The caller's wait after enough speech: what the admin checks against "about 1 s".
            "" if result.decision_s is None else f" decision={result.decision_s:.2f}s",
        )

    async def drain(self, grace_s: float) -> int:
        """Stop taking calls; wait up to ``grace_s`` for calls in progress, then cut the rest.

        Returns how many calls were cut.  A cut call's flow is cancelled at its
        current await: the enrolment flow writes its voiceprint only as its very
        last step, in one transaction, so a cut enrolment stores nothing or all.
        """
        self.accepting = False
        if self.active:
            log.info(
                "shutting down: waiting up to %.0f s for %d call(s) in progress", grace_s, len(self.active)
            )
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except asyncio.TimeoutError:
                pass
        cut = list(self.active.values())
        for call in cut:
            log.warning(
                "shutting down: ending call %s (flow=%s) after %.0f s",
                call.call_id, call.flow, time.monotonic() - call.started,
            )
            call.task.cancel()
        if cut:
            # The runners hand ERROR on and unregister; bounded.
            try:
                await asyncio.wait_for(self._idle.wait(), FINISH_TIMEOUT_S + 5.0)
            except asyncio.TimeoutError:
                log.warning("shutting down: %d call(s) did not end in time", len(self.active))
        return len(cut)


async def run_call(flow: Flow, call: CallSession, *, flow_name: str = "flow") -> FlowResult | None:
    """Run one flow on one call as the worker does (result handed on, session finished); None: hung up."""
    return await CallRunner({flow_name: flow}).run(flow_name, call, via="direct")


async def _outcome(flow: Flow, call: CallSession, mode: str) -> FlowResult | None:
    """The flow's result; an error inside it becomes ``ERROR`` with the reason, so the caller is still routed."""
    call_id = call.info.call_id
    try:
        return await flow(call)
    except CallerHungUp:
        return None
    except VoiceprintError as exc:
        log.error("call %s: %s flow failed: %s", call_id, mode, exc)
        return FlowResult(Result.ERROR, reason=f"{exc.code}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the caller must still be routed
        log.exception("call %s: %s flow crashed", call_id, mode)
        return FlowResult(Result.ERROR, reason=f"internal error ({type(exc).__name__})")


async def _finish(session: CallSession, result: FlowResult | None) -> FlowResult | None:
    """Hand the result on and end the session, bounded; None when the caller left before it could be told."""
    try:
        await asyncio.wait_for(session.finish(result), FINISH_TIMEOUT_S)
    except CallerHungUp:
        return None
    except Exception as exc:  # noqa: BLE001 - reported, the call ends anyway
        log.warning(
            "call %s: could not hand the result %s on: %s",
            session.info.call_id, "-" if result is None else result.result.value, str(exc) or type(exc).__name__,
        )
    return result
