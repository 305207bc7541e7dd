"""What a transport is to the worker: started with the calls runner, closed, asked for its health.

A transport owns one telephony protocol end to end: its listeners, its wire
format, how it learns a call's flow, language and claimed account, and how a
:class:`~ivr.call.FlowResult` goes back in that protocol's terms (Asterisk
channel variables, Twilio TwiML). It turns each call into a
:class:`~ivr.call.CallSession` and hands it to :class:`Calls`; nothing about
the protocol goes further. The worker builds every registered transport
from the settings (:mod:`ivr.transports`) and knows nothing else of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from ivr.call import CallSession, FlowResult
from ivr.prompts.sources import PromptSource

if TYPE_CHECKING:
    from ivr.settings import Settings


class Calls(Protocol):
    """The worker's call runner, as a transport sees it."""

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: a transport may refuse new calls early with ERROR."""
        ...

    @property
    def flow_names(self) -> list[str]:
        """The flows a call may ask for (``verify``, ``enroll``, ``optout``)."""
        ...

    async def run(self, flow: str, call: CallSession, *, via: str) -> FlowResult | None:
        """Run the flow named ``flow`` on ``call`` to its end, including ``call.finish``; None: the caller left."""
        ...


class TransportMetrics(Protocol):
    def error(self, kind: str) -> None:
        """Count one problem of ``kind`` in ``voiceauth_errors_total``."""
        ...

    def count_from(self, kind: str, source: Callable[[], int]) -> None:
        """Feed ``voiceauth_errors_total{kind}`` from a counter the transport keeps."""
        ...


@dataclass(frozen=True)
class TransportEnv:
    """What the worker gives every transport it builds."""

    settings: "Settings"
    prompts: PromptSource
    # The prompt directories, override first (a transport whose PBX plays files itself copies them).
    prompt_directories: Sequence[Path]
    metrics: TransportMetrics

    def language(self, requested: str | None) -> str:
        """The prompt language for a call that asked for ``requested`` (VOICEAUTH_FLOWS__LANGUAGES)."""
        return self.settings.flows.call_language(requested)


class Transport(Protocol):
    name: str

    async def start(self, calls: Calls) -> None:
        """Listen (or connect) and hand every call to ``calls``; raises with the address when it cannot."""
        ...

    async def close(self) -> None:
        """Stop taking calls, let results already given reach the peer (bounded), release every port."""
        ...

    def health(self) -> dict[str, str | None]:
        """Readiness checks: ``{check: None}`` when fine, ``{check: "why not"}`` otherwise."""
        ...

    def describe(self) -> str:
        """One phrase for the worker's start-up line, e.g. ``AudioSocket 127.0.0.1:9092``."""
        ...

    def http_routes(self) -> Any | None:
        """A FastAPI ``APIRouter`` to mount on the worker's HTTP endpoint, or None."""
        ...
