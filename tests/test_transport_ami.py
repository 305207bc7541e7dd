"""AMI client behaviour that needs no Asterisk (the rest is in tests/lab/test_lab_asterisk.py)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from ivr.transports.asterisk.ami import AmiAuthError, AmiClient, AmiConnectionError, encode_action, parse_block


def test_actions_are_encoded_as_key_value_blocks_and_line_breaks_cannot_inject_headers():
    assert encode_action("Setvar", [("Channel", "PJSIP/a-1"), ("Variable", "X"), ("Value", "1")]) == (
        b"Action: Setvar\r\nChannel: PJSIP/a-1\r\nVariable: X\r\nValue: 1\r\n\r\n"
    )
    with pytest.raises(ValueError):
        encode_action("Setvar", [("Value", "x\r\nAction: Originate")])


def test_repeated_keys_are_kept_in_order():
    message = parse_block(b"Event: Status\r\nChannel: PJSIP/a-1\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n")
    assert message.event == "Status"
    assert message.get_all("variable") == ["A=1", "B=2"]
    assert message["channel"] == "PJSIP/a-1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_without_asterisk_actions_fail_fast_and_wait_is_bounded():
    async with AmiClient("127.0.0.1", _closed_port(), username="u", secret="s", backoff_max=0.2) as ami:
        with pytest.raises(AmiConnectionError):
            await ami.command("core show version")
        started = time.monotonic()
        with pytest.raises(AmiConnectionError, match="within 0.5 s"):
            await ami.wait_connected(0.5)
        assert time.monotonic() - started < 1.5
        assert not ami.connected


async def test_refused_login_is_fatal_with_an_actionable_message():
    async def fake_manager(reader, writer):
        # The two lines Asterisk sends for a bad secret.
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        request = await reader.readuntil(b"\r\n\r\n")
        action_id = [l.split(": ", 1)[1] for l in request.decode().split("\r\n") if l.startswith("ActionID")][0]
        writer.write(f"Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n".encode())
        await writer.drain()

    server = await asyncio.start_server(fake_manager, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AmiClient("127.0.0.1", port, username="voiceauth", secret="wrong") as ami:
            started = time.monotonic()
            with pytest.raises(AmiAuthError, match="manager.conf"):
                await ami.wait_connected(5)
            assert time.monotonic() - started < 2  # no point waiting out the timeout: retrying cannot help
            with pytest.raises(AmiAuthError):
                await ami.command("core show version")
    finally:
        server.close()
        await server.wait_closed()
