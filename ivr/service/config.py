"""Settings groups of the worker process itself (``ivr serve``): HTTP endpoint and call lifetime.

Transports keep their own groups beside their code (``ivr/transports/*/config.py``);
:class:`ivr.settings.Settings` holds them all, each overridable as
``VOICEAUTH_<GROUP>__<FIELD>``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class HttpSettings(BaseModel):
    """Health and Prometheus metrics endpoint (``/healthz``, ``/readyz``, ``/metrics``)."""

    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(9093, ge=0, le=65535)


class ServiceSettings(BaseModel):
    # On SIGTERM: stop taking calls, let calls in progress finish for this long
    # (a verification takes ~10-20 s, an enrolment ~1 min), then end the rest
    # with VOICEAUTH_RESULT=ERROR.
    shutdown_grace_s: float = Field(30.0, ge=0)
    # Readiness probe of the store must answer within this time.
    ready_timeout_s: float = Field(2.0, gt=0)
    # Run one dummy inference at start so the first caller does not pay for
    # lazy model initialisation.
    warm_up: bool = True
    # No call lasts longer (an enrolment takes 1-3 min): every transport cuts a
    # call's audio (and any leg it waits on) here, so nothing a peer does
    # holds a slot or memory for ever.
    max_call_s: float = Field(900.0, gt=0)
