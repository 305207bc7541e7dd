"""Running calls: pick the flow, keep count, log for the admin, and end calls cleanly at shutdown.

Transports hand every call here, whatever protocol it came in on.  Each flow
runs in its own task so that shutdown can cut one call without touching the
transport's connection: the cut call still gets ``VOICEAUTH_RESULT=ERROR``
(reason "worker shutting down") and the dialplan routes it to its fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Coroutine, Mapping, Protocol

from ivr.audit.log import scrub
from ivr.call import CallerHungUp, CallSession
from ivr.flows.base import Flow, FlowResult, Result
from ivr.service.metrics import ServiceMetrics
from voiceprints.redact import mask

log = logging.getLogger("ivr.service.calls")


class RunCall(Protocol):
    """Runs a flow to its end, sets the result and hangs up (``ivr.flows.runner.run_call``)."""

    def __call__(
        self, flow: Flow, call: CallSession, *, flow_name: str
    ) -> Coroutine[Any, Any, FlowResult | None]: ...


SHUTTING_DOWN = "worker shutting down"


@dataclass
class ActiveCall:
    call_id: str
    flow: str
    session: CallSession
    task: asyncio.Task[FlowResult | None]
    started: float = field(default_factory=time.monotonic)


class CallRunner:
    def __init__(self, flows: Mapping[str, Flow], run_call: RunCall, metrics: ServiceMetrics) -> None:
        self._flows = dict(flows)
        self._run_call = run_call
        self._metrics = metrics
        self.accepting = True
        self.active: dict[str, ActiveCall] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._flows)

    async def run(self, mode: str, session: CallSession, *, via: str) -> FlowResult | None:
        """Run the flow named ``mode`` on ``session``; returns its result (None if the caller hung up)."""
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
            self._metrics.errors.labels("refused_shutdown" if not self.accepting else "unknown_mode").inc()
            await _report(session, FlowResult(Result.ERROR, reason=reason))
            return None
        log.info(
            "call start %s channel=%s flow=%s via=%s caller=%s lang=%s",
            info.call_id,
            channel,
            mode,
            via,
            mask(info.caller_id),
            info.language,
        )
        task = asyncio.create_task(
            self._run_call(flow, session, flow_name=mode), name=f"call-{mode}-{info.call_id}"
        )
        call = ActiveCall(info.call_id, mode, session, task)
        self.active[info.call_id] = call
        self._idle.clear()
        self._metrics.calls_in_progress.labels(mode).inc()
        result: FlowResult | None
        outcome: str
        try:
            await asyncio.wait({task})
            if task.cancelled():
                result = FlowResult(Result.ERROR, reason=SHUTTING_DOWN)
                await _report(session, result)
                self._metrics.errors.labels("cut_at_shutdown").inc()
            elif task.exception() is not None:
                exc = task.exception()
                if isinstance(exc, CallerHungUp):
                    result = None
                else:
                    log.error("call %s flow=%s failed: %r", info.call_id, mode, exc, exc_info=exc)
                    result = FlowResult(Result.ERROR, reason=f"internal error: {type(exc).__name__}")
                    await _report(session, result)
            else:
                result = task.result()
        finally:
            if not task.done():  # our own waiter was cancelled (server closing): take the flow with us
                task.cancel()
            self.active.pop(info.call_id, None)
            self._metrics.calls_in_progress.labels(mode).dec()
            if not self.active:
                self._idle.set()
        duration = time.monotonic() - call.started
        self._metrics.call_duration.labels(mode).observe(duration)
        if result is None:
            outcome = "HUNGUP"
            self._metrics.calls.labels(mode, outcome).inc()
            log.info(
                "call end %s channel=%s flow=%s result=HUNGUP reason=%s duration=%.1fs",
                info.call_id,
                channel,
                mode,
                '"caller hung up before a result"',
                duration,
            )
            return None
        self._metrics.observe_result(mode, result)
        if result.result is Result.ERROR:
            self._metrics.errors.labels("flow_error").inc()
        score = "-" if result.score is None else f"{result.score:.3f}"
        decision_s = getattr(result, "decision_s", None)
        log.info(
            'call end %s channel=%s flow=%s account=%s result=%s score=%s reason="%s" duration=%.1fs%s',
            info.call_id,
            channel,
            mode,
            mask(result.account),
            result.result.value,
            score,
            (scrub(result.reason) or "").replace('"', "'"),
            duration,
            # The caller's wait after enough speech: what the admin checks against "about 1 s".
            "" if decision_s is None else f" decision={decision_s:.2f}s",
        )
        return result

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
                call.call_id,
                call.flow,
                time.monotonic() - call.started,
            )
            call.task.cancel()
        if cut:
            # The runners report ERROR to the dialplan and unregister; bounded.
            try:
                await asyncio.wait_for(self._idle.wait(), 10.0)
            except asyncio.TimeoutError:
                log.warning("shutting down: %d call(s) did not end within 10 s", len(self.active))
        return len(cut)


async def _report(session: CallSession, result: FlowResult) -> None:
    """Best effort: the caller may already be gone, or AMI down; neither should raise here."""
    try:
        await asyncio.wait_for(session.set_result(result.variables()), 10.0)
    except Exception as exc:  # noqa: BLE001 - reported, the call ends anyway
        log.warning(
            "call %s: could not hand the result %s to the dialplan: %s",
            session.info.call_id,
            result.result.value,
            exc or type(exc).__name__,
        )
