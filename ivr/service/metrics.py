"""Prometheus metrics of one worker, on its own registry.

A registry per service (not prometheus-client's global one) keeps two workers
in one test process, or a re-created service, from sharing or double
registering counters.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ivr.call import FlowResult

# Decision latency is judged against "about one second after enough speech":
# buckets are fine below 1 s and coarse above it.
DECISION_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
CALL_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls_in_progress = Gauge(
            "voiceauth_calls_in_progress", "Calls being handled now, by flow.", ["flow"], registry=r
        )
        self.calls = Counter(
            "voiceauth_calls", "Calls finished, by flow and VOICEAUTH_RESULT.", ["flow", "result"], registry=r
        )
        self.decision_latency = Histogram(
            "voiceauth_decision_latency_seconds",
            "Time from 'enough speech collected' to the decision (the caller's wait).",
            ["flow"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.embedding_latency = Histogram(
            "voiceauth_embedding_latency_seconds",
            "Engine time for one verification (quality check, VAD, embedding, scoring).",
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.call_duration = Histogram(
            "voiceauth_call_duration_seconds",
            "Time the worker spent on a call, by flow.",
            ["flow"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.risks = Counter(
            "voiceauth_risks",
            "Calls whose voice was flagged, by flow and risk (replay, synthetic, watchlist).",
            ["flow", "risk"],
            registry=r,
        )
        self.errors = Counter(
            "voiceauth_errors",
            "Problems by kind (flow_error, unknown_mode, cut_at_shutdown, and each transport's own).",
            ["kind"],
            registry=r,
        )
        self._sources: dict[str, Callable[[], int]] = {}
        self._seen: dict[str, int] = {}

    def observe_result(self, flow: str, result: FlowResult) -> None:
        self.calls.labels(flow, result.result.value).inc()
        for risk in result.risks:
            self.risks.labels(flow, risk).inc()
        decision_s = getattr(result, "decision_s", None)
        engine_s = getattr(result, "engine_s", None)
        if decision_s is not None:
            self.decision_latency.labels(flow).observe(decision_s)
        if engine_s is not None:
            self.embedding_latency.observe(engine_s)

    def error(self, kind: str) -> None:
        """Count one problem of ``kind`` (``errors{kind}``)."""
        self.errors.labels(kind).inc()

    def count_from(self, kind: str, source: Callable[[], int]) -> None:
        """Feed ``errors{kind}`` from a monotonic counter kept elsewhere (e.g. a server's rejections)."""
        self._sources[kind] = source
        self._seen[kind] = source()
        self.errors.labels(kind)  # show the series at 0 from the start

    def refresh(self) -> None:
        for kind, source in self._sources.items():
            now = source()
            if now > self._seen[kind]:
                self.errors.labels(kind).inc(now - self._seen[kind])
            self._seen[kind] = now

    def exposition(self) -> bytes:
        self.refresh()
        return generate_latest(self.registry)
