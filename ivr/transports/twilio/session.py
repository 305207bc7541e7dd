"""One call over a bidirectional Twilio Media Stream, as an :class:`ivr.call.CallSession`.

* Caller audio: ``media`` messages (20 ms of 8 kHz μ-law each) become
  :class:`~ivr.call.AudioFrame` s of 16-bit PCM; ``dtmf`` becomes
  :class:`~ivr.call.DtmfDigit`; ``stop`` or a closed socket is the hang-up.
* Prompts: sent as outbound ``media`` in 20 ms frames followed by a ``mark``;
  Twilio plays them and echoes the mark when the last frame has been heard,
  which is when :meth:`play` returns. A key pressed during a prompt stops it
  (``clear``) and is kept for the flow: callers type ahead of prompts they know.
* The result: :meth:`finish` keeps it for the ``<Connect>`` action and
  closes the socket; Twilio then asks the action URL how to continue.
* As on every transport: audio is read no faster than real time plus a
  burst, a call's audio is bounded by ``max_call_s``, a silent socket ends
  the call after ``idle_timeout``, and an oversized or malformed message
  closes this stream (and only this one) with a WARNING.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Awaitable, Callable

from ivr.call import AudioFrame, CallerHungUp, CallEvent, CallInfo, DtmfDigit, FlowResult
from ivr.prompts.sources import PromptNotFound
from ivr.transports.events import BURST_S, CallEvents
from ivr.transports.twilio import wire
from ivr.transports.twilio.prompts import PromptFrames

log = logging.getLogger("ivr.transports.twilio")

# Twilio echoes a mark when the audio before it has played; allow this much
# beyond the prompt's own length for its buffering before moving on anyway.
MARK_GRACE_S = 3.0
# WebSocket close codes (RFC 6455 section 7.4.1).
NORMAL, POLICY, INVALID, TOO_BIG = 1000, 1008, 1007, 1009

ResultKeeper = Callable[[str, FlowResult, bool], None]
"""``keep(call_sid, result, awaiting_action)``: remember a call's result for the action URL and the result API."""


class StreamClosed(Exception):
    """Why this stream is being closed (the peer broke the rules); the message says how."""

    def __init__(self, reason: str, code: int = POLICY) -> None:
        super().__init__(reason)
        self.code = code


