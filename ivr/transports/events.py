"""A call's incoming events as a transport's reader hands them to the flow: ordered and bounded.

A flow that is busy (scoring, a database call) must not make memory grow
without bound while the caller keeps talking; the oldest audio is the least
useful, so it goes first. Digits and the hang-up are never dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ivr.call import AudioFrame, CallEvent, HangUp

# A caller produces audio in real time. Every transport reads a call's audio
# no faster than real time plus this burst (network jitter and a PBX's or
# carrier's buffering release at most a few hundred ms at once); a peer
# sending faster (a replayed file, an attack) waits in the kernel's socket
# buffer while TCP makes it wait, so a call's memory stays bounded.
BURST_S = 2.0


class CallEvents:
    def __init__(self, max_buffered_frames: int) -> None:
        self._events: deque[CallEvent] = deque()
        self._arrived = asyncio.Event()
        self._buffered_audio = 0
        self._max_buffered_frames = max(1, max_buffered_frames)
        self._ended = asyncio.Event()
        self.dropped_frames = 0

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def put(self, event: CallEvent) -> None:
        if isinstance(event, AudioFrame):
            if self._buffered_audio >= self._max_buffered_frames:
                for index, queued in enumerate(self._events):
                    if isinstance(queued, AudioFrame):
                        del self._events[index]
                        break
                self._buffered_audio -= 1
                self.dropped_frames += 1
            self._buffered_audio += 1
        self._events.append(event)
        self._arrived.set()

    def end(self) -> None:
        """The call is over: a HangUp follows whatever is queued, once."""
        if not self._ended.is_set():
            self._ended.set()
            self.put(HangUp())

    async def next(self, timeout: float) -> CallEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._events:
            if self._ended.is_set():
                return HangUp()  # the HangUp event was already taken; keep saying so
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        event = self._events.popleft()
        if isinstance(event, AudioFrame):
            self._buffered_audio -= 1
        return event

    async def wait_ended(self) -> None:
        await self._ended.wait()
