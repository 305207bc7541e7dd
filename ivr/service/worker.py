"""``ivr serve``: one asyncio process serving Asterisk around one biometric engine.

* AudioSocket: the caller's audio and keys in, prompts out.  The call's mode
  (``VOICEAUTH_MODE`` = verify|enroll), language and claimed account come from
  the channel through AMI, and the result goes back the same way.
* FastAGI (``agi://worker/verify`` or ``/enroll``): for PBXs that drive
  everything through AGI.  AGI carries no audio, so the worker asks Asterisk to
  ``EXEC AudioSocket`` back to this worker for the call and runs the very same
  flow on that audio leg; the result returns as AGI ``SET VARIABLE`` — no AMI
  needed on this path.
* AMI client: reconnects with backoff when Asterisk restarts; calls arriving
  while it is down still run, with defaults.
* HTTP: ``/healthz``, ``/readyz``, ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ivr.call import CallInfo
from ivr.flows.base import Flow, FlowResult, Result
from ivr.service.calls import SHUTTING_DOWN, CallRunner, RunCall
from ivr.service.metrics import ServiceMetrics
from ivr.service.prompts import (
    LayeredPromptSource,
    PromptBuilder,
    ensure_generated,
    install_for_asterisk,
    prompt_directories,
)
from ivr.transports.audiosocket import AudioSocketServer, AudioSocketSession
from ivr.transports.fastagi import AgiCallSession, AgiSession, FastAgiServer

if TYPE_CHECKING:
    from ivr.service.http import HttpEndpoint
    from ivr.settings import Settings
    from ivr.transports.ami import AmiCallDirectory, AmiClient
    from voiceprints.engine import VoiceprintEngine

log = logging.getLogger("ivr.service")


@dataclass
class _BridgedCall:
    """A FastAGI call whose audio leg is an AudioSocket connection back to this worker."""

    info: CallInfo
    mode: str
    result: dict[str, str] | None = None


class VoiceAuthService:
    """The worker.  ``await start()``, then ``await stop()`` (graceful) — or ``run_until(stop_event)``.

    Everything heavy can be injected (an opened engine, the flows, the prompt
    builder) so tests run the real servers around a shared engine.
    """

    def __init__(
        self,
        settings: "Settings",
        *,
        engine: "VoiceprintEngine | None" = None,
        flows: Mapping[str, Flow] | None = None,
        run_call: RunCall | None = None,
        prompt_builder: PromptBuilder | None = None,
        build_prompts: bool = True,
        close_engine: bool | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._close_engine = engine is None if close_engine is None else close_engine
        self._flows = flows
        self._run_call = run_call
        self._prompt_builder = prompt_builder
        self._build_prompts = build_prompts
        self.metrics = ServiceMetrics()
        self.runner: CallRunner | None = None
        self.ami: "AmiClient | None" = None
        self._directory: "AmiCallDirectory | None" = None
        self.audiosocket: AudioSocketServer | None = None
        self.fastagi: FastAgiServer | None = None
        self.http: "HttpEndpoint | None" = None
        self._bridged: dict[str, _BridgedCall] = {}
        self._agi_tasks: set[asyncio.Task[object]] = set()
        self.model_loaded = False
        self.started_at: float | None = None
        self._stopped = False

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

        directories = prompt_directories(self.prompt_dir, s.prompts.override_dir)
        if self._build_prompts:
            await ensure_generated(self.prompt_dir, self._prompt_builder)
        if s.prompts.asterisk_sounds_dir is not None:
            await asyncio.to_thread(install_for_asterisk, directories, s.prompts.asterisk_sounds_dir)
        prompts = LayeredPromptSource(directories)

        if self._flows is None:
            from ivr.service.flows import default_flows

            # Opens the IVR database (migrations) and reads the server secrets: off the event loop.
            self._flows = await asyncio.to_thread(default_flows, self.engine, s)
        if self._run_call is None:
            from ivr.flows.runner import run_call

            self._run_call = run_call
        self.runner = CallRunner(self._flows, self._run_call, self.metrics)

        if s.ami.enabled:
            from ivr.transports.ami import AmiCallDirectory, AmiClient

            self.ami = AmiClient(
                s.ami.host,
                s.ami.port,
                username=s.ami.username,
                secret=s.ami.secret.get_secret_value(),
                connect_timeout=s.ami.connect_timeout_s,
                action_timeout=s.ami.action_timeout_s,
                backoff_initial=s.ami.backoff_initial_s,
                backoff_max=s.ami.backoff_max_s,
            )
            self._directory = AmiCallDirectory(self.ami, lookup_timeout=s.ami.lookup_timeout_s)
            await self.ami.start()
            ami = self.ami
            self.metrics.count_from("ami_reconnect", lambda: max(0, ami.connections - 1))

        self.audiosocket = AudioSocketServer(
            self._on_audiosocket_call,
            prompts=prompts,
            on_result=self._on_result,
            call_info=self._call_info,
            host=s.audiosocket.bind,
            port=s.audiosocket.port,
            max_calls=s.audiosocket.max_calls,
            idle_timeout=s.audiosocket.idle_timeout_s,
            call_info_timeout=s.ami.lookup_timeout_s + 1.0,
            max_call_s=s.service.max_call_s,
            allow_from=s.audiosocket.allow_from,
            max_per_peer=s.audiosocket.max_per_peer,
        )
        await self.audiosocket.start()
        audiosocket = self.audiosocket
        self.metrics.count_from("rejected_audiosocket", lambda: audiosocket.rejected_connections)
        self.metrics.count_from("refused_peer_audiosocket", lambda: audiosocket.refused_peers)

        if s.fastagi.enabled:
            routes = {name: self._on_agi_call for name in self._flows}
            self.fastagi = FastAgiServer(
                routes, host=s.fastagi.bind, port=s.fastagi.port, max_calls=s.fastagi.max_calls,
                allow_from=s.fastagi.allow_from, max_per_peer=s.fastagi.max_per_peer,
            )
            await self.fastagi.start()
            fastagi = self.fastagi
            self.metrics.count_from("rejected_fastagi", lambda: fastagi.rejected_connections)
            self.metrics.count_from("refused_peer_fastagi", lambda: fastagi.refused_peers)

        if s.http.enabled:
            from ivr.service.http import HttpEndpoint, build_app

            self.http = HttpEndpoint(
                build_app(self.readiness, self.metrics.exposition), s.http.bind, s.http.port
            )
            await self.http.start()

        self.started_at = time.monotonic()
        log.info(
            "voiceauth worker ready in %.1f s: AudioSocket %s:%d, FastAGI %s, HTTP %s, AMI %s, "
            "model %s, flows %s",
            time.monotonic() - t0,
            s.audiosocket.bind,
            self.audiosocket.port,
            f"{s.fastagi.bind}:{self.fastagi.port}" if self.fastagi else "off",
            f"{s.http.bind}:{self.http.port}" if self.http else "off",
            f"{s.ami.username}@{s.ami.host}:{s.ami.port}" if self.ami else "off",
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
                log.warning(
                    "shutting down: %d call(s) ended with VOICEAUTH_RESULT=ERROR (%s)", cut, SHUTTING_DOWN
                )
        # FastAGI handlers hand the cut calls' results to Asterisk; give them a moment.
        if self._agi_tasks:
            await asyncio.wait(list(self._agi_tasks), timeout=10.0)
        for server in (self.audiosocket, self.fastagi):
            if server is not None:
                await server.close()
        if self.http is not None:
            await self.http.close()
        if self.ami is not None:
            await self.ami.close()
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
        if self.ami is not None:
            checks["ami"] = (
                None
                if self.ami.connected
                else (
                    f"not logged in to AMI at {self.ami.host}:{self.ami.port} "
                    f"({self.ami.last_error or 'connecting'})"
                )
            )
        checks["store"] = await self._store_problem()
        checks["accepting_calls"] = (
            None if self.runner is not None and self.runner.accepting else "shutting down"
        )
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
        log.info("model %s warmed up in %.2f s", engine.model_id, time.monotonic() - started)

    # -- AudioSocket ---------------------------------------------------------

    async def _call_info(self, call_id: str) -> CallInfo:
        bridged = self._bridged.get(call_id)
        if bridged is not None:
            return bridged.info
        if self._directory is None:
            raise LookupError(
                "AMI is disabled (VOICEAUTH_AMI__ENABLED=false): the call's mode and language are unknown"
            )
        return await self._directory.call_info(call_id)

    async def _on_result(self, call_id: str, variables: Mapping[str, str]) -> None:
        bridged = self._bridged.get(call_id)
        if bridged is not None:
            bridged.result = dict(variables)
            return
        if self._directory is None:
            raise RuntimeError("AMI is disabled: an AudioSocket call's result cannot reach the dialplan")
        await self._directory.set_result(call_id, variables)

    async def _on_audiosocket_call(self, session: AudioSocketSession) -> None:
        assert self.runner is not None
        bridged = self._bridged.get(session.info.call_id)
        if bridged is not None:
            await self.runner.run(bridged.mode, session, via="fastagi")
        else:
            await self.runner.run(session.info.params.get("mode", ""), session, via="audiosocket")

    # -- FastAGI -------------------------------------------------------------

    async def _on_agi_call(self, agi: AgiSession) -> None:
        task = asyncio.current_task()
        assert task is not None and self.runner is not None
        self._agi_tasks.add(task)
        try:
            await self._agi_call(agi)
        finally:
            self._agi_tasks.discard(task)

    async def _agi_call(self, agi: AgiSession) -> None:
        assert self.runner is not None
        mode = agi.script
        info = AgiCallSession(agi).info
        call_id = info.params.get("uuid", "")
        try:
            call_id = str(uuidlib.UUID(call_id))
        except ValueError:
            call_id = str(uuidlib.uuid4())  # AudioSocket() insists on a valid UUID
        info = replace(info, call_id=call_id, params={**info.params, "mode": mode})
        if not self.runner.accepting:
            log.info(
                "call %s channel=%s via=fastagi refused: %s",
                call_id,
                info.params.get("channel"),
                SHUTTING_DOWN,
            )
            await self._agi_result(agi, FlowResult(Result.ERROR, reason=SHUTTING_DOWN).variables())
            return
        target = info.params.get("audiosocket") or self.settings.audiosocket.advertise or self._own_address()
        bridged = _BridgedCall(info, mode)
        self._bridged[call_id] = bridged
        try:
            await agi.exec("AudioSocket", f"{call_id},{target}", timeout=self.settings.service.max_call_s)
        finally:
            self._bridged.pop(call_id, None)
        if bridged.result is None:
            if agi.hung_up:
                return  # caller gone: nothing to tell (logged by the call runner)
            reason = f"Asterisk could not open the audio leg to the worker at {target}"
            log.warning("call %s channel=%s via=fastagi: %s", call_id, info.params.get("channel"), reason)
            self.metrics.errors.labels("audio_leg_failed").inc()
            bridged.result = FlowResult(Result.ERROR, reason=reason).variables()
        await self._agi_result(agi, bridged.result)

    async def _agi_result(self, agi: AgiSession, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            await agi.set_variable(name, value)
        await agi.close()

    def _own_address(self) -> str:
        assert self.audiosocket is not None
        host = self.settings.audiosocket.bind
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{host}:{self.audiosocket.port}"
