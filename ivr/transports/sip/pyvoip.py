"""Everything this project needs from pyVoIP 1.6.8, and every workaround for its limits, in one module.

pyVoIP gives a registering SIP user agent that answers INVITEs; its media
layer is not fit for biometrics, so the RTP client is replaced here:

* **Lossy input.** pyVoIP turns each G.711 payload into 8-bit linear audio
  (``audioop.ulaw2lin(.., 1)``): 8 bits of a 14-bit signal, before the
  engine sees it. :class:`RawRtp` hands the payload's G.711 codes on
  untouched, tagged with their codec; the session decodes them with the
  project's own G.191-exact codec (:mod:`voiceprints.audio.g711`).
* **A-law.** pyVoIP's PCMA path encodes with μ-law (``encode_packet``), and
  its out-buffer pads with ``0x80`` (8-bit linear silence; as μ-law the
  loudest negative sample). Here the session writes ready G.711 frames in
  the negotiated codec and silence is that codec's own silence code.
* **DTMF.** pyVoIP reads RFC 4733 events by the marker bit only and indexes a
  16-entry table with an unchecked byte: an event code above 15 raises in
  its receiver thread and kills it. Events are read here by their RTP
  timestamp (one event per timestamp, however many end packets repeat it).
* **Garbage.** pyVoIP's RTP receiver takes datagrams from anyone, dies on any
  unexpected exception and polls a non-blocking socket every 10 ms; this one
  takes media only from the address in the PBX's SDP, survives any datagram
  (counted) and blocks with a timeout.
* **Pacing.** pyVoIP sleeps a fixed 20 ms minus the build time per packet and
  drifts; the sender here keeps an absolute 20 ms clock.
* **BYE.** pyVoIP's BYE for an incoming call copies the INVITE's Via headers
  (the PBX's) instead of its own; :class:`EndpointSip` sends one with its own Via.
* **Calls end silently.** pyVoIP forgets a call whose callback thread has
  returned; the transport keeps that thread waiting until the call is over,
  and :class:`EndpointCall` reports the caller's BYE to the session.

Limits left as they are (docs/sip.md): pyVoIP sends every SIP message to its
registrar (it cannot be dialled directly, only through the PBX it registers
to), speaks UDP only, answers OPTIONS with nothing, and gives up registering
after three failures (the transport then starts a new user agent).
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections import deque
from typing import Any, Callable, Protocol

with warnings.catch_warnings():
    # pyVoIP imports audioop (deprecated in 3.11, gone in 3.13: pip install audioop-lts there);
    # nothing here calls it on the media path.
    warnings.simplefilter("ignore", DeprecationWarning)
    # pyVoIP.VoIP first: importing pyVoIP.SIP first fails on pyVoIP's circular imports.
    from pyVoIP.VoIP.VoIP import CallState, InvalidStateError, VoIPCall, VoIPPhone  # isort: skip
    from pyVoIP.VoIP.status import PhoneStatus  # isort: skip
    from pyVoIP import RTP, SIP  # isort: skip


__all__ = ["CallLink", "CallState", "EndpointCall", "EndpointPhone", "InvalidStateError", "MediaSink",
           "PhoneStatus", "SILENCE", "FRAME_BYTES", "FRAME_SECONDS"]

FRAME_BYTES = 160  # 20 ms of 8 kHz G.711, what every PBX sends by default (a=ptime:20)
FRAME_SECONDS = 0.020
# The G.711 code of a zero sample: μ-law 0xFF, A-law 0xD5 (G.711 tables).
SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}
_CODECS = {0: "PCMU", 8: "PCMA"}
_EVENTS = "0123456789*#ABCD"
# Outgoing audio queued per call at most: far more than the longest prompt (~15 s).
MAX_OUTBOX_FRAMES = 60 * 50
# A sender that fell this far behind its clock (a stalled machine) restarts it
# rather than bursting the backlog out.
MAX_LAG_S = 0.2
RECV_POLL_S = 0.2


class MediaSink(Protocol):
    """The asyncio side of a call, as pyVoIP's threads see it (every method thread-safe, never blocking)."""

    def audio(self, codec: str, payload: bytes) -> None: ...

    def dtmf(self, digit: str) -> None: ...

    def played(self, mark: int) -> None: ...

    def ended(self) -> None: ...


