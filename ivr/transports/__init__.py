"""The telephony transports the worker can serve, each a sibling package that owns its protocol.

Adding a transport is a new package with a ``build(env) -> Transport | None``
function (None when its settings leave it off), its settings group on
:class:`ivr.settings.Settings`, and one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.base import Transport, TransportEnv

REGISTERED = (
    "ivr.transports.asterisk",  # AudioSocket + FastAGI + AMI
    "ivr.transports.twilio",  # Programmable Voice Media Streams
    "ivr.transports.sip",  # a SIP endpoint (pyVoIP) any PBX dials
)


def build_transports(env: "TransportEnv") -> list["Transport"]:
    """Every registered transport the settings switch on, in registration order."""
    found = []
    for module in REGISTERED:
        transport = importlib.import_module(module).build(env)
        if transport is not None:
            found.append(transport)
    return found
