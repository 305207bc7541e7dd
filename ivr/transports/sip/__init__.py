"""A standalone SIP endpoint (pyVoIP): any PBX dials it, it runs the flow and hands the result back over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.base import TransportEnv
    from ivr.transports.sip.transport import SipTransport


def build(env: "TransportEnv") -> "SipTransport | None":
    """On when ``VOICEAUTH_SIP__ENABLED=true`` (with a registrar and credentials)."""
    if not env.settings.sip.enabled:
        return None
    from ivr.transports.sip.transport import SipTransport

    return SipTransport(env)