class CallLink:
    """What one call's RTP threads share with its session: the sink and the outgoing frames."""

    def __init__(self) -> None:
        self.sink: MediaSink | None = None
        self._out: deque[tuple[bytes, int | None]] = deque()
        self._lock = threading.Lock()
        self.codec = "PCMU"
        self.garbage = 0  # datagrams on the RTP port that were not this call's media

    def send(self, frames: list[bytes], mark: int) -> None:
        """Queue ``frames`` (G.711 in :attr:`codec`); the sink hears ``played(mark)`` after the last one went."""
        with self._lock:
            room = MAX_OUTBOX_FRAMES - len(self._out)
            frames = frames[:max(0, room)]
            for frame in frames[:-1]:
                self._out.append((frame, None))
            self._out.append((frames[-1] if frames else b"", mark))

    def clear(self) -> list[int]:
        """Drop queued audio (barge-in); returns the marks dropped with it."""
        with self._lock:
            marks = [m for _, m in self._out if m is not None]
            self._out.clear()
        return marks

    def next_frame(self) -> tuple[bytes, int | None]:
        with self._lock:
            if self._out:
                return self._out.popleft()
        return b"", None


class RawRtp(RTP.RTPClient):
    """pyVoIP's RTP client with the media path replaced (see the module's docstring)."""

    def __init__(self, link: CallLink, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link = link
        self.event_ts: int | None = None
        link.codec = str(self.preference) if str(self.preference) in SILENCE else "PCMU"

    def start(self) -> None:
        self.sin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sout = self.sin
        self.sin.bind((self.inIP, self.inPort))
        self.sin.settimeout(RECV_POLL_S)
        for target, name in ((self.recv, "RTP receiver"), (self.trans, "RTP sender")):
            threading.Thread(target=target, name=f"{name} {self.inPort}", daemon=True).start()

    def stop(self) -> None:
        """Stop both threads; also for a call refused before its media started (pyVoIP's stop raises then)."""
        self.NSD = False
        sock = getattr(self, "sin", None)
        if sock is not None:
            sock.close()

    def recv(self) -> None:
        while self.NSD:
            try:
                packet, source = self.sin.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                if not self.NSD:
                    return
                time.sleep(RECV_POLL_S)  # bounded: NSD goes False when the call ends
                continue
            if source[0] != self.outIP:  # media only from where the SDP said it comes from
                self.link.garbage += 1
                continue
            try:
                self.parse_packet(packet)
            except Exception:  # noqa: BLE001 - a datagram must never end the receiver
                self.link.garbage += 1

    def parse_packet(self, packet: bytes) -> None:
        if len(packet) < 12 or packet[0] >> 6 != 2:
            self.link.garbage += 1
            return
        count, marker_pt = packet[0] & 0x0F, packet[1]
        start = 12 + 4 * count
        if packet[0] & 0x10:  # header extension: 4 bytes + its length in words
            if len(packet) < start + 4:
                self.link.garbage += 1
                return
            start += 4 + 4 * int.from_bytes(packet[start + 2:start + 4], "big")
        end = len(packet)
        if packet[0] & 0x20:  # padding: its length is the last byte
            end -= packet[-1]
        payload = packet[start:end]
        pt = marker_pt & 0x7F
        sink = self.link.sink
        if pt in _CODECS and pt in self.assoc:
            if payload and sink is not None:
                sink.audio(_CODECS[pt], payload)
        elif self.assoc.get(pt) == RTP.PayloadType.EVENT and len(payload) >= 4:
            timestamp = int.from_bytes(packet[4:8], "big")
            if payload[0] >= len(_EVENTS):
                self.link.garbage += 1
            elif timestamp != self.event_ts:
                self.event_ts = timestamp
                if sink is not None:
                    sink.dtmf(_EVENTS[payload[0]])
        else:
            self.link.garbage += 1

    def trans(self) -> None:
        silence = bytes([SILENCE[self.link.codec]]) * FRAME_BYTES
        payload_type = next((pt for pt, name in _CODECS.items() if name == self.link.codec), 0)
        due = time.monotonic()
        while self.NSD:
            frame, mark = self.link.next_frame()
            if len(frame) < FRAME_BYTES:
                frame = frame + silence[len(frame):]
            header = bytes([0x80, payload_type]) + (self.outSequence & 0xFFFF).to_bytes(2, "big") \
                + (self.outTimestamp & 0xFFFFFFFF).to_bytes(4, "big") + self.outSSRC.to_bytes(4, "big")
            try:
                self.sout.sendto(header + frame, (self.outIP, self.outPort))
            except OSError:
                if not self.NSD:
                    return
            self.outSequence += 1
            self.outTimestamp += FRAME_BYTES
            if mark is not None and self.link.sink is not None:
                self.link.sink.played(mark)
            due += FRAME_SECONDS
            lag = time.monotonic() - due
            if lag > MAX_LAG_S:
                due = time.monotonic()
            elif lag < 0:
                time.sleep(-lag)


class EndpointCall(VoIPCall):
    """A pyVoIP call whose RTP is :class:`RawRtp` and whose end the session hears of."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.link = CallLink()
        super().__init__(*args, **kwargs)

    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int,
                           request: SIP.SIPMessage, baseport: int) -> None:
        # One stream per call (c= lines beyond the first are multicast layouts no PBX sends us).
        if self.RTPClients or not codecs:
            return
        self.RTPClients.append(RawRtp(self.link, codecs, ip, port, request.body["c"][0]["address"], baseport,
                                      self.sendmode, dtmf=None))

    def bye(self) -> None:
        super().bye()
        if self.link.sink is not None:
            self.link.sink.ended()

    def hangup(self) -> None:
        try:
            super().hangup()
        finally:
            if self.link.sink is not None:
                self.link.sink.ended()

    @property
    def codec(self) -> str:
        return self.link.codec

    @property
    def heading(self) -> str:
        """The INVITE's request line, e.g. ``INVITE sip:verify4711@10.0.0.5:5062 SIP/2.0``."""
        return bytes(self.request.heading).decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        value = self.request.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def caller(self) -> str | None:
        return (self.request.headers.get("From") or {}).get("number")


class EndpointSip(SIP.SIPClient):
    # When the last REGISTER was accepted (time.monotonic()); None before the first.
    registered_at: float | None = None

    def register(self) -> bool:
        accepted = super().register()
        if accepted:
            self.registered_at = time.monotonic()
        return bool(accepted)

    def gen_bye(self, request: SIP.SIPMessage) -> str:
        """pyVoIP's BYE with this agent's own Via (pyVoIP copies the INVITE's, which names the PBX)."""
        message = super().gen_bye(request)
        head, _, rest = message.partition("\r\n")
        lines = [line for line in rest.split("\r\n") if not line.startswith("Via:")]
        via = f"Via: SIP/2.0/UDP {self.myIP}:{self.myPort};branch={self.gen_branch()};rport"
        return "\r\n".join([head, via, *lines])


class EndpointPhone(VoIPPhone):
    """pyVoIP's phone with :class:`EndpointSip` and :class:`EndpointCall`, answering at once (pyVoIP waits 1 s)."""

    def __init__(self, *args: Any, register_expires_s: int, register_timeout_s: float,
                 on_call: Callable[[EndpointCall], None], **kwargs: Any) -> None:
        super().__init__(*args, callCallback=on_call, **kwargs)  # type: ignore[arg-type]
        old = self.sip
        self.sip = EndpointSip(old.server, old.port, old.username, old.password, phone=self, myIP=old.myIP,
                               myPort=old.myPort, callCallback=self.callback, fatalCallback=self.fatal)
        self.sip.default_expires = register_expires_s
        self.sip.register_timeout = register_timeout_s

    def _create_Call(self, request: SIP.SIPMessage, sess_id: int) -> None:
        call_id = request.headers["Call-ID"]
        self.calls[call_id] = EndpointCall(self, CallState.RINGING, request, sess_id, self.myIP,
                                           sendmode=self.recvmode)

    def _callback_MSG_Invite(self, request: SIP.SIPMessage) -> None:
        call_id = request.headers["Call-ID"]
        if call_id in self.calls or self.callCallback is None:
            return super()._callback_MSG_Invite(request)  # re-INVITE: pyVoIP answers it
        self.sip.out.sendto(self.sip.gen_ringing(request).encode("utf8"), (self.server, self.port))
        self._create_Call(request, len(self.session_ids) + 1)
        self.session_ids.append(len(self.session_ids) + 1)
        thread = threading.Thread(target=self.callCallback, args=(self.calls[call_id],),
                                  name=f"SIP call {call_id[:40]}", daemon=True)
        self.threads.append(thread)  # type: ignore[arg-type]
        self.threadLookup[thread] = call_id  # type: ignore[index]
        thread.start()

    @property
    def registered(self) -> bool:
        return self.get_status() == PhoneStatus.REGISTERED

    @property
    def registered_at(self) -> float | None:
        """When the PBX last accepted a REGISTER (``time.monotonic()``)."""
        return self.sip.registered_at  # type: ignore[attr-defined]

    @property
    def status_name(self) -> str:
        return self.get_status().name