class MediaStreamSession:
    def __init__(
        self,
        websocket: Any,  # starlette.websockets.WebSocket
        info: CallInfo,
        stream_sid: str,
        *,
        prompts: PromptFrames,
        keep_result: ResultKeeper,
        idle_timeout: float,
        max_call_s: float,
        max_buffered_frames: int,
    ) -> None:
        self._ws = websocket
        self._info = info
        self._sid = stream_sid
        self._prompts = prompts
        self._keep_result = keep_result
        self._idle_timeout = idle_timeout
        self._max_call_s = max_call_s
        self._events = CallEvents(max_buffered_frames)
        self._marks: dict[str, asyncio.Future[None]] = {}
        self._mark_names = itertools.count(1)
        self._keyed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self.audio_bytes = 0  # μ-law bytes accepted from Twilio (8000 a second)
        self._reader = asyncio.create_task(self._read_loop(), name=f"twilio-read-{info.call_id}")

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def ended(self) -> bool:
        return self._events.ended

    async def next_event(self, timeout: float) -> CallEvent | None:
        return await self._events.next(timeout)

    async def play(self, prompt: str) -> None:
        self._raise_if_ended()
        frames = await self._prompts.frames(prompt, self._info.language)
        if frames is None:
            raise PromptNotFound(f"no audio for prompt {prompt!r} in language {self._info.language!r}")
        name = f"{prompt}.{next(self._mark_names)}"
        heard: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks[name] = heard
        self._keyed.clear()
        try:
            await self._send_all([wire.media_with_payload(self._sid, f) for f in frames]
                                 + [wire.mark(self._sid, name)])
            waiters: set[asyncio.Future[Any]] = {heard, asyncio.ensure_future(self._keyed.wait()),
                                                 asyncio.ensure_future(self._events.wait_ended())}
            try:
                await asyncio.wait(waiters, timeout=len(frames) * wire.FRAME_SECONDS + MARK_GRACE_S,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    if waiter is not heard:
                        waiter.cancel()
            self._raise_if_ended()
            if not heard.done() and self._keyed.is_set():
                await self._send_all([wire.clear(self._sid)])  # barge-in: the key is the caller's answer
        finally:
            self._marks.pop(name, None)

    async def finish(self, result: FlowResult | None) -> None:
        """Keep the result for the ``<Connect>`` action (and the result API), then close the stream."""
        try:
            if result is not None:
                self._keep_result(self._info.call_id, result, not self._events.ended)
                self._raise_if_ended()
        finally:
            await self.close(NORMAL, "flow finished")

    def hang_up_now(self) -> None:
        """The call ended (status callback): the flow sees the hang-up at its next step."""
        self._events.end()

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close the stream; the reader keeps draining Twilio's messages until the close handshake is done.

        Twilio keeps sending media until it sees our close frame: a reader
        that stopped reading would leave the WebSocket's receive queue full,
        and the close handshake waiting on it for its whole timeout.
        """
        if self._closed:
            return
        self._closed = True
        self._events.end()
        async with self._send_lock:
            try:
                await asyncio.wait_for(self._ws.close(code=code, reason=reason[:120]), 5.0)
            except Exception:  # noqa: BLE001 - already closed by the peer, or gone
                pass
        if self._reader is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - a reader that lingers is cut
                self._reader.cancel()

    # -- internals ---------------------------------------------------------------

    def _raise_if_ended(self) -> None:
        if self._events.ended:
            raise CallerHungUp(f"call {self._info.call_id} has ended")

    async def _send_all(self, messages: list[str]) -> None:
        try:
            async with self._send_lock:
                for message in messages:
                    self._raise_if_ended()
                    await self._ws.send_text(message)
        except CallerHungUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a closed socket is a caller gone
            self._events.end()
            raise CallerHungUp(f"call {self._info.call_id}: stream lost while sending ({exc!r})") from exc

    async def _pace(self, started: float) -> None:
        loop = asyncio.get_running_loop()
        ahead = self.audio_bytes / wire.SAMPLE_RATE - (loop.time() - started) - BURST_S
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def _read_loop(self) -> None:
        started = asyncio.get_running_loop().time()
        problem: StreamClosed | None = None
        try:
            while True:
                if not self._closed:
                    await self._pace(started)
                message = await self._receive()
                if message is None:
                    break
                if self._closed:
                    continue  # draining until Twilio acknowledges our close
                if isinstance(message, wire.Media):
                    if message.track not in ("inbound", "inbound_track"):
                        continue
                    self.audio_bytes += len(message.payload)
                    if self.audio_bytes > self._max_call_s * wire.SAMPLE_RATE:
                        raise StreamClosed(f"more than {self._max_call_s:g} s of audio in one call")
                    self._events.put(AudioFrame(wire.ulaw_to_pcm16(message.payload), wire.SAMPLE_RATE))
                elif isinstance(message, wire.Dtmf):
                    self._events.put(DtmfDigit(message.digit))
                    self._keyed.set()
                elif isinstance(message, wire.Mark):
                    heard = self._marks.get(message.name)
                    if heard is not None and not heard.done():
                        heard.set_result(None)
                elif isinstance(message, wire.Stop):
                    break
                elif isinstance(message, (wire.Start, wire.Connected)):
                    raise StreamClosed(f"a second '{type(message).__name__.lower()}' message in one stream")
                else:
                    log.debug("Twilio stream %s: ignoring event %r", self._sid, getattr(message, "event", "?"))
        except StreamClosed as exc:
            problem = exc
            log.warning("Twilio stream %s call %s: closing: %s", self._sid, self._info.call_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the socket went away under us
            log.debug("Twilio stream %s: reader ended", self._sid, exc_info=True)
        finally:
            if self._events.dropped_frames:
                log.warning("Twilio call %s: dropped %d audio frames the flow did not read in time",
                            self._info.call_id, self._events.dropped_frames)
            self._events.end()
        if problem is not None:
            self._closing = asyncio.ensure_future(self.close(problem.code, str(problem)))

    async def _receive(self) -> wire.Message | None:
        """The next message; None when Twilio closed the socket."""
        try:
            raw = await asyncio.wait_for(self._ws.receive(), self._idle_timeout)
        except asyncio.TimeoutError:
            raise StreamClosed(f"no message for {self._idle_timeout:g} s") from None
        return decode(raw)


def decode(raw: dict[str, Any]) -> wire.Message | None:
    """An ASGI WebSocket event as a Twilio message; None on disconnect; :class:`StreamClosed` when it is not one."""
    if raw.get("type") == "websocket.disconnect":
        return None
    text = raw.get("text")
    if text is None:
        raise StreamClosed("binary frame (Twilio sends JSON text)", INVALID)
    try:
        return wire.parse(text)
    except wire.WireError as exc:
        too_big = len(text) > wire.MAX_MESSAGE_CHARS or "payload of" in str(exc)
        raise StreamClosed(str(exc), TOO_BIG if too_big else INVALID) from None


Handler = Callable[[MediaStreamSession], Awaitable[None]]
