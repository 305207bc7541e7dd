"""AudioSocket transport: Asterisk's ``AudioSocket()`` app connects to us over TCP.

Why AudioSocket: it is the one Asterisk-native way to get the caller's audio
*exactly* (16-bit linear, no resampling) with keypad digits interleaved, over a
plain TCP socket the worker owns.  Its limits shape this module:

* Frames (type 1 byte, big-endian 16-bit length, payload) arrive only while
  the caller sends RTP: the stream is not a clock, so reads have no "frame
  every 20 ms" deadline, only an idle bound.
* It carries a UUID and nothing else about the call, and cannot return
  variables.  Call details and results go through AMI (see
  :class:`ivr.transports.asterisk.ami.AmiCallDirectory`), plugged in here as the
  ``call_info`` and ``on_result`` callables.
* On hang-up Asterisk may send a 0x00 frame or just close the socket; both are
  a :class:`~ivr.call.HangUp`.
* A caller produces audio in real time. A peer sending faster (a replayed
  file, an attack) is read no faster than real time plus a small burst: the
  rest waits in the kernel's socket buffer and TCP makes the sender wait, so
  a call's memory stays bounded whatever the peer does. A call's total audio
  is bounded too (``max_call_s``).

Anything that is not AudioSocket (wrong first frame, unknown type, a length no
real frame has, a peer that stalls mid-frame) closes that one connection with a
WARNING naming the peer and the reason; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Mapping

from ivr.call import AudioFrame, CallerHungUp, CallEvent, CallInfo, DtmfDigit, FlowResult
from ivr.prompts.sources import PromptNotFound, PromptSource
from ivr.transports.asterisk.variables import channel_variables
from ivr.transports.events import BURST_S, CallEvents
from ivr.transports.listener import LOOPBACK, TcpListener

log = logging.getLogger(__name__)

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_SLIN = 0x10
KIND_ERROR = 0xFF

SAMPLE_RATE = 8000
# 20 ms of 8 kHz 16-bit mono: what Asterisk sends and what it expects back.
FRAME_BYTES = 320
FRAME_SECONDS = 0.020
# Asterisk sends 20 ms frames; allow up to 200 ms for other packetisations.
# Anything bigger is not audio from Asterisk but garbage (or an attack).
MAX_AUDIO_PAYLOAD = 3200
DTMF_DIGITS = frozenset("0123456789*#ABCD")
BYTES_PER_SECOND = SAMPLE_RATE * 2


class AudioSocketProtocolError(Exception):
    """The peer broke the AudioSocket protocol; the message says how."""


ResultSink = Callable[[str, Mapping[str, str]], Awaitable[None]]
"""``on_result(call_id, variables)``: puts the result on the Asterisk channel (AMI Setvar)."""

CallInfoLookup = Callable[[str], Awaitable[CallInfo]]
"""``call_info(call_id) -> CallInfo``: what the dialplan knows about the call (via AMI)."""

Handler = Callable[["AudioSocketSession"], Awaitable[None]]


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes


async def read_frame(reader: asyncio.StreamReader, *, idle_timeout: float, frame_timeout: float) -> Frame | None:
    """One frame, or None when the peer closed cleanly between frames.

    ``idle_timeout`` bounds the wait for a frame to start (a silent caller
    sends nothing); ``frame_timeout`` bounds how long a started frame may take
    to complete (a stalling peer is not a caller).
    """
    try:
        first = await asyncio.wait_for(reader.read(1), idle_timeout)
    except asyncio.TimeoutError:
        raise AudioSocketProtocolError(f"no frame for {idle_timeout:g} s") from None
    if not first:
        return None
    kind = first[0]
    try:
        rest = await asyncio.wait_for(reader.readexactly(2), frame_timeout)
        length = int.from_bytes(rest, "big")
        _check_header(kind, length)
        payload = await asyncio.wait_for(reader.readexactly(length), frame_timeout) if length else b""
    except asyncio.TimeoutError:
        raise AudioSocketProtocolError(f"frame of type 0x{kind:02x} not completed within {frame_timeout} s") from None
    except asyncio.IncompleteReadError:
        raise AudioSocketProtocolError(f"connection closed inside a frame of type 0x{kind:02x}") from None
    return Frame(kind, payload)


def _check_header(kind: int, length: int) -> None:
    if kind == KIND_UUID and length != 16:
        raise AudioSocketProtocolError(f"UUID frame with {length} bytes (must be 16)")
    if kind == KIND_DTMF and length != 1:
        raise AudioSocketProtocolError(f"DTMF frame with {length} bytes (must be 1)")
    if kind == KIND_SLIN and (length > MAX_AUDIO_PAYLOAD or length % 2):
        raise AudioSocketProtocolError(f"audio frame of {length} bytes (expected an even size up to {MAX_AUDIO_PAYLOAD})")
    if kind == KIND_HANGUP and length:
        raise AudioSocketProtocolError(f"hangup frame with a {length}-byte payload")
    if kind == KIND_ERROR and length > 16:
        raise AudioSocketProtocolError(f"error frame with a {length}-byte payload")
    if kind not in (KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_SLIN, KIND_ERROR):
        raise AudioSocketProtocolError(f"unknown frame type 0x{kind:02x}")


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class AudioSocketSession:
    """One call over AudioSocket, as an :class:`ivr.call.CallSession`."""

    def __init__(
        self,
        info: CallInfo,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        prompts: PromptSource,
        on_result: ResultSink,
        peer: str,
        idle_timeout: float,
        frame_timeout: float,
        max_buffered_frames: int,
        max_call_s: float = 900.0,
    ) -> None:
        self._info = info
        self._reader = reader
        self._writer = writer
        self._prompts = prompts
        self._on_result = on_result
        self._peer = peer
        self._idle_timeout = idle_timeout
        self._frame_timeout = frame_timeout
        self._events = CallEvents(max_buffered_frames)
        self._closed = False
        self._write_lock = asyncio.Lock()
        self._max_call_s = max_call_s
        # Audio accepted from the peer so far, in bytes of 8 kHz slin16.
        self.audio_bytes = 0
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"audiosocket-read-{info.call_id}")

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def ended(self) -> bool:
        """True once the caller hung up or the call was closed."""
        return self._events.ended

    async def next_event(self, timeout: float) -> CallEvent | None:
        return await self._events.next(timeout)

    async def play(self, prompt: str) -> None:
        """Stream the prompt to the caller in 20 ms frames at real-time pace.

        Pacing matters: Asterisk plays what it receives at once, so sending
        faster than real time would queue seconds of audio that the caller
        hears after the flow has already moved on.  Each frame's send time is
        computed from the start (not from the previous sleep), so scheduling
        jitter does not accumulate.
        """
        self._raise_if_ended()
        pcm = await self._prompts.audio(prompt, self._info.language)
        if pcm is None:
            raise PromptNotFound(f"no audio for prompt {prompt!r} in language {self._info.language!r}")
        if len(pcm) % FRAME_BYTES:
            pcm += b"\x00" * (FRAME_BYTES - len(pcm) % FRAME_BYTES)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
            delay = start + index * FRAME_SECONDS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._raise_if_ended()
            await self._send(encode_frame(KIND_SLIN, pcm[offset : offset + FRAME_BYTES]))
        # Return when the last frame has been heard, not when it was queued.
        remaining = start + (len(pcm) // FRAME_BYTES) * FRAME_SECONDS - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def finish(self, result: FlowResult | None) -> None:
        """Put the result on the channel (``VOICEAUTH_*``, through ``on_result``), then hang up the socket."""
        try:
            if result is not None:
                self._raise_if_ended()
                await self._on_result(self._info.call_id, channel_variables(result))
        finally:
            await self.hang_up()

    async def hang_up(self) -> None:
        """End the AudioSocket session: Asterisk's AudioSocket() returns and the dialplan continues."""
        if self._closed:
            return
        self._closed = True
        if not self._events.ended:
            try:
                async with self._write_lock:
                    self._writer.write(encode_frame(KIND_HANGUP))
                    await asyncio.wait_for(self._writer.drain(), self._frame_timeout)
            except (ConnectionError, asyncio.TimeoutError, RuntimeError):
                pass
        self._end()
        self._reader_task.cancel()
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), self._frame_timeout)
        except (ConnectionError, asyncio.TimeoutError):
            pass

    # -- internals ---------------------------------------------------------

    def _raise_if_ended(self) -> None:
        if self._events.ended:
            raise CallerHungUp(f"call {self._info.call_id} has ended")

    async def _send(self, data: bytes) -> None:
        try:
            async with self._write_lock:
                self._writer.write(data)
                await asyncio.wait_for(self._writer.drain(), self._frame_timeout)
        except (ConnectionError, asyncio.TimeoutError) as exc:
            self._end()
            raise CallerHungUp(f"call {self._info.call_id}: connection lost while sending ({exc!r})") from exc

    def _end(self) -> None:
        self._events.end()

    def _put(self, event: CallEvent) -> None:
        self._events.put(event)

    async def _pace(self, started: float) -> None:
        """Wait until the audio read so far is no more than real time plus the burst allowance."""
        loop = asyncio.get_running_loop()
        ahead = self.audio_bytes / BYTES_PER_SECOND - (loop.time() - started) - BURST_S
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def _read_loop(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            while True:
                await self._pace(started)
                frame = await read_frame(self._reader, idle_timeout=self._idle_timeout, frame_timeout=self._frame_timeout)
                if frame is None or frame.kind == KIND_HANGUP:
                    break
                if frame.kind == KIND_SLIN:
                    self.audio_bytes += len(frame.payload)
                    if self.audio_bytes > self._max_call_s * BYTES_PER_SECOND:
                        raise AudioSocketProtocolError(f"more than {self._max_call_s:g} s of audio in one call")
                    self._put(AudioFrame(frame.payload, SAMPLE_RATE))
                elif frame.kind == KIND_DTMF:
                    digit = frame.payload.decode("ascii", "replace")
                    if digit in DTMF_DIGITS:
                        self._put(DtmfDigit(digit))
                    else:
                        log.warning("AudioSocket %s call %s: ignoring DTMF frame %r", self._peer, self._info.call_id, digit)
                elif frame.kind == KIND_ERROR:
                    log.warning(
                        "AudioSocket %s call %s: Asterisk reported error 0x%s", self._peer, self._info.call_id, frame.payload.hex()
                    )
                    break
                elif frame.kind == KIND_UUID:
                    raise AudioSocketProtocolError("second UUID frame in one session")
        except AudioSocketProtocolError as exc:
            log.warning("AudioSocket %s call %s: closing: %s", self._peer, self._info.call_id, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._events.dropped_frames:
                log.warning(
                    "AudioSocket call %s: dropped %d audio frames the flow did not read in time",
                    self._info.call_id,
                    self._events.dropped_frames,
                )
            self._end()


class AudioSocketServer(TcpListener):
    """Accepts AudioSocket connections and runs ``handler(session)`` for each call.

    ``max_calls`` bounds concurrent calls: a connection beyond it is closed at
    once (the dialplan sees AudioSocket() end without a result and routes the
    caller to its fallback) rather than degrading every call in progress.
    """

    protocol = "AudioSocket"

    def __init__(
        self,
        handler: Handler,
        *,
        prompts: PromptSource,
        on_result: ResultSink,
        call_info: CallInfoLookup | None = None,
        host: str = "127.0.0.1",
        port: int = 9092,
        max_calls: int = 50,
        handshake_timeout: float = 5.0,
        idle_timeout: float = 60.0,
        frame_timeout: float = 5.0,
        call_info_timeout: float = 5.0,
        max_buffered_seconds: float = 30.0,
        max_call_s: float = 900.0,
        allow_from: Iterable[str] = LOOPBACK,
        max_per_peer: int | None = None,
        default_language: str = "en",
    ) -> None:
        super().__init__(host, port, allow_from=allow_from, max_per_peer=max_per_peer)
        self._default_language = default_language
        self._max_call_s = max_call_s
        self._handler = handler
        self._prompts = prompts
        self._on_result = on_result
        self._call_info = call_info
        self._max_calls = max_calls
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._frame_timeout = frame_timeout
        self._call_info_timeout = call_info_timeout
        self._max_buffered_frames = max(1, int(max_buffered_seconds / FRAME_SECONDS))
        self.active_calls = 0
        self.rejected_connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        if self.active_calls >= self._max_calls:
            self.rejected_connections += 1
            log.warning("AudioSocket %s: rejected: already %d calls (max_calls)", peer, self.active_calls)
            writer.close()
            return
        self.active_calls += 1
        try:
            call_id = await self._handshake(reader, peer)
            if call_id is None:
                self.rejected_connections += 1
                return
            info = await self._lookup(call_id, peer)
            session = AudioSocketSession(
                info,
                reader,
                writer,
                prompts=self._prompts,
                on_result=self._on_result,
                peer=peer,
                idle_timeout=self._idle_timeout,
                frame_timeout=self._frame_timeout,
                max_buffered_frames=self._max_buffered_frames,
                max_call_s=self._max_call_s,
            )
            try:
                await self._handler(session)
            except CallerHungUp:
                log.info("AudioSocket call %s: caller hung up during the flow", call_id)
            except Exception:
                log.exception("AudioSocket call %s: the flow failed", call_id)
            finally:
                await session.hang_up()
        finally:
            self.active_calls -= 1
            if not writer.is_closing():
                writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, peer: str) -> str | None:
        """The first frame must be the call's UUID; anything else is not Asterisk."""
        try:
            frame = await read_frame(reader, idle_timeout=self._handshake_timeout, frame_timeout=self._handshake_timeout)
        except AudioSocketProtocolError as exc:
            log.warning("AudioSocket %s: rejected: %s", peer, exc)
            return None
        except ConnectionError as exc:
            log.warning("AudioSocket %s: rejected: %r", peer, exc)
            return None
        if frame is None:
            log.warning("AudioSocket %s: rejected: closed before sending a UUID", peer)
            return None
        if frame.kind != KIND_UUID:
            log.warning("AudioSocket %s: rejected: first frame has type 0x%02x, expected the UUID (0x01)", peer, frame.kind)
            return None
        return str(uuidlib.UUID(bytes=frame.payload))

    async def _lookup(self, call_id: str, peer: str) -> CallInfo:
        if self._call_info is None:
            return CallInfo(call_id=call_id, language=self._default_language)
        try:
            return await asyncio.wait_for(self._call_info(call_id), self._call_info_timeout)
        except Exception as exc:
            # The flow can still run (default language, claim by DTMF); the
            # operator needs to know why the call looks anonymous.
            log.warning("AudioSocket %s call %s: no call details (%s); using defaults", peer, call_id, exc or type(exc).__name__)
            return CallInfo(call_id=call_id, language=self._default_language)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
