"""What an Asterisk channel name says about where a call came in."""

from __future__ import annotations


def trunk_of(channel: str | None) -> str | None:
    """``PJSIP/carrier-a-0000002a`` -> ``PJSIP/carrier-a``: the endpoint, without Asterisk's per-call suffix."""
    if not channel:
        return None
    name = channel.split(";", 1)[0]  # Local channels end in ;1 / ;2
    head, sep, tail = name.rpartition("-")
    return head if sep and tail and all(c in "0123456789abcdef" for c in tail.lower()) else name
