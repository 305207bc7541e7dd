"""How account numbers and caller numbers appear in logs: masked, never whole.

Logs travel further than the database (syslog servers, support tickets,
log aggregators) and are rarely access-controlled like it. The last two
characters are enough for an admin to match a log line with an audit row
(``ivr audit --account`` has the whole number) and useless to anyone else.
"""

from __future__ import annotations

VISIBLE = 2


def mask(value: str | None) -> str:
    """``"4572"`` -> ``"*72"``; ``None`` or empty -> ``"-"``. The mask does not reveal the length."""
    if not value:
        return "-"
    return "*" + value[-VISIBLE:] if len(value) > VISIBLE else "*"
