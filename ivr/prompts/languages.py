"""Which language a call's prompts are played in: what the call asked for, if offered, else the default.

Transports learn a requested language from their protocol (an Asterisk
channel's ``VOICEAUTH_LANG`` or ``CHANNEL(language)``, a Twilio webhook's
``lang``); the deployment says which languages it offers
(``VOICEAUTH_FLOWS__LANGUAGES``) and which one a call gets otherwise
(``VOICEAUTH_FLOWS__DEFAULT_LANGUAGE``). A request for a language that is
not offered would end the call at its first prompt; it gets the default.
"""

from __future__ import annotations

from typing import Sequence


def call_language(requested: str | None, offered: Sequence[str], default: str) -> str:
    """``es`` for ``es``, ``ES`` or ``es_MX`` when ``es`` is offered; ``default`` otherwise."""
    if requested:
        wanted = requested.strip().lower().replace("-", "_")
        by_lower = {lang.lower(): lang for lang in offered}
        for candidate in (wanted, wanted.split("_", 1)[0]):
            if candidate in by_lower:
                return by_lower[candidate]
    return default
