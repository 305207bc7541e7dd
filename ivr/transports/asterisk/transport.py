"""The Asterisk transport: AudioSocket for the caller's audio and keys, AMI or FastAGI for the rest.

* AudioSocket: the caller's audio and keys in, prompts out. The call's mode
  (``VOICEAUTH_MODE`` = verify|enroll|optout), language and claimed account
  come from the channel through AMI, and the result goes back the same way
  (``Setvar`` of the ``VOICEAUTH_*`` variables).
* FastAGI (``agi://worker/verify`` or ``/enroll``): for PBXs that drive
  everything through AGI. AGI carries no audio, so the transport asks
  Asterisk to ``EXEC AudioSocket`` back to its own listener for the call and
  runs the very same flow on that audio leg; the result returns as AGI
  ``SET VARIABLE``: no AMI needed on this path. The audio leg always comes
  back to *this* worker (its advertised address, else the address Asterisk
  reached its FastAGI port at): with several workers behind one address, a
  leg landing on another worker would run the call there while this one
  reported ERROR.
* AMI client: reconnects with backoff when Asterisk restarts; calls arriving
  while it is down still run, with defaults.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from dataclasses import dataclass, replace
from typing import Mapping

from ivr.call import CallInfo, FlowResult, Result
from ivr.transports.asterisk.ami import AmiCallDirectory, AmiClient
from ivr.transports.asterisk.audiosocket import AudioSocketServer, AudioSocketSession
from ivr.transports.asterisk.fastagi import AgiCallSession, AgiSession, FastAgiServer
from ivr.transports.asterisk.sounds import install_for_asterisk
from ivr.transports.asterisk.variables import channel_variables
from ivr.transports.base import Calls, TransportEnv

log = logging.getLogger("ivr.transports.asterisk")

# Said to the dialplan when the worker refuses a FastAGI call at shutdown (as the call runner says it).
SHUTTING_DOWN = "worker shutting down"


@dataclass
class _BridgedCall:
    """A FastAGI call whose audio leg is an AudioSocket connection back to this worker."""

    info: CallInfo
    mode: str
    result: dict[str, str] | None = None


class AsteriskTransport:
    name = "asterisk"

    def __init__(self, env: TransportEnv) -> None:
        self._env = env
        self.ami: AmiClient | None = None
        self._directory: AmiCallDirectory | None = None
        self.audiosocket: AudioSocketServer | None = None
        self.fastagi: FastAgiServer | None = None
        self._calls: Calls | None = None
        self._bridged: dict[str, _BridgedCall] = {}
        self._agi_tasks: set[asyncio.Task[object]] = set()

    # -- Transport -----------------------------------------------------------

    async def start(self, calls: Calls) -> None:
        s, env = self._env.settings, self._env
        self._calls = calls
        if s.prompts.asterisk_sounds_dir is not None:
            await asyncio.to_thread(install_for_asterisk, env.prompt_directories, s.prompts.asterisk_sounds_dir)
        if s.ami.enabled:
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
            self._directory = AmiCallDirectory(self.ami, lookup_timeout=s.ami.lookup_timeout_s,
                                               language=env.language)
            await self.ami.start()
            ami = self.ami
            env.metrics.count_from("ami_reconnect", lambda: max(0, ami.connections - 1))

        if s.audiosocket.enabled:
            await self._start_audiosocket()
        if s.fastagi.enabled:
            routes = {name: self._on_agi_call for name in calls.flow_names}
            self.fastagi = FastAgiServer(
                routes, host=s.fastagi.bind, port=s.fastagi.port, max_calls=s.fastagi.max_calls,
                allow_from=s.fastagi.allow_from, max_per_peer=s.fastagi.max_per_peer,
            )
            await self.fastagi.start()
            fastagi = self.fastagi
            env.metrics.count_from("rejected_fastagi", lambda: fastagi.rejected_connections)
            env.metrics.count_from("refused_peer_fastagi", lambda: fastagi.refused_peers)

    async def _start_audiosocket(self) -> None:
        s, env = self._env.settings, self._env
        self.audiosocket = AudioSocketServer(
            self._on_audiosocket_call,
            prompts=env.prompts,
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
            default_language=s.flows.default_language,
        )
        await self.audiosocket.start()
        audiosocket = self.audiosocket
        env.metrics.count_from("rejected_audiosocket", lambda: audiosocket.rejected_connections)
        env.metrics.count_from("refused_peer_audiosocket", lambda: audiosocket.refused_peers)

    async def close(self) -> None:
        # FastAGI handlers hand the cut calls' results to Asterisk; give them a moment.
        if self._agi_tasks:
            await asyncio.wait(list(self._agi_tasks), timeout=10.0)
        for server in (self.audiosocket, self.fastagi):
            if server is not None:
                await server.close()
        if self.ami is not None:
            await self.ami.close()

    def health(self) -> dict[str, str | None]:
        if self.ami is None:
            return {}
        if self.ami.connected:
            return {"ami": None}
        return {"ami": f"not logged in to AMI at {self.ami.host}:{self.ami.port} "
                       f"({self.ami.last_error or 'connecting'})"}

    def describe(self) -> str:
        s = self._env.settings
        return ", ".join((
            f"AudioSocket {s.audiosocket.bind}:{self.audiosocket.port}" if self.audiosocket else "AudioSocket off",
            f"FastAGI {s.fastagi.bind}:{self.fastagi.port}" if self.fastagi else "FastAGI off",
            f"AMI {s.ami.username}@{s.ami.host}:{s.ami.port}" if self.ami else "AMI off",
        ))

    def http_routes(self) -> None:
        return None

    # -- AudioSocket <-> AMI ---------------------------------------------------

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
        assert self._calls is not None
        bridged = self._bridged.get(session.info.call_id)
        if bridged is not None:
            await self._calls.run(bridged.mode, session, via="fastagi")
        else:
            await self._calls.run(session.info.params.get("mode", ""), session, via="audiosocket")

    # -- FastAGI bridge ----------------------------------------------------------

    async def _on_agi_call(self, agi: AgiSession) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._agi_tasks.add(task)
        try:
            await self._agi_call(agi)
        finally:
            self._agi_tasks.discard(task)

    async def _agi_call(self, agi: AgiSession) -> None:
        assert self._calls is not None
        settings = self._env.settings
        mode = agi.script
        info = AgiCallSession(agi, language=self._env.language).info
        call_id = info.params.get("uuid", "")
        try:
            call_id = str(uuidlib.UUID(call_id))
        except ValueError:
            call_id = str(uuidlib.uuid4())  # AudioSocket() insists on a valid UUID
        info = replace(info, call_id=call_id, params={**info.params, "mode": mode})
        if not self._calls.accepting:
            log.info("call %s channel=%s via=fastagi refused: %s", call_id, info.params.get("channel"),
                     SHUTTING_DOWN)
            await self._agi_result(agi, channel_variables(FlowResult(Result.ERROR, reason=SHUTTING_DOWN)))
            return
        target = settings.audiosocket.advertise or self._own_address(agi.local_host)
        bridged = _BridgedCall(info, mode)
        self._bridged[call_id] = bridged
        try:
            await agi.exec("AudioSocket", f"{call_id},{target}", timeout=settings.service.max_call_s)
        finally:
            self._bridged.pop(call_id, None)
        if bridged.result is None:
            if agi.hung_up:
                return  # caller gone: nothing to tell (logged by the call runner)
            reason = f"Asterisk could not open the audio leg to the worker at {target}"
            log.warning("call %s channel=%s via=fastagi: %s", call_id, info.params.get("channel"), reason)
            self._env.metrics.error("audio_leg_failed")
            bridged.result = channel_variables(FlowResult(Result.ERROR, reason=reason))
        await self._agi_result(agi, bridged.result)

    async def _agi_result(self, agi: AgiSession, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            await agi.set_variable(name, value)
        await agi.close()

    def _own_address(self, reached_at: str) -> str:
        """Where Asterisk finds this worker's AudioSocket listener: its bind address, or when that is a
        wildcard, the address Asterisk just reached this worker's FastAGI port at."""
        assert self.audiosocket is not None
        host = self._env.settings.audiosocket.bind
        if host in ("0.0.0.0", "::", ""):
            host = reached_at
        return f"[{host}]:{self.audiosocket.port}" if ":" in host else f"{host}:{self.audiosocket.port}"
