"""A flow's result as Asterisk channel variables: the ``VOICEAUTH_*`` the dialplan routes on."""

from __future__ import annotations

from ivr.call import FlowResult

# Asterisk truncates long variable values in some paths and agents read the
# reason on a screen: one short line is enough.
MAX_VALUE = 200


def channel_variables(result: FlowResult) -> dict[str, str]:
    """``VOICEAUTH_RESULT``, ``_SCORE``, ``_REASON``, ``_ACCOUNT``, ``_SPEAKER``, ``_METHOD``, safe for AMI and AGI."""
    return {name: dialplan_safe(value) for name, value in result.variables().items()}


def dialplan_safe(text: str) -> str:
    """Channel variables travel in AMI and AGI lines: no newlines, no double quotes, bounded length."""
    return " ".join(text.replace('"', "'").split())[:MAX_VALUE]
