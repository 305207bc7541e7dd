"""How the worker runs calls: results to the dialplan, admin log lines, metrics, and graceful shutdown.

Calls here are in-memory sessions (the :class:`ivr.call.CallSession` interface
without a network); the flows are tiny ones with known outcomes, run by the
call runner the worker uses.  Real calls through Asterisk are in
tests/lab/test_e2e_calls.py.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from ivr.call import CallerHungUp, CallEvent, CallInfo, HangUp
from ivr.call import FlowResult, Result
from ivr.service.calls import SHUTTING_DOWN, CallRunner
from ivr.service.metrics import ServiceMetrics


class MemoryCall:
    """A call with no transport: remembers the result the dialplan would get."""

    def __init__(self, call_id: str = "call-1", *, caller_gone: bool = False) -> None:
        self._info = CallInfo(call_id, caller_id="5551234", params={"channel": f"PJSIP/test-{call_id}"})
        self.results: list[dict[str, str]] = []
        self.hung_up = False
        self._caller_gone = caller_gone

    @property
    def info(self) -> CallInfo:
        return self._info

    async def play(self, prompt: str) -> None:
        if self._caller_gone:
            raise CallerHungUp("caller hung up")

    async def next_event(self, timeout: float) -> CallEvent | None:
        return HangUp() if self._caller_gone else None

    async def finish(self, result: FlowResult | None) -> None:
        self.hung_up = True
        if result is not None:
            if self._caller_gone:
                raise CallerHungUp("caller hung up")
            self.results.append(result.variables())

    @property
    def result(self) -> str | None:
        return self.results[-1]["VOICEAUTH_RESULT"] if self.results else None


async def passes(call) -> FlowResult:
    await call.play("verify-speak")
    return FlowResult(Result.PASS, "4711", 0.91, "score 0.91", method="voice", decision_s=0.25, engine_s=0.2)


def sleeper(seconds: float):
    async def flow(call) -> FlowResult:
        await asyncio.sleep(seconds)
        return FlowResult(Result.PASS, "4711", 0.9)

    return flow


async def crashes(call) -> FlowResult:
    raise ZeroDivisionError("bug")


def make_runner(**flows) -> CallRunner:
    return CallRunner(flows or {"verify": passes}, ServiceMetrics())


def sample(runner: CallRunner, name: str, **labels: str) -> float | None:
    return runner._metrics.registry.get_sample_value(name, labels)


async def test_a_call_gets_its_flow_result_and_is_handed_back_to_the_dialplan():
    runner = make_runner()
    call = MemoryCall()
    result = await runner.run("verify", call, via="audiosocket")
    assert result is not None and result.result is Result.PASS
    assert call.results == [result.variables()]
    assert call.hung_up
    assert runner.active == {}


async def test_mode_is_matched_case_insensitively_and_unknown_modes_are_errors_naming_the_valid_ones():
    runner = make_runner(verify=passes, enroll=passes)
    call = MemoryCall()
    assert (await runner.run(" VERIFY ", call, via="audiosocket")).result is Result.PASS
    wrong = MemoryCall("call-2")
    assert await runner.run("verfy", wrong, via="audiosocket") is None
    assert wrong.result == "ERROR"
    assert "enroll, verify" in wrong.results[-1]["VOICEAUTH_REASON"]
    assert sample(runner, "voiceauth_errors_total", kind="unknown_mode") == 1


async def test_metrics_count_results_and_observe_decision_and_engine_latency():
    runner = make_runner()
    for n in range(3):
        await runner.run("verify", MemoryCall(f"c{n}"), via="audiosocket")
    assert sample(runner, "voiceauth_calls_total", flow="verify", result="PASS") == 3
    assert sample(runner, "voiceauth_decision_latency_seconds_count", flow="verify") == 3
    assert sample(runner, "voiceauth_decision_latency_seconds_sum", flow="verify") == pytest.approx(0.75)
    assert sample(runner, "voiceauth_embedding_latency_seconds_sum") == pytest.approx(0.6)
    assert sample(runner, "voiceauth_calls_in_progress", flow="verify") == 0


async def test_calls_in_progress_are_visible_while_they_run():
    runner = make_runner(verify=sleeper(0.3))
    task = asyncio.create_task(runner.run("verify", MemoryCall(), via="fastagi"))
    await asyncio.sleep(0.1)
    assert sample(runner, "voiceauth_calls_in_progress", flow="verify") == 1
    assert list(runner.active) == ["call-1"]
    await task
    assert sample(runner, "voiceauth_calls_in_progress", flow="verify") == 0


async def test_a_crashing_flow_still_routes_the_caller_with_error_and_is_counted():
    runner = make_runner(verify=crashes)
    call = MemoryCall()
    result = await runner.run("verify", call, via="audiosocket")
    assert call.result == "ERROR" and result.result is Result.ERROR
    assert sample(runner, "voiceauth_errors_total", kind="flow_error") == 1


async def test_a_caller_who_hangs_up_is_logged_and_counted_as_hung_up(caplog):
    caplog.set_level(logging.INFO, logger="ivr.service.calls")
    runner = make_runner()
    assert await runner.run("verify", MemoryCall(caller_gone=True), via="audiosocket") is None
    assert sample(runner, "voiceauth_calls_total", flow="verify", result="HUNGUP") == 1
    assert any("result=HUNGUP" in r.getMessage() for r in caplog.records)


async def test_admin_log_has_one_line_per_call_start_and_end_with_channel_masked_account_result_and_duration(
        caplog):
    caplog.set_level(logging.INFO, logger="ivr.service.calls")
    await make_runner().run("verify", MemoryCall("abc"), via="audiosocket")
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.service.calls"]
    assert len(lines) == 2
    assert lines[0].startswith(
        "call start abc channel=PJSIP/test-abc flow=verify via=audiosocket caller=*34"
    )
    assert lines[1].startswith(
        "call end abc channel=PJSIP/test-abc flow=verify account=*11 result=PASS score=0.910"
    )
    assert 'reason="score 0.91"' in lines[1] and "duration=" in lines[1]


async def test_the_call_end_line_keeps_timestamps_readable_and_masks_account_and_phone_numbers(caplog):
    """A log line once read 'recording of #############:04 UTC': mask identifiers, never times."""
    from ivr.cli.output import LOG_FORMAT

    async def replayed(call) -> FlowResult:
        return FlowResult(Result.FAIL, "700123", 0.42, "replay of the caller recording of 2026-12-05 18:42:04 UTC "
                          "(account 700123, caller +573001234567)")

    caplog.set_level(logging.INFO, logger="ivr.service.calls")
    await make_runner(verify=replayed).run("verify", MemoryCall("abc"), via="audiosocket")
    end = next(r for r in caplog.records if r.getMessage().startswith("call end"))
    end.created, end.msecs = 1796496124.0, 0.0  # a fixed instant: the line's own timestamp
    line = logging.Formatter(LOG_FORMAT).format(end)
    assert "recording of 2026-12-05 18:42:04 UTC" in line, line
    assert "account=*23" in line and "(account ######, caller +############)" in line, line
    assert "700123" not in line and "573001234567" not in line, line
    asctime = logging.Formatter(LOG_FORMAT).formatTime(end)
    assert line.startswith(f"{asctime} INFO ivr.service.calls: call end abc"), line
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},000", asctime), asctime


async def test_shutdown_lets_calls_in_progress_finish_within_the_grace_period():
    runner = make_runner(verify=sleeper(0.3))
    call = MemoryCall()
    task = asyncio.create_task(runner.run("verify", call, via="audiosocket"))
    await asyncio.sleep(0.05)
    assert await runner.drain(grace_s=5) == 0
    await task
    assert call.result == "PASS"


async def test_shutdown_ends_calls_past_the_grace_period_with_error_for_the_dialplan():
    runner = make_runner(verify=sleeper(60))
    call = MemoryCall()
    task = asyncio.create_task(runner.run("verify", call, via="audiosocket"))
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    assert await runner.drain(grace_s=0.2) == 1
    assert asyncio.get_running_loop().time() - started < 2
    result = await task
    assert result.result is Result.ERROR and result.reason == SHUTTING_DOWN
    assert call.results[-1]["VOICEAUTH_REASON"] == SHUTTING_DOWN
    assert sample(runner, "voiceauth_errors_total", kind="cut_at_shutdown") == 1
    assert runner.active == {}


async def test_calls_arriving_during_shutdown_are_refused_with_error():
    runner = make_runner()
    await runner.drain(grace_s=0)
    call = MemoryCall()
    assert await runner.run("verify", call, via="audiosocket") is None
    assert call.result == "ERROR" and call.results[-1]["VOICEAUTH_REASON"] == SHUTTING_DOWN
