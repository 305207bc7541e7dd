"""Settings of the Asterisk transport: AMI login, AudioSocket and FastAGI listeners.

Each group is overridable as ``VOICEAUTH_<GROUP>__<FIELD>`` (for example
``VOICEAUTH_AMI__SECRET=...`` or ``VOICEAUTH_AUDIOSOCKET__BIND=0.0.0.0``).
Every listener binds to loopback by default: exposing the worker to a PBX on
another host is a deliberate admin decision (see docs/admins.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from ivr.transports.listener import LOOPBACK, networks


def _addresses(value: Any) -> Any:
    # "10.0.0.5, 10.0.1.0/24" reads better in an environment variable than JSON.
    if isinstance(value, str):
        value = [part for part in value.replace(";", ",").split(",") if part.strip()]
    networks(value)  # refuse a typo at start-up, naming it
    return tuple(value)


class PeerSettings(BaseModel):
    """Who may connect to a listener that has no authentication of its own (AudioSocket, FastAGI)."""

    # IP addresses or networks of the PBXs (Asterisk) allowed to connect;
    # default loopback only. Anyone who can connect can stream a call or
    # drive a flow, so list exactly your PBXs, e.g. "10.0.0.5,10.0.0.6".
    allow_from: tuple[str, ...] = LOOPBACK
    # Connections one peer may hold at once. One PBX carries every call, so
    # the default is max_calls; with several PBXs per worker, lower it so
    # that one cannot take every slot.
    max_per_peer: int = Field(50, ge=1)

    _allow = field_validator("allow_from", mode="before")(_addresses)


class AmiSettings(BaseModel):
    """The worker's Asterisk Manager Interface login (manager.conf on the PBX)."""

    # AudioSocket carries only a UUID: without AMI the worker cannot learn the
    # call's mode/language/account nor hand the result back.  A FastAGI-only
    # deployment switches it off, and so does a worker without Asterisk
    # (Twilio, SIP): an AMI that is on counts in /readyz.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "voiceauth"
    secret: SecretStr = SecretStr("")
    # A healthy AMI answers in milliseconds; seconds mean the PBX is down or
    # the network is partitioned, and a call should not wait longer than that.
    connect_timeout_s: float = Field(5.0, gt=0)
    action_timeout_s: float = Field(5.0, gt=0)
    # Reconnect backoff while Asterisk restarts: fast first retry, capped so a
    # restarted PBX is picked up within a few seconds.
    backoff_initial_s: float = Field(0.2, gt=0)
    backoff_max_s: float = Field(5.0, gt=0)
    # How long an AudioSocket call may wait for its channel to show up in AMI.
    lookup_timeout_s: float = Field(5.0, gt=0)


class AudioSocketSettings(PeerSettings):
    # The listener Asterisk streams calls' audio to, for both the AMI and the
    # FastAGI variants: on by default (today's Asterisk deployments). A worker
    # for Twilio or SIP only switches it off, with FastAGI and AMI, and then
    # binds no Asterisk port at all.
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(9092, ge=0, le=65535)
    # Beyond this many concurrent calls new connections are refused at once
    # (the dialplan routes them to its fallback) instead of slowing every call.
    # Sized from scripts/bench_load.py on a 2-core machine; see docs/admins.md.
    max_calls: int = Field(50, ge=1)
    # A connected caller sends a frame every 20 ms while audio flows; a minute
    # without any frame means the call is gone.
    idle_timeout_s: float = Field(60.0, gt=0)
    # host:port Asterisk uses to reach this worker's listener, for the FastAGI
    # variant (the worker asks Asterisk to EXEC AudioSocket back to itself; the
    # leg must reach the same worker). Empty: bind:port, or for a wildcard bind
    # the address Asterisk reached the worker's FastAGI port at.
    advertise: str = ""


class FastAgiSettings(PeerSettings):
    # The call's audio comes back over AudioSocket: FastAGI needs that listener on.
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    max_calls: int = Field(50, ge=1)


def check_asterisk_switches(ami: AmiSettings, audiosocket: AudioSocketSettings, fastagi: FastAgiSettings) -> bool:
    """Whether any Asterisk part is on; ValueError naming the fix for a combination that cannot work.

    Both AMI and FastAGI only serve calls whose audio reaches the AudioSocket
    listener, so either of them without it would be a port or a login that
    no call can use (and an AMI login the readiness probe would count).
    """
    if not audiosocket.enabled:
        for name, part in (("FASTAGI", fastagi), ("AMI", ami)):
            if part.enabled:
                raise ValueError(
                    f"VOICEAUTH_{name}__ENABLED=true needs VOICEAUTH_AUDIOSOCKET__ENABLED=true (calls' audio "
                    f"reaches the worker over AudioSocket); for a worker without Asterisk set "
                    "VOICEAUTH_AUDIOSOCKET__ENABLED, VOICEAUTH_FASTAGI__ENABLED and VOICEAUTH_AMI__ENABLED to false"
                )
    return audiosocket.enabled or fastagi.enabled or ami.enabled
