"""What a flow is: a coroutine from a call to its result (ivr.call.FlowResult)."""

from __future__ import annotations

from typing import Awaitable, Callable

from ivr.call import CallSession, FlowResult

Flow = Callable[[CallSession], Awaitable[FlowResult]]
