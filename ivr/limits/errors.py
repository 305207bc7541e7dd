"""Typed errors of the attempt limits."""

from __future__ import annotations


class LimitsUnavailableError(Exception):
    """The limits could not be read or written (database unreachable); fail closed: treat as locked."""

    code = "limits_unavailable"
