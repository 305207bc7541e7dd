"""``ivr serve``: one asyncio process serving telephony around one biometric engine.

The worker opens the engine, builds the flows, starts every transport the
settings switch on (:mod:`ivr.transports`: each owns its protocol) and hands
them one call runner; it serves ``/healthz``, ``/readyz``, ``/metrics`` and
any routes a transport brings on its HTTP endpoint. It knows no protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ivr.flows.base import Flow
from ivr.prompts.sources import LayeredPromptSource, PromptBuilder, ensure_generated, prompt_directories
from ivr.service.calls import SHUTTING_DOWN, CallRunner
from ivr.service.metrics import ServiceMetrics
from ivr.transports import build_transports
from ivr.transports.base import Transport, TransportEnv

if TYPE_CHECKING:
    from ivr.service.http import HttpEndpoint
    from ivr.settings import Settings
    from voiceprints.engine import VoiceprintEngine

log = logging.getLogger("ivr.service")


class VoiceAuthService:
    """The worker.  ``await start()``, then ``await stop()`` (graceful) — or ``run_until(stop_event)``.

    Everything heavy can be injected (an opened engine, the flows, the prompt
    builder) so tests run the real transports around a shared engine.
    """

    def __init__(
        self,
        settings: "Settings",
        *,
        engine: "VoiceprintEngine | None" = None,
        flows: Mapping[str, Flow] | None = None,
        prompt_builder: PromptBuilder | None = None,
        build_prompts: bool = True,
        close_engine: bool | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._close_engine = engine is None if close_engine is None else close_engine
        self._flows = flows
        self._prompt_builder = prompt_builder
        self._build_prompts = build_prompts
        self.metrics = ServiceMetrics()
        self.runner: CallRunner | None = None
        self.transports: list[Transport] = []
        self.http: "HttpEndpoint | None" = None
        self.model_loaded = False
        self.started_at: float | None = None
        self._stopped = False

    def transport(self, name: str) -> Transport:
        """The running transport called ``name`` (see :mod:`ivr.transports`); KeyError if it is off."""
        for transport in self.transports:
            if transport.name == name:
                return transport
        raise KeyError(f"transport {name!r} is not running (have {[t.name for t in self.transports]})")

    # -- lifecycle -----------------------------------------------------------

    @property
    def prompt_dir(self) -> Path:
        return self.settings.prompts.generated_dir or self.settings.data_dir / "prompts"

    async def start(self) -> None:
        s = self.settings
        t0 = time.monotonic()
        if self.engine is None:
            from voiceprints.engine import open_engine

            log.info("loading the model and opening the voiceprint store")
            self.engine = await asyncio.to_thread(open_engine, s.core())
        if s.service.warm_up:
            await self._warm_up()
        self.model_loaded = True
        inference = self.engine.inference
        self.metrics.count_from("busy", lambda: inference.rejected)

        directories = prompt_directories(self.prompt_dir, s.prompts.override_dir)
        if self._build_prompts:
            await ensure_generated(self.prompt_dir, self._prompt_builder)
        prompts = LayeredPromptSource(directories)

        if self._flows is None:
            from ivr.service.flows import default_flows

            # Opens the IVR database (migrations) and reads the server secrets: off the event loop.
            self._flows = await asyncio.to_thread(default_flows, self.engine, s, prompts)
        self.runner = CallRunner(self._flows, self.metrics)

        env = TransportEnv(settings=s, prompts=prompts,
                           prompt_directories=directories, metrics=self.metrics)
        for transport in build_transports(env):
            self.transports.append(transport)  # closed by stop() even when its start fails half-way
            await transport.start(self.runner)

        if not self.transports:
            log.warning("no transport is on: this worker takes no calls (VOICEAUTH_AUDIOSOCKET__ENABLED, "
                        "VOICEAUTH_TWILIO__*, VOICEAUTH_SIP__ENABLED; docs/admins.md)")
        routers = [r for r in (t.http_routes() for t in self.transports) if r is not None]
        if routers and not s.http.enabled:
            names = ", ".join(t.name for t in self.transports if t.http_routes() is not None)
            raise RuntimeError(f"the {names} transport serves HTTP routes but VOICEAUTH_HTTP__ENABLED=false")
        if s.http.enabled:
            from ivr.service.http import HttpEndpoint, build_app

            self.http = HttpEndpoint(build_app(self.readiness, self.metrics.exposition, routers),
                                     s.http.bind, s.http.port)
            await self.http.start()

        self.started_at = time.monotonic()
        log.info(
            "voiceauth worker ready in %.1f s: %s, HTTP %s, model %s, flows %s",
            time.monotonic() - t0,
            "; ".join(t.describe() for t in self.transports) or "no transport",
            f"{s.http.bind}:{self.http.port}" if self.http else "off",
            self.engine.model_id,
            ",".join(sorted(self._flows)),
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: refuse new calls, let calls finish (up to the grace), end the rest with ERROR."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.service.shutdown_grace_s if grace_s is None else grace_s
        if self.runner is not None:
            cut = await self.runner.drain(grace)
            if cut:
                log.warning("shutting down: %d call(s) ended with VOICEAUTH_RESULT=ERROR (%s)", cut, SHUTTING_DOWN)
        # Transports first (they may still answer a result callback over HTTP), then HTTP.
        for transport in self.transports:
            try:
                await transport.close()
            except Exception:  # noqa: BLE001 - the others must still be closed
                log.exception("closing the %s transport failed", transport.name)
        if self.http is not None:
            await self.http.close()
        if self.engine is not None and self._close_engine:
            await asyncio.to_thread(self.engine.close)
        log.info("voiceauth worker stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- health --------------------------------------------------------------

    async def readiness(self) -> dict[str, str | None]:
        checks: dict[str, str | None] = {}
        checks["model"] = None if self.model_loaded else "model not loaded yet"
        if self.engine is not None and self.engine.inference.saturated:
            checks["inference"] = (f"busy: {self.engine.inference.pending} inferences running or waiting; "
                                   "new verifications step up to another factor")
        for transport in self.transports:
            checks.update(transport.health())
        checks["store"] = await self._store_problem()
        checks["accepting_calls"] = None if self.runner is not None and self.runner.accepting else "shutting down"
        return checks

    async def _store_problem(self) -> str | None:
        if self.engine is None:
            return "store not opened yet"
        store = self.engine.store
        try:
            await asyncio.wait_for(
                asyncio.to_thread(store.model_ids_for, "voiceauth-readiness-probe"),
                self.settings.service.ready_timeout_s,
            )
        except asyncio.TimeoutError:
            return f"store did not answer within {self.settings.service.ready_timeout_s} s"
        except Exception as exc:  # noqa: BLE001 - reported to the probe
            return f"store unavailable: {exc}"
        return None

    async def _warm_up(self) -> None:
        """One inference on low noise: the first caller must not pay for lazy initialisation."""
        import numpy as np

        from voiceprints.audio.clip import AudioClip

        engine = self.engine
        assert engine is not None
        noise = np.random.default_rng(0).standard_normal(16000 * 2).astype("float32") * 0.01
        started = time.monotonic()
        await asyncio.to_thread(engine.embedder.embed, AudioClip(noise, 16000))
        # The cohort and identification index decrypt every voiceprint: built now, not in a caller's call.
        await asyncio.to_thread(engine.warm_caches)
        log.info("model %s and the enrolled population (cohort, identification index) ready in %.2f s",
                 engine.model_id, time.monotonic() - started)
