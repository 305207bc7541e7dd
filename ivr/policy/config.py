"""Where the decision policy comes from; a settings group (``VOICEAUTH_POLICY__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel


class PolicySettings(BaseModel):
    # None: the shipped ivr/policy/default.yaml.
    file: Path | None = None
    # Merged over the file, e.g. VOICEAUTH_POLICY__OVERRIDES='{"voice_alone_accepts": false}'
    # or '{"rules": {"voice-fail-repeated": {"when": {"recent_failures_at_least": 2}}}}':
    # top-level keys replace, and "rules" patches the named rules in place.
    overrides: dict[str, Any] = {}
