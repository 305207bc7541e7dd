"""The SIP endpoint's parts without a PBX: routing, settings, the result API's encodings, webhook
signatures, and the replaced pyVoIP media path over real loopback UDP sockets.

The whole endpoint through a real Asterisk is tests/lab/test_e2e_sip.py.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from pydantic import ValidationError

from ivr.call import FlowResult, Result
from ivr.transports.results import CallResults, ResultNotReadable
from ivr.transports.sip import routing
from ivr.transports.sip.config import SipSettings
from ivr.transports.sip.pyvoip import CallLink, RawRtp
from ivr.transports.sip.session import decode
from ivr.transports.sip.transport import form_encoded
from ivr.transports.sip.webhook import signature, verify
from pyVoIP.RTP import PayloadType
from voiceprints.audio.g711 import alaw_encode_pcm16, ulaw_encode_pcm16

ROUTES = {"81": "verify", "8": "enroll", "verify": "verify"}


def test_dialled_number_picks_the_flow_by_longest_prefix_and_the_rest_is_the_account():
    assert routing.route("INVITE sip:814711@10.0.0.7:5062 SIP/2.0", ROUTES, None) == \
        routing.Route("verify", "814711", "4711")
    assert routing.route("INVITE sip:8223@10.0.0.7 SIP/2.0", ROUTES, None).flow == "enroll"
    assert routing.route("INVITE sip:81@10.0.0.7 SIP/2.0", ROUTES, None).account is None  # asked on the keypad
    assert routing.route("INVITE sip:verify@h SIP/2.0", ROUTES, "555").account == "555"  # header


def test_unknown_numbers_and_non_numeric_accounts_are_refused_with_a_reason():
    unknown = routing.route("INVITE sip:99@h SIP/2.0", ROUTES, None)
    assert unknown.flow is None and "99" in unknown.problem
    assert routing.route("INVITE sip:81abc@h SIP/2.0", ROUTES, None).flow is None
    assert routing.route("garbage", ROUTES, None).flow is None


def test_settings_are_off_and_on_loopback_by_default_and_refuse_half_configurations():
    default = SipSettings()
    assert not default.enabled and default.bind == "127.0.0.1" and default.registrar == "127.0.0.1"
    with pytest.raises(ValidationError, match="USERNAME"):
        SipSettings(enabled=True)
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        SipSettings(webhook_url="http://127.0.0.1:8080/hook")
    with pytest.raises(ValidationError, match="ROUTES"):
        SipSettings(routes={"81": "Verify!"})
    with pytest.raises(ValidationError, match="RTP_PORT"):
        SipSettings(rtp_port_low=30000, rtp_port_high=20000)


def test_webhook_signature_verifies_only_with_the_secret_the_body_and_a_fresh_time():
    body = b'{"VOICEAUTH_RESULT": "PASS"}'
    header = signature(b"s3cret", int(time.time()), body)
    assert verify(b"s3cret", header, body)
    assert not verify(b"other", header, body)
    assert not verify(b"s3cret", header, body + b" ")
    old = signature(b"s3cret", int(time.time()) - 3600, body)
    assert not verify(b"s3cret", old, body)
    assert not verify(b"s3cret", "garbage", body)


def test_result_api_values_for_asterisk_put_the_free_text_reason_last_with_spaces_as_percent_20():
    text = form_encoded({"call_id": "c1", "VOICEAUTH_REASON": "voice pass (score 0.91, ok)",
                         "VOICEAUTH_RESULT": "PASS"})
    assert text.startswith("call_id=c1&VOICEAUTH_RESULT=PASS&VOICEAUTH_REASON=voice%20pass")
    assert "+" not in text


def test_results_need_the_bearer_token_when_one_is_set_and_expire():
    now = [0.0]
    results = CallResults(10, clock=lambda: now[0])
    results.put("c1", FlowResult(Result.PASS, account="4711"))
    assert results.readable("c1", token="", authorization="").result is Result.PASS
    with pytest.raises(ResultNotReadable) as refused:
        results.readable("c1", token="t", authorization="Bearer x")
    assert refused.value.status == 401
    assert results.readable("c1", token="t", authorization="Bearer t").account == "4711"
    now[0] = 11
    with pytest.raises(ResultNotReadable) as gone:
        results.readable("c1", token="", authorization="")
    assert gone.value.status == 404


class Recorder:
    """A MediaSink that remembers what pyVoIP's threads handed over."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, bytes]] = []
        self.digits: list[str] = []
        self.marks: list[int] = []
        self.done = threading.Event()

    def audio(self, codec: str, payload: bytes) -> None:
        self.heard.append((codec, payload))

    def dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    def played(self, mark: int) -> None:
        self.marks.append(mark)
        self.done.set()

    def ended(self) -> None:
        pass


def rtp(payload_type: int, seq: int, timestamp: int, payload: bytes, marker: bool = False) -> bytes:
    return bytes([0x80, payload_type | (0x80 if marker else 0)]) + seq.to_bytes(2, "big") \
        + timestamp.to_bytes(4, "big") + (1234).to_bytes(4, "big") + payload


@pytest.mark.parametrize("codec, payload_type, encode", [("PCMU", 0, ulaw_encode_pcm16), ("PCMA", 8, alaw_encode_pcm16)])
def test_media_path_keeps_the_g711_codes_sends_the_negotiated_codec_and_survives_garbage(
    codec: str, payload_type: int, encode
):
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link = CallLink()
    recorder = Recorder()

    link.sink = recorder
    # The PBX's offer: this codec first, then the other and telephone-events on 101.
    other = 8 if payload_type == 0 else 0
    assoc = {payload_type: PayloadType(payload_type), other: PayloadType(other), 101: PayloadType.EVENT}
    client = RawRtp(link, assoc, "127.0.0.1", port, "127.0.0.1", peer.getsockname()[1], "sendrecv")
    client.start()
    try:
        tone = (np.sin(np.arange(160) / 3) * 8000).astype("<i2")
        codes = encode(tone).tobytes()
        for packet in (b"", b"\xff" * 40, b"\x80", rtp(101, 1, 500, bytes([255, 0x80, 0, 160])),  # event 255
                       rtp(payload_type, 2, 160, codes),
                       rtp(101, 3, 800, bytes([5, 0, 0, 160]), marker=True),
                       rtp(101, 4, 800, bytes([5, 0x80, 1, 64])), rtp(101, 5, 800, bytes([5, 0x80, 1, 64])),
                       rtp(120, 6, 960, b"\x00" * 160)):
            peer.sendto(packet, ("127.0.0.1", port))
        deadline = time.monotonic() + 3
        while (not recorder.heard or not recorder.digits) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        assert recorder.heard == [(codec, codes)]  # the codes themselves, not pyVoIP's 8-bit audio
        assert np.abs(np.frombuffer(decode(codec, codes), "<i2").astype(int) - tone).max() < 300
        assert recorder.digits == ["5"]  # once per event, however many end packets repeat it
        assert link.garbage >= 5
        # Outgoing: a prompt frame in the negotiated codec, then that codec's silence.
        link.send([codes], mark=7)
        assert recorder.done.wait(2) and recorder.marks == [7]
        seen = []
        for _ in range(10):  # bounded: 10 packets of 20 ms
            data = peer.recv(2048)
            seen.append((data[1] & 0x7F, data[12:]))
        assert all(pt == payload_type for pt, _ in seen)
        assert (payload_type, codes) in seen
        silence = bytes([0xFF if codec == "PCMU" else 0xD5]) * 160
        assert seen[-1][1] == silence
    finally:
        client.stop()
        peer.close()
