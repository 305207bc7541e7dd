"""Twilio Programmable Voice played by a test or the load bench: signed webhooks, a Media Stream in real time, the callbacks.

It speaks the documented wire format exactly: the voice webhook as a signed
form POST (``X-Twilio-Signature`` computed by the ``twilio`` library's
``RequestValidator`` over the public URL and the form fields), the TwiML it
gets back parsed for ``<Connect action>``, ``<Stream url>`` and its
``<Parameter>``s, then a WebSocket client that sends ``connected``,
``start``, one ``media`` message of 20 ms μ-law every 20 ms of wall clock
(silence between the caller's answers), ``dtmf`` for keys and ``stop`` when
the caller hangs up. Prompts the worker sends are "played" in real time:
each ``mark`` is echoed when the audio before it has played, and ``clear``
drops what is still buffered and echoes its marks at once, as Twilio does.
When the worker closes the stream, the simulator requests the action URL
(signed) and reads the ``<Redirect>`` it gets, as Twilio would follow it.

The caller reacts to prompts with the same script as the flow tests' scripted
caller (:mod:`scripts.lab.reactions`): the name of a prompt is the name of
its mark up to the last dot (how the worker names its marks), so a reaction
starts when that prompt has been heard. Used by tests/test_transport_twilio.py,
tests/security/test_twilio_stream.py and ``scripts/bench_load.py --twilio``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import numpy as np
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect

from scripts.lab.reactions import Hangs, Keys, KeysFrom, Reaction, Say, SayFrom
from voiceprints.audio.g711 import float_to_pcm16, ulaw_decode_pcm16, ulaw_encode_pcm16
from voiceprints.audio.resample import resample

FRAME = 160  # 20 ms of 8 kHz μ-law
SILENCE = b"\xff" * FRAME
KEY_GAP_S = 0.12  # between two keys a person presses


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class CallOutcome:
    call_sid: str
    played: list[str] = field(default_factory=list)
    result: dict[str, str] | None = None  # the VOICEAUTH_* values of the <Redirect>, if the call got there
    redirect_url: str | None = None
    close_code: int | None = None
    hung_up: bool = False
    prompt_seconds: float = 0.0


@dataclass(frozen=True)
class Announced:
    """What the voice webhook answered: where to stream and what to send."""

    call_sid: str
    stream_url: str
    action_url: str
    parameters: dict[str, str]


class TwilioSimulator:
    def __init__(self, base_url: str, auth_token: str, *, account_sid: str | None = None,
                 max_connections: int = 100, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid or sid("AC")
        self._validator = RequestValidator(auth_token)
        self.http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=max_connections))

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- HTTP, signed as Twilio signs ------------------------------------------------

    async def post(self, url: str, params: Mapping[str, str], *, signature: str | None = None) -> httpx.Response:
        full = url if url.startswith("http") else self.base_url + url
        signed = self._validator.compute_signature(full, dict(params)) if signature is None else signature
        return await self.http.post(full, data=dict(params), headers={"X-Twilio-Signature": signed})

    def call_params(self, call_sid: str, caller: str, called: str, status: str = "in-progress") -> dict[str, str]:
        return {"CallSid": call_sid, "AccountSid": self.account_sid, "From": caller, "To": called,
                "Caller": caller, "Called": called, "CallStatus": status, "Direction": "inbound",
                "ApiVersion": "2010-04-01"}

    async def announce(self, query: str = "flow=verify", *, caller: str = "+15551230001",
                       called: str = "+15557654321", call_sid: str | None = None) -> Announced:
        call_sid = call_sid or sid("CA")
        response = await self.post(f"/twilio/voice?{query}", self.call_params(call_sid, caller, called, "ringing"))
        response.raise_for_status()
        root = ET.fromstring(response.text)
        connect_el = root.find("Connect")
        stream = connect_el.find("Stream") if connect_el is not None else None
        assert connect_el is not None and stream is not None, response.text
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        return Announced(call_sid, stream.get("url", ""), connect_el.get("action", ""), parameters)

    # -- a whole call -------------------------------------------------------------------

    async def call(self, script: Mapping[str, list[Reaction]], query: str = "flow=verify", *,
                   caller: str = "+15551230001", called: str = "+15557654321",
                   max_s: float = 120.0) -> CallOutcome:
        announced = await self.announce(query, caller=caller, called=called)
        outcome = CallOutcome(announced.call_sid)
        async with self.stream(announced) as stream:
            await stream.run(script, outcome, max_s)
        if outcome.hung_up:
            await self.post("/twilio/status", self.call_params(announced.call_sid, caller, called, "completed"))
            return outcome
        response = await self.post(announced.action_url, self.call_params(announced.call_sid, caller, called))
        response.raise_for_status()
        redirect = ET.fromstring(response.text).find("Redirect")
        assert redirect is not None and redirect.text, response.text
        outcome.redirect_url = redirect.text
        outcome.result = {k: v for k, v in parse_qsl(urlsplit(redirect.text).query, keep_blank_values=True)
                          if k.startswith("VOICEAUTH_")}
        return outcome

    def stream(self, announced: Announced, *, send_start: bool = True,
               parameters: Mapping[str, str] | None = None) -> "MediaStream":
        return MediaStream(self, announced, send_start=send_start,
                           parameters=announced.parameters if parameters is None else parameters)


class MediaStream:
    """One Media Streams WebSocket as Twilio's side of it."""

    def __init__(self, sim: TwilioSimulator, announced: Announced, *, send_start: bool,
                 parameters: Mapping[str, str]) -> None:
        self.sim = sim
        self.announced = announced
        self.stream_sid = sid("MZ")
        self._send_start = send_start
        self._parameters = dict(parameters)
        self._sequence = 0
        self._chunk = 0
        self.ws: Any = None
        self._audio: deque[bytes] = deque()
        self._keys: deque[str] = deque()
        self._hang_up = asyncio.Event()
        self._marks: list[tuple[float, str]] = []  # (when it has played, name)
        self._play_until = 0.0
        self._script: Mapping[str, list[Reaction]] = {}
        self._outcome: CallOutcome | None = None

    async def __aenter__(self) -> "MediaStream":
        self.ws = await connect(self.announced.stream_url, compression=None, proxy=None, open_timeout=5,
                                max_size=2**20)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, sequenced=False)
        if self._send_start:
            await self.send({"event": "start", "start": {
                "accountSid": self.sim.account_sid, "streamSid": self.stream_sid,
                "callSid": self.announced.call_sid, "tracks": ["inbound"],
                "customParameters": self._parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, message: dict[str, Any], *, sequenced: bool = True) -> None:
        if sequenced:
            self._sequence += 1
            message = {**message, "sequenceNumber": str(self._sequence), "streamSid": self.stream_sid}
        await self.ws.send(json.dumps(message))

    async def media(self, ulaw: bytes) -> None:
        self._chunk += 1
        await self.send({"event": "media", "media": {
            "track": "inbound", "chunk": str(self._chunk), "timestamp": str(self._chunk * 20),
            "payload": base64.b64encode(ulaw).decode("ascii")}})

    async def closed(self, timeout: float) -> int | None:
        """Wait until the worker closes the stream; its close code (None if still open)."""
        from websockets.exceptions import ConnectionClosed

        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed:
            return self.ws.close_code
        except TimeoutError:
            return None

    # -- the caller ---------------------------------------------------------------------

    async def run(self, script: Mapping[str, list[Reaction]], outcome: CallOutcome, max_s: float) -> None:
        """Talk and listen in real time until the worker closes the stream (or the caller hangs up)."""
        self._script = {name: list(reactions) for name, reactions in script.items()}
        self._outcome = outcome
        sender = asyncio.create_task(self._send_loop())
        try:
            outcome.close_code = await asyncio.wait_for(self._receive_loop(), max_s)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send_loop(self) -> None:
        """One media message every 20 ms of wall clock; keys in between; stop when the caller hangs up."""
        loop = asyncio.get_running_loop()
        start, n, next_key = loop.time(), 0, 0.0
        while not self._hang_up.is_set():
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
            self._echo_marks(loop.time())
            await self.media(self._audio.popleft() if self._audio else SILENCE)
            if self._keys and loop.time() >= next_key:
                await self.send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": self._keys.popleft()}})
                next_key = loop.time() + KEY_GAP_S
        await self.send({"event": "stop", "stop": {"accountSid": self.sim.account_sid,
                                                   "callSid": self.announced.call_sid}})
        await self.ws.close()

    async def _receive_loop(self) -> int | None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                now = loop.time()
                if message["event"] == "media":
                    assert message["streamSid"] == self.stream_sid
                    audio = base64.b64decode(message["media"]["payload"])
                    self._play_until = max(self._play_until, now) + len(audio) / 8000
                    assert self._outcome is not None
                    self._outcome.prompt_seconds += len(audio) / 8000
                elif message["event"] == "mark":
                    self._marks.append((max(self._play_until, now), message["mark"]["name"]))
                elif message["event"] == "clear":
                    self._play_until = now
                    self._marks = [(now, name) for _, name in self._marks]
                    self._echo_marks(now)
        except ConnectionClosed:
            pass
        return self.ws.close_code

    def _echo_marks(self, now: float) -> None:
        due = [name for when, name in self._marks if when <= now]
        if not due:
            return
        self._marks = [(when, name) for when, name in self._marks if when > now]
        for name in due:
            asyncio.ensure_future(self._heard(name))

    async def _heard(self, mark: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.send({"event": "mark", "mark": {"name": mark}})
        except ConnectionClosed:
            return
        prompt = mark.rsplit(".", 1)[0]
        assert self._outcome is not None
        self._outcome.played.append(prompt)
        reactions = self._script.get(prompt) or []
        if reactions:
            self._react(reactions.pop(0))

    def _react(self, reaction: Reaction) -> None:
        if isinstance(reaction, KeysFrom):
            reaction = Keys(reaction.source())
        if isinstance(reaction, SayFrom):
            reaction = Say(reaction.source())
        if isinstance(reaction, Keys):
            self._keys.extend(reaction.digits)
        elif isinstance(reaction, Say):
            self._audio.extend(ulaw_frames(reaction.clip.samples if reaction.clip.sample_rate == 8000
                                           else resample(reaction.clip, 8000).samples))
            self._audio.extend([SILENCE] * int(reaction.trailing_silence_s / 0.02))
        elif isinstance(reaction, Hangs):
            assert self._outcome is not None
            self._outcome.hung_up = True
            self._hang_up.set()


def ulaw_frames(samples: np.ndarray) -> list[bytes]:
    ulaw = ulaw_encode_pcm16(float_to_pcm16(samples)).tobytes()
    ulaw += b"\xff" * (-len(ulaw) % FRAME)
    return [ulaw[i:i + FRAME] for i in range(0, len(ulaw), FRAME)]


def decode_ulaw(data: bytes) -> np.ndarray:
    return ulaw_decode_pcm16(np.frombuffer(data, dtype=np.uint8))


def signed_query(url: str, **params: str) -> str:
    return f"{url}?{urlencode(params)}"
