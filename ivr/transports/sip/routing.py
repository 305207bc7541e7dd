"""Which flow, account and language an INVITE asks for: the dialled number and the PBX's headers.

The request-URI's user part is the dialled number (Asterisk:
``Dial(PJSIP/814711@voiceauth)``). The longest configured prefix
(``VOICEAUTH_SIP__ROUTES``) names the flow; the digits after it, if any, are
the claimed account. A header the PBX adds (``X-VoiceAuth-Account``) names the
account instead; with neither, the flow asks the caller on the keypad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

_REQUEST_LINE = re.compile(r"^INVITE\s+(?:sips?|tel):(?:([^@;>\s]*)@)?", re.IGNORECASE)
ACCOUNT = re.compile(r"^[0-9]{1,32}$")
CALL_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True)
class Route:
    flow: str | None  # None: no route for this number
    dialled: str
    account: str | None = None
    problem: str = ""


def dialled_number(request_line: str) -> str:
    """The user part of an INVITE's request URI ("" when there is none)."""
    match = _REQUEST_LINE.match(request_line.strip())
    return (match.group(1) or "") if match else ""


def route(request_line: str, routes: Mapping[str, str], account_header: str | None) -> Route:
    dialled = dialled_number(request_line)
    prefix = max((p for p in routes if dialled.startswith(p)), key=len, default=None)
    if prefix is None:
        return Route(None, dialled, problem=f"no VOICEAUTH_SIP__ROUTES entry matches dialled number {dialled!r}")
    rest = dialled[len(prefix):]
    account = (account_header or "").strip() or rest or None
    if account is not None and not ACCOUNT.match(account):
        return Route(None, dialled, problem=f"claimed account {account[:40]!r} is not 1-32 digits")
    return Route(routes[prefix], dialled, account)
