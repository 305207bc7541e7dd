"""The daily summary admins tune thresholds with.

Read it like this: a high inconclusive rate says the accept and reject
thresholds are far apart (or callers speak too briefly); many voice failures
followed by a passed one-time code ("voice_fail_then_passed") are likely
false rejects, so the reject threshold may be too strict; lockouts show
attacks or a limit set too tight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ivr.audit.log import AuditLog, AuditRecord

VERIFY_FLOW = "verify"


@dataclass(frozen=True)
class DailySummary:
    day: date
    attempts: int  # verify-flow attempts
    results: dict[str, int] = field(default_factory=dict)  # by VOICEAUTH_RESULT
    decisions: dict[str, int] = field(default_factory=dict)  # by policy action
    voice: dict[str, int] = field(default_factory=dict)  # voice outcomes, among attempts that scored a voice
    voice_rates: dict[str, float] = field(default_factory=dict)
    step_up_rate: float = 0.0  # attempts that went on to a one-time code or questions
    step_ups_passed: int = 0
    voice_fail_then_passed: int = 0
    lockouts: int = 0
    rules: dict[str, int] = field(default_factory=dict)  # which rules fired (final decision)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data

    def text(self) -> str:
        def pct(x: float) -> str:
            return f"{100 * x:.1f} %"

        lines = [
            f"{self.day.isoformat()} (UTC): {self.attempts} verification attempt(s), "
            f"{self.lockouts} lockout(s)"
        ]
        if self.attempts:
            lines.append("  results: " + ", ".join(f"{k} {v}" for k, v in sorted(self.results.items())))
            if self.voice:
                lines.append(
                    "  voice:   "
                    + ", ".join(
                        f"{k} {self.voice[k]} ({pct(self.voice_rates[k])})" for k in sorted(self.voice)
                    )
                )
            lines.append(
                f"  step-up rate {pct(self.step_up_rate)}; step-ups passed {self.step_ups_passed}; "
                f"voice fail then passed another factor {self.voice_fail_then_passed}"
            )
            if self.latency_ms_p50 is not None:
                lines.append(f"  latency p50 {self.latency_ms_p50:.0f} ms, p95 {self.latency_ms_p95:.0f} ms")
            lines.append("  rules:   " + ", ".join(f"{k} {v}" for k, v in sorted(self.rules.items())))
        return "\n".join(lines)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _count(counter: dict[str, int], key: str | None) -> None:
    if key:
        counter[key] = counter.get(key, 0) + 1


def summarise(records: list[AuditRecord], day: date) -> DailySummary:
    attempts = [r for r in records if r.flow == VERIFY_FLOW]
    results: dict[str, int] = {}
    decisions: dict[str, int] = {}
    voice: dict[str, int] = {}
    rules: dict[str, int] = {}
    stepped = stepped_passed = fail_then_passed = 0
    latencies = [r.latency_ms for r in attempts if r.latency_ms is not None]
    for r in attempts:
        _count(results, r.result)
        _count(decisions, r.decision)
        _count(rules, r.rule)
        outcomes = [(f.get("factor"), f.get("outcome")) for f in r.factors]
        voice_outcomes = [o for f, o in outcomes if f == "voice"]
        if voice_outcomes:
            _count(voice, str(voice_outcomes[0]))
        others = [o for f, o in outcomes if f != "voice"]
        if others:
            stepped += 1
            if "pass" in others:
                stepped_passed += 1
                if "fail" in voice_outcomes:
                    fail_then_passed += 1
    scored = sum(voice.values())
    return DailySummary(
        day=day,
        attempts=len(attempts),
        results=results,
        decisions=decisions,
        voice=voice,
        voice_rates={k: v / scored for k, v in voice.items()} if scored else {},
        step_up_rate=stepped / len(attempts) if attempts else 0.0,
        step_ups_passed=stepped_passed,
        voice_fail_then_passed=fail_then_passed,
        lockouts=sum(1 for r in records if r.locked_out),
        rules=rules,
        latency_ms_p50=_percentile(latencies, 0.5),
        latency_ms_p95=_percentile(latencies, 0.95),
    )


def daily_summary(log: AuditLog, day: date) -> DailySummary:
    """The summary of one UTC day."""
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return summarise(log.query(since=start, until=start + timedelta(days=1)), day)
