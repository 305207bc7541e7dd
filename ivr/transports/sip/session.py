"""One answered SIP call as an :class:`ivr.call.CallSession`, on the event loop.

* Caller audio: the RTP payload's G.711 codes (μ-law or A-law, as each
  packet says) become :class:`~ivr.call.AudioFrame` s of 16-bit PCM through
  the project's own codec; RFC 4733 events become :class:`~ivr.call.DtmfDigit`;
  the caller's BYE is the hang-up.
* Prompts: encoded once per prompt, language and codec, sent in 20 ms frames
  in the codec the call negotiated; :meth:`play` returns when the last frame
  went out. A key pressed during a prompt stops it and is kept for the flow.
* The result: :meth:`finish` keeps it (result API, webhook) and hangs up.
* pyVoIP's threads reach this object only through :class:`Bridge`: a bounded
  buffer drained on the loop (``call_soon_threadsafe`` once per batch), so a
  flooded RTP port or a stalled loop cannot grow memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from typing import Callable

import numpy as np

from ivr.call import AudioFrame, CallerHungUp, CallEvent, CallInfo, DtmfDigit, FlowResult
from ivr.prompts.sources import PromptNotFound, PromptSource
from ivr.transports.events import BURST_S, CallEvents
from ivr.transports.sip.pyvoip import FRAME_BYTES, FRAME_SECONDS, SILENCE, EndpointCall
from voiceprints.audio.g711 import alaw_decode_pcm16, alaw_encode_pcm16, ulaw_decode_pcm16, ulaw_encode_pcm16

log = logging.getLogger("ivr.transports.sip")

SAMPLE_RATE = 8000
# G.711 code -> int16 sample, one table per codec (G.191 exact, voiceprints.audio.g711).
_CODES = np.arange(256, dtype=np.uint8)
DECODE = {"PCMU": ulaw_decode_pcm16(_CODES).astype("<i2"), "PCMA": alaw_decode_pcm16(_CODES).astype("<i2")}
ENCODE = {"PCMU": ulaw_encode_pcm16, "PCMA": alaw_encode_pcm16}
# Media waiting between pyVoIP's receiver thread and the loop: real time plus a burst.
MAX_PENDING = int((BURST_S + 1.0) / FRAME_SECONDS)
# Audio a busy flow may leave unread before the oldest is dropped (as on the other transports).
MAX_BUFFERED_S = 30.0
PLAY_GRACE_S = 2.0

ResultKeeper = Callable[[str, FlowResult], None]


def decode(codec: str, payload: bytes) -> bytes:
    return DECODE[codec][np.frombuffer(payload, dtype=np.uint8)].tobytes()


class PromptFrames:
    """Prompts as 20 ms G.711 frames, encoded once per (language, name, codec)."""

    def __init__(self, source: PromptSource) -> None:
        self._source = source
        self._cache: dict[tuple[str, str, str], list[bytes] | None] = {}

    async def frames(self, name: str, language: str, codec: str) -> list[bytes] | None:
        key = (language, name, codec)
        if key not in self._cache:
            pcm = await self._source.audio(name, language)
            if pcm is None:
                self._cache[key] = None
            else:
                codes = ENCODE[codec](np.frombuffer(pcm, dtype="<i2")).tobytes()
                codes += bytes([SILENCE[codec]]) * (-len(codes) % FRAME_BYTES)
                self._cache[key] = [codes[i:i + FRAME_BYTES] for i in range(0, len(codes), FRAME_BYTES)]
        return self._cache[key]


class Bridge:
    """pyVoIP's threads -> the loop: bounded, batched, never blocking the RTP thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[tuple[str, object]]], None]) -> None:
        self._loop = loop
        self._deliver = deliver
        self._pending: deque[tuple[str, object]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self.dropped = 0

    def _put(self, kind: str, value: object) -> None:
        with self._lock:
            if kind == "audio" and len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending.append((kind, value))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the worker is gone
            pass

    def _drain(self) -> None:
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        self._deliver(batch)

    # MediaSink
    def audio(self, codec: str, payload: bytes) -> None:
        self._put("audio", (codec, payload))

    def dtmf(self, digit: str) -> None:
        self._put("dtmf", digit)

    def played(self, mark: int) -> None:
        self._put("played", mark)

    def ended(self) -> None:
        self._put("ended", None)


class SipCallSession:
    def __init__(self, call: EndpointCall, info: CallInfo, *, prompts: PromptFrames, keep_result: ResultKeeper,
                 max_call_s: float) -> None:
        self._call = call
        self._info = info
        self._prompts = prompts
        self._keep_result = keep_result
        self._max_call_s = max_call_s
        self._events = CallEvents(int(MAX_BUFFERED_S / FRAME_SECONDS))
        self._marks: dict[int, asyncio.Future[None]] = {}
        self._mark_ids = itertools.count(1)
        self._keyed = asyncio.Event()
        self._hung_up = False
        self._caller_gone = False
        self.audio_bytes = 0
        self.codecs_heard: set[str] = set()
        self.bridge = Bridge(asyncio.get_running_loop(), self._on_batch)
        call.link.sink = self.bridge

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def codec(self) -> str:
        """The codec of the prompts: the one the call negotiated."""
        return self._call.codec

    @property
    def media_port(self) -> int | None:
        clients = self._call.RTPClients
        return clients[0].inPort if clients else None

    @property
    def ended(self) -> bool:
        return self._events.ended

    async def next_event(self, timeout: float) -> CallEvent | None:
        return await self._events.next(timeout)

    async def play(self, prompt: str) -> None:
        self._raise_if_ended()
        frames = await self._prompts.frames(prompt, self._info.language, self.codec)
        if frames is None:
            raise PromptNotFound(f"no audio for prompt {prompt!r} in language {self._info.language!r}")
        mark = next(self._mark_ids)
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks[mark] = sent
        self._keyed.clear()
        self._call.link.send(frames, mark)
        waiters: set[asyncio.Future[object]] = {sent, asyncio.ensure_future(self._keyed.wait()),
                                                asyncio.ensure_future(self._events.wait_ended())}
        try:
            await asyncio.wait(waiters, timeout=len(frames) * FRAME_SECONDS + PLAY_GRACE_S,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                if waiter is not sent:
                    waiter.cancel()
            self._marks.pop(mark, None)
        self._raise_if_ended()
        if not sent.done():
            self._call.link.clear()  # barge-in: the key is the caller's answer

    async def finish(self, result: FlowResult | None) -> None:
        """Keep the result (result API, webhook), then hang up; CallerHungUp if the caller had gone."""
        try:
            if result is not None:
                self._keep_result(self._info.call_id, result)
                self._raise_if_ended()
        finally:
            await self.hang_up()

    async def hang_up(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        self._events.end()
        self._call.link.clear()
        if not self._caller_gone:
            try:
                await asyncio.to_thread(self._call.hangup)
            except Exception as exc:  # noqa: BLE001 - the call is over either way
                log.debug("SIP call %s: hangup: %r", self._info.call_id, exc)

    def caller_left(self) -> None:
        self._events.end()

    # -- internals ---------------------------------------------------------------

    def _raise_if_ended(self) -> None:
        if self._events.ended:
            raise CallerHungUp(f"call {self._info.call_id} has ended")

    def _on_batch(self, batch: list[tuple[str, object]]) -> None:
        for kind, value in batch:
            if kind == "audio":
                if self._events.ended:
                    continue
                codec, payload = value  # type: ignore[misc]
                self.audio_bytes += len(payload)
                if self.audio_bytes > self._max_call_s * SAMPLE_RATE:
                    log.warning("SIP call %s: more than %g s of audio; ending it", self._info.call_id,
                                self._max_call_s)
                    self._events.end()
                    continue
                self.codecs_heard.add(codec)
                self._events.put(AudioFrame(decode(codec, payload), SAMPLE_RATE))
            elif kind == "dtmf":
                self._events.put(DtmfDigit(str(value)))
                self._keyed.set()
            elif kind == "played":
                sent = self._marks.get(int(value))  # type: ignore[arg-type]
                if sent is not None and not sent.done():
                    sent.set_result(None)
            elif kind == "ended":
                self._caller_gone = True
                self._events.end()
