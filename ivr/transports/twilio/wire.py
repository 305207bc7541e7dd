"""The Media Streams WebSocket wire format, exactly as Twilio documents it, and nothing else.

Twilio to us (text frames, JSON): ``connected`` (``protocol``, ``version``),
``start`` (``sequenceNumber``, ``streamSid``, ``start``: ``accountSid``,
``streamSid``, ``callSid``, ``tracks``, ``customParameters``,
``mediaFormat``: ``encoding`` audio/x-mulaw, ``sampleRate`` 8000,
``channels`` 1), ``media`` (``media``: ``track``, ``chunk``, ``timestamp``,
``payload`` = base64 μ-law, 20 ms per message), ``dtmf`` (``dtmf``:
``track``, ``digit``), ``mark`` (``mark``: ``name``, echoed once the audio
sent before it has played, or was cleared), ``stop`` (``stop``:
``accountSid``, ``callSid``). Us to Twilio on a bidirectional stream
(``<Connect><Stream>``): ``media`` (``streamSid``, ``media``: ``payload``),
``mark`` (``streamSid``, ``mark``: ``name``), ``clear`` (``streamSid``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from voiceprints.audio.g711 import ulaw_decode_pcm16, ulaw_encode_pcm16

SAMPLE_RATE = 8000
# 20 ms of 8 kHz μ-law: what Twilio sends per media message, and what we send back.
FRAME_BYTES = 160
FRAME_SECONDS = 0.020
# The longest media payload accepted: 200 ms (ten of Twilio's frames). More
# in one message is not a phone call but garbage or an attack.
MAX_MEDIA_BYTES = 1600
# A media message is ~330 characters; start with a few custom parameters
# under 2 KB. Anything longer is refused before it is parsed.
MAX_MESSAGE_CHARS = 8192
DTMF_DIGITS = frozenset("0123456789*#ABCD")

# μ-law byte -> int16 sample (G.191, as voiceprints.audio.g711): one table
# lookup per frame instead of per-sample arithmetic on the event loop.
_DECODE = ulaw_decode_pcm16(np.arange(256, dtype=np.uint8)).astype("<i2")


class WireError(ValueError):
    """A message that is not what Twilio documents; the message says what is wrong."""


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    track: str
    payload: bytes  # μ-law


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Unknown:
    event: str


Message = Start | Media | Dtmf | Mark | Stop | Connected | Unknown


def parse(text: str | bytes) -> Message:
    """One message from Twilio; :class:`WireError` naming what is wrong with it."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise WireError(f"message of {len(text)} characters (at most {MAX_MESSAGE_CHARS})")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise WireError("not an object with an 'event'")
    event = data["event"]
    if event == "media":
        media = _object(data, "media")
        payload = _text(media, "payload")
        if len(payload) > (MAX_MEDIA_BYTES + 2) // 3 * 4:
            raise WireError(f"media payload of {len(payload)} base64 characters (at most {MAX_MEDIA_BYTES} bytes)")
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise WireError("media payload is not base64") from None
        return Media(str(media.get("track", "inbound")), audio)
    if event == "dtmf":
        digit = _text(_object(data, "dtmf"), "digit")
        if digit not in DTMF_DIGITS:
            raise WireError(f"dtmf digit {digit[:8]!r}")
        return Dtmf(digit)
    if event == "mark":
        return Mark(_text(_object(data, "mark"), "name"))
    if event == "start":
        start = _object(data, "start")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise WireError("start.customParameters is not an object of strings")
        media_format = start.get("mediaFormat") or {}
        if isinstance(media_format, dict) and media_format.get("encoding", "audio/x-mulaw") != "audio/x-mulaw":
            raise WireError(f"media encoding {media_format.get('encoding')!r} (expected audio/x-mulaw)")
        tracks = start.get("tracks") or ["inbound"]
        return Start(_text(start, "streamSid"), _text(start, "callSid"), _text(start, "accountSid"),
                     tuple(str(t) for t in tracks), dict(params))
    if event == "stop":
        return Stop()
    if event == "connected":
        return Connected(str(data.get("protocol", "")), str(data.get("version", "")))
    return Unknown(event[:40])


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise WireError(f"'{data['event']}' message without a '{key}' object")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"missing '{key}'")
    return value


def ulaw_to_pcm16(payload: bytes) -> bytes:
    return _DECODE[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    return ulaw_encode_pcm16(np.frombuffer(pcm, dtype="<i2")).tobytes()


def media(stream_sid: str, ulaw: bytes) -> str:
    return media_with_payload(stream_sid, base64.b64encode(ulaw).decode("ascii"))


def media_with_payload(stream_sid: str, payload_b64: str) -> str:
    """An outbound media message around an already base64-encoded payload (prompts are encoded once)."""
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload_b64}})


def mark(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
