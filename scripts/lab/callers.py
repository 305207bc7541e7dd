"""Scripted phone callers (lab tests, phone demo, load bench): sipp plays keys and speech, AMI tells what the dialplan saw.

A script is a list of steps (keys, pauses, speech on/off); sipp runs it
against the lab Asterisk.  Every caller gets its own caller ID number, SIP port
and RTP port, so independent calls can run at the same time and each call's
``VoiceAuthResult`` UserEvent (emitted by the lab dialplan after the flow) is
matched to it by ``CallerIDNum``.

What is only known mid-call (a one-time code the test reads from an e-mail)
reaches the caller as an in-dialog SIP MESSAGE: the test sends it with
:func:`send_text`, the script waits for it with :func:`await_text` and types
it with ``keys("[$code]#")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

import numpy as np

from ivr.transports.asterisk.ami import AmiClient, AmiMessage
from scripts.lab.asterisk import SCENARIOS, Lab, SippResult, run_sipp

if TYPE_CHECKING:
    from ivr.service.worker import VoiceAuthService
    from ivr.settings import Settings

_ports = itertools.count()

WAIT_BYE = """  <recv request="BYE" timeout="{wait_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: sip:{caller}@[local_ip]:[local_port]
      Content-Length: 0
    ]]>
  </send>"""

HANG_UP = """  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "{caller}" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:{caller}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>"""


RECEIVE_TEXT = """  <recv request="MESSAGE" timeout="{timeout_ms}">
    <action>
      <ereg regexp="[0-9*#]+" search_in="body" check_it="true" assign_to="code"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>"""


def keys(digits: str) -> tuple[str, str]:
    """RFC 4733 keypad digits; ``[$code]`` types what :func:`await_text` received (sipp substitutes it).

    sipp plays them in the background, 0.4 s per digit (tone and gap): the
    next ``keys`` step cuts off digits still playing, so pause at least that long.
    While :func:`speak` streams, sipp's digits go out as a second RTP stream that
    Asterisk hears as each digit repeated: :func:`quiet` first.
    """
    return ("dtmf", digits)


def await_text(timeout_ms: int) -> tuple[str, str]:
    """Wait for an in-dialog SIP MESSAGE and keep its digits (0-9 * #) as ``[$code]`` (answered 200 OK).

    The test sends it through Asterisk with :func:`send_text`: how something
    only known mid-call (a one-time code read from an e-mail) reaches the
    scripted caller.
    """
    return ("text", str(int(timeout_ms)))


def pause(ms: int) -> tuple[str, str]:
    return ("pause", str(int(ms)))


def speak(audio: Path) -> tuple[str, str]:
    """Start streaming ``audio`` (headerless mu-law) in a loop until the call ends or ``quiet()``."""
    return ("speak", audio.name)


def quiet() -> tuple[str, str]:
    return ("quiet", "")


# G.711 as sipp offers and streams it: SDP payload type and rtpmap.
CODECS = {"ulaw": (0, "PCMU"), "alaw": (8, "PCMA")}


def render(steps: list[tuple[str, str]], *, caller: str, ending: str, wait_ms: int, codec: str = "ulaw") -> str:
    """The sipp scenario; ``codec="alaw"`` offers only PCMA and streams the audio files as PCMA (A-law files)."""
    payload_type, name = CODECS[codec]
    body = []
    for kind, value in steps:
        if kind == "dtmf":
            body.append(f'  <nop><action><exec play_dtmf="{value}"/></action></nop>')
        elif kind == "pause":
            body.append(f'  <pause milliseconds="{value}"/>')
        elif kind == "speak":
            body.append(f'  <nop><action><exec rtp_stream="{value},-1,{payload_type}"/></action></nop>')
        elif kind == "quiet":
            body.append('  <nop><action><exec rtp_stream="pause"/></action></nop>')
        elif kind == "text":
            body.append(RECEIVE_TEXT.format(timeout_ms=value))
        else:
            raise ValueError(f"unknown step {kind!r}")
    end = WAIT_BYE if ending == "wait_bye" else HANG_UP
    text = (SCENARIOS / "ivr_caller.xml").read_text()
    text = text.replace("RTP/AVP 0 96", f"RTP/AVP {payload_type} 96").replace(
        "a=rtpmap:0 PCMU/8000", f"a=rtpmap:{payload_type} {name}/8000")
    return (
        text.replace("@STEPS@", "\n".join(body))
        .replace("@ENDING@", end.format(caller=caller, wait_ms=wait_ms))
        .replace("@CALLER@", caller)
    )


async def place_call(
    lab: Lab,
    exten: str,
    steps: list[tuple[str, str]],
    *,
    caller: str,
    workdir: Path,
    audio: list[Path] = (),
    ending: str = "wait_bye",
    wait_ms: int = 60000,
    timeout: float = 90,
    codec: str = "ulaw",
) -> SippResult:
    """One sipp call (asyncio subprocess, so servers in this loop keep serving); ``codec``: see :func:`render`."""
    slot = next(_ports) % 200
    sip_port, media_port = 5100 + 2 * slot, 7000 + 10 * slot
    scenario = workdir / f"{caller}-{exten}.xml"
    scenario.write_text(render(steps, caller=caller, ending=ending, wait_ms=wait_ms, codec=codec))
    for file in audio:
        if file.parent != workdir:
            # Calls placed at the same time share the file: each writes a copy and renames it into
            # place, so sipp never reads one that another call is still writing.
            part = workdir / f".{file.name}.{caller}"
            part.write_bytes(file.read_bytes())
            part.replace(workdir / file.name)
    return await run_sipp(lab, scenario, exten, workdir=workdir, sip_port=sip_port, media_port=media_port,
                          timeout=timeout)


async def channel_of(ami: AmiClient, caller: str, *, timeout: float) -> str:
    """The Asterisk channel of the call placed as ``caller`` (its caller ID number), once it is up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for channel in await ami.action_list("CoreShowChannels", timeout=5):
            if channel.get("CallerIDNum") == caller and channel.get("Channel"):
                return channel["Channel"]
        if loop.time() >= deadline:
            raise AssertionError(f"no channel for caller {caller} within {timeout} s")
        await asyncio.sleep(0.2)


async def send_text(ami: AmiClient, caller: str, text: str, *, timeout: float = 10) -> None:
    """Send ``text`` to the caller's phone as an in-dialog SIP MESSAGE (AMI SendText); see :func:`await_text`."""
    channel = await channel_of(ami, caller, timeout=timeout)
    await ami.action("SendText", {"Channel": channel, "Message": text})


class DialplanResults:
    """``VoiceAuthResult`` UserEvents from the lab dialplan, by caller ID (what Asterisk itself saw)."""

    def __init__(self, ami: AmiClient, event: str = "VoiceAuthResult") -> None:
        self._sub = ami.user_events(event)
        self._seen: list[AmiMessage] = []

    async def of(self, caller: str, *, timeout: float, flow: str | None = None) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self._seen:
                wanted = event.get("Flow") != "hangup" if flow is None else event.get("Flow") == flow
                if event.get("CallerIDNum") == caller and wanted:
                    return event.as_dict()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no VoiceAuthResult event for caller {caller} within {timeout} s")
            event = await self._sub.get(remaining)
            if event is not None:
                self._seen.append(event)

    async def hangup_of(self, caller: str, *, timeout: float) -> dict[str, str]:
        return await self.of(caller, timeout=timeout, flow="hangup")

    def close(self) -> None:
        self._sub.close()


def to_ulaw(samples: np.ndarray) -> bytes:
    """float [-1, 1] at 8 kHz -> headerless G.711 mu-law, what sipp streams byte for byte."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return audioop.lin2ulaw(pcm, 2)


def speech_file(path: Path, clips: list[np.ndarray], *, gap_s: float = 1.5, lead_s: float = 0.0,
                codec: str = "ulaw") -> Path:
    """Sentences at 8 kHz separated by silence (so an enrolment utterance can end), as mu-law (or A-law)."""
    gap = np.zeros(int(gap_s * 8000), dtype=np.float32)
    parts = [np.zeros(int(lead_s * 8000), dtype=np.float32)]
    for clip in clips:
        parts += [clip.astype(np.float32), gap]
    samples = np.concatenate(parts)
    if codec == "alaw":
        from voiceprints.audio.g711 import alaw_encode

        path.write_bytes(alaw_encode(samples))
    else:
        path.write_bytes(to_ulaw(samples))
    return path


@contextlib.asynccontextmanager
async def running_worker(settings: "Settings") -> AsyncIterator["VoiceAuthService"]:
    """The worker started on ``settings`` and logged in to AMI; stopped (1 s grace) on exit."""
    from ivr.service.worker import VoiceAuthService

    service = VoiceAuthService(settings)
    await service.start()
    try:
        await service.transport("asterisk").ami.wait_connected(15)
        yield service
    finally:
        await service.stop(grace_s=1)
