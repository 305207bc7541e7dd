"""Asterisk: AudioSocket (audio and keys), FastAGI and AMI (call details and results)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.base import TransportEnv
    from ivr.transports.asterisk.transport import AsteriskTransport


def build(env: "TransportEnv") -> "AsteriskTransport":
    """Always on: the AudioSocket listener serves both the AMI and the FastAGI variants."""
    from ivr.transports.asterisk.transport import AsteriskTransport

    return AsteriskTransport(env)
