"""The one wall clock of the engine and the IVR application.

Every timestamp that is stored or compared (retention, lockout windows, one-time-code expiry, leases,
challenge reuse, audit entries, calibration dates) comes from a :data:`Clock`. Production uses
:func:`system_clock`; the voiceprint store and the IVR database each carry the clock they were
opened with (``SqlVoiceprintStore(..., clock=)``, ``open_database(..., clock=)``) and the services
built on them read it from there, so a test pins time in one place and the code under test cannot
see another day. Elapsed time for timeouts and pacing is not wall time: that stays on
``time.monotonic``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware, in UTC."""


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
