"""Asterisk: AudioSocket (audio and keys), FastAGI and AMI (call details and results)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.base import TransportEnv
    from ivr.transports.asterisk.transport import AsteriskTransport


def build(env: "TransportEnv") -> "AsteriskTransport | None":
    """On unless ``VOICEAUTH_AUDIOSOCKET__ENABLED``, ``__FASTAGI__`` and ``__AMI__ENABLED`` are all false.

    The AudioSocket listener serves both the AMI and the FastAGI variants, so
    either of those without it is refused (ValueError naming the fix).
    """
    from ivr.transports.asterisk.config import check_asterisk_switches

    s = env.settings
    if not check_asterisk_switches(s.ami, s.audiosocket, s.fastagi):
        return None
    from ivr.transports.asterisk.transport import AsteriskTransport

    return AsteriskTransport(env)
