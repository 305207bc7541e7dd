"""FastAGI server behaviour, with a loopback client that plays Asterisk's part of the protocol.

(The same server against a real Asterisk is in tests/lab/test_lab_asterisk.py.)
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.call import CallerHungUp, DtmfDigit, FlowResult, HangUp, Result
from ivr.transports.asterisk.fastagi import AgiCallSession, AgiError, AgiSession, FastAgiServer, parse_response, quote

HEADERS = (
    "agi_network: yes\n"
    "agi_network_script: verify\n"
    "agi_request: agi://127.0.0.1:4573/verify\n"
    "agi_channel: PJSIP/caller-00000007\n"
    "agi_language: en\n"
    "agi_uniqueid: 1700000000.7\n"
    "agi_callerid: 5551234\n"
    "agi_arg_1: lang=es\n"
    "agi_arg_2: claim=callerid\n"
    "agi_arg_3: uuid=0f9c2b66-4b7e-4d1e-9a55-6a3c3c1d2e10\n"
    "\n"
)


class FakeAsterisk:
    """Answers each command line with the next scripted reply and records the commands."""

    def __init__(self, reader, writer, replies):
        self.reader, self.writer, self.replies, self.commands = reader, writer, list(replies), []

    async def run(self):
        while self.replies:
            line = await asyncio.wait_for(self.reader.readline(), 5)
            if not line:
                return
            self.commands.append(line.decode().rstrip("\n"))
            self.writer.write(self.replies.pop(0).encode())
            await self.writer.drain()


async def call(server_routes, replies, headers=HEADERS):
    server = FastAgiServer(server_routes, port=0, header_timeout=0.5)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(headers.encode())
        await writer.drain()
        asterisk = FakeAsterisk(reader, writer, replies)
        await asyncio.wait_for(asterisk.run(), 5)
        await asyncio.wait_for(reader.read(), 5)  # the server closes when the handler is done
        writer.close()
    finally:
        await server.close()
    return asterisk, server


def test_responses_are_parsed_with_result_data_and_fields():
    r = parse_response("200 result=0 endpos=3520")
    assert (r.code, r.result, r.fields) == (200, "0", {"endpos": "3520"})
    r = parse_response("200 result=1 (en)")
    assert (r.result, r.data) == ("1", "en")
    r = parse_response("200 result=123 (timeout)")
    assert (r.result, r.data) == ("123", "timeout")
    assert parse_response("511 Command Not Permitted on a dead channel or intercepted channel").code == 511


def test_arguments_are_quoted_so_spaces_and_quotes_survive():
    assert quote('say "hi" \\ there') == '"say \\"hi\\" \\\\ there"'
    with pytest.raises(ValueError):
        quote("two\nlines")


async def test_call_session_maps_commands_and_reads_call_info_from_args():
    seen = {}

    async def verify(agi: AgiSession):
        session = AgiCallSession(agi)
        seen["info"] = session.info
        await session.play("welcome")  # interrupted by "3": kept as the next event
        seen["events"] = [await session.next_event(1.0), await session.next_event(1.0), await session.next_event(1.0)]
        await session.finish(FlowResult(Result.PASS, "4711", 0.9, 'a "quoted"\nreason', method="voice"))

    asterisk, _ = await call(
        {"verify": verify},
        ["200 result=51 endpos=800\n", "200 result=0\n", "200 result=35\n", *["200 result=1\n"] * 8],
    )
    info = seen["info"]
    assert info.call_id == "0f9c2b66-4b7e-4d1e-9a55-6a3c3c1d2e10"
    assert (info.caller_id, info.language) == ("5551234", "es")
    assert info.params["claim"] == "callerid" and info.params["channel"] == "PJSIP/caller-00000007"
    assert seen["events"] == [DtmfDigit("3"), None, DtmfDigit("#")]
    assert asterisk.commands == [
        'STREAM FILE "voiceauth/es/welcome" "0123456789*#"',
        "WAIT FOR DIGIT 1000",
        "WAIT FOR DIGIT 1000",
        'SET VARIABLE "VOICEAUTH_RESULT" "PASS"',
        'SET VARIABLE "VOICEAUTH_SCORE" "0.900"',
        'SET VARIABLE "VOICEAUTH_REASON" "a \'quoted\' reason"',
        'SET VARIABLE "VOICEAUTH_SPEAKER" "4711"',
        'SET VARIABLE "VOICEAUTH_ACCOUNT" "4711"',
        'SET VARIABLE "VOICEAUTH_METHOD" "voice"',
        'SET VARIABLE "VOICEAUTH_LIVENESS" ""',
        'SET VARIABLE "VOICEAUTH_RISK" "NONE"',
    ]


async def test_hangup_line_and_511_end_the_call_for_the_flow():
    seen = {}

    async def verify(agi: AgiSession):
        session = AgiCallSession(agi)
        seen["event"] = await session.next_event(1.0)
        with pytest.raises(CallerHungUp):
            await session.play("welcome")

    # Asterisk writes HANGUP while we wait, then answers -1; afterwards 511.
    await call({"verify": verify}, ["HANGUP\n200 result=-1\n", "511 Command Not Permitted on a dead channel or intercepted channel\n"])
    assert seen["event"] == HangUp()


async def test_usage_errors_are_typed_and_the_session_stays_usable():
    seen = {}

    async def verify(agi: AgiSession):
        with pytest.raises(AgiError) as err:
            await agi.command("WAIT FOR DIGIT")
        seen["error"] = str(err.value)
        seen["var"] = await agi.get_variable("VOICEAUTH_LANG")

    await call(
        {"verify": verify},
        ["520-Invalid command syntax.  Proper usage follows:\nUsage: WAIT FOR DIGIT <timeout>\n520 End of proper usage.\n", "200 result=1 (es)\n"],
    )
    assert "520" in seen["error"]
    assert seen["var"] == "es"


async def test_missing_sound_file_is_reported_as_such():
    async def verify(agi: AgiSession):
        with pytest.raises(FileNotFoundError, match="voiceauth/en/nope"):
            await agi.stream_file("voiceauth/en/nope")

    await call({"verify": verify}, ["200 result=-1 endpos=0\n"])


@pytest.mark.parametrize(
    "garbage, reason",
    [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not an agi_ header line"),
        ("agi_network: yes\n\n", "without agi_network_script"),
        ("agi_network: yes\nagi_network_script: verify\n", "no complete agi_ header block"),  # stalls
        ("agi_network_script: other\n\n", "no handler for script 'other'"),
        ("agi_x: " + "a" * 10000 + "\n\n", "longer than"),
    ],
)
async def test_garbage_clients_are_rejected_with_a_warning_and_the_server_keeps_serving(garbage, reason, caplog):
    served = []

    async def verify(agi: AgiSession):
        served.append(agi.headers["agi_channel"])

    caplog.set_level(logging.WARNING)
    server = FastAgiServer({"verify": verify}, port=0, header_timeout=0.5)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(garbage.encode())
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(HEADERS.encode())
        await writer.drain()
        await asyncio.wait_for(reader.read(), 3)
        writer.close()
    finally:
        await server.close()
    assert served == ["PJSIP/caller-00000007"]
    assert server.rejected_connections == 1
    assert any(reason in r.getMessage() and "FastAGI 127.0.0.1:" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
