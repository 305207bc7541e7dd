"""FastAGI transport: Asterisk's ``AGI(agi://host:port/script,args)`` connects to us.

FastAGI is the conservative choice many PBX admins already allow: line-based
commands over TCP, prompts played by Asterisk itself from its sounds
directory.  It carries no audio, so a flow on FastAGI can prompt, read keys and
return variables but cannot capture the caller's voice; for that step the
handler can ``EXEC AudioSocket`` (see :meth:`AgiSession.exec`) or the dialplan
uses the AudioSocket contexts instead.

Protocol facts this module relies on (Asterisk 22):

* The connection starts with ``agi_<name>: <value>`` lines ending with a blank
  line; ``agi_network_script`` is the URL path, used here to route.
* Each command is one line; the answer is ``200 result=<n> [(data)] [k=v]``,
  ``510`` (unknown command), ``511`` (channel is dead), or a ``520-`` block
  ending with ``520 End of proper usage.``.
* When the caller hangs up Asterisk writes a bare ``HANGUP`` line, possibly in
  the middle of waiting for a command's answer; later commands get ``511``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Mapping

from ivr.call import CallerHungUp, CallEvent, CallInfo, DtmfDigit, FlowResult, HangUp
from ivr.transports.asterisk.channel_names import trunk_of
from ivr.transports.asterisk.variables import channel_variables
from ivr.transports.listener import LOOPBACK, TcpListener

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8192
# Asterisk sends ~25 agi_ lines plus one per argument; far more is not Asterisk.
MAX_HEADER_LINES = 200
ALL_DIGITS = "0123456789*#"

_RESPONSE = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)$")
_RESULT = re.compile(r"^result=(?P<result>\S*)(?: \((?P<data>[^)]*)\))?(?P<extra>.*)$")
_HEADER = re.compile(r"^agi_[a-z0-9_]+: ?.*$")


class AgiError(Exception):
    """Asterisk refused or did not understand an AGI command."""


class AgiProtocolError(Exception):
    """The peer is not speaking FastAGI (bad header block, garbage, stalling)."""


@dataclass(frozen=True)
class AgiResponse:
    code: int
    result: str
    data: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


def parse_response(line: str) -> AgiResponse:
    match = _RESPONSE.match(line)
    if not match:
        raise AgiProtocolError(f"not an AGI response: {line[:80]!r}")
    code = int(match["code"])
    rest = match["rest"]
    result = _RESULT.match(rest) if code == 200 else None
    if result is None:
        return AgiResponse(code, "", rest or None)
    fields = dict(part.split("=", 1) for part in result["extra"].split() if "=" in part)
    return AgiResponse(code, result["result"], result["data"], fields)


def quote(value: str) -> str:
    """Quote an AGI argument (Asterisk splits on spaces, honours "..." and backslash escapes)."""
    if "\n" in value or "\r" in value:
        raise ValueError("AGI arguments cannot contain line breaks")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    """One FastAGI connection: the channel's ``agi_*`` headers and its commands."""

    def __init__(self, headers: Mapping[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, peer: str) -> None:
        self.headers = dict(headers)
        self.peer = peer
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self.hung_up = False

    @property
    def script(self) -> str:
        return route_of(self.headers.get("agi_network_script", ""))

    @property
    def local_host(self) -> str:
        """This worker's address as the PBX reached it (for the call's audio leg back to the same worker)."""
        sockname = self._writer.get_extra_info("sockname")
        return sockname[0] if sockname else "127.0.0.1"

    @property
    def args(self) -> list[str]:
        args = []
        for n in range(1, MAX_HEADER_LINES):
            value = self.headers.get(f"agi_arg_{n}")
            if value is None:
                break
            args.append(value)
        return args

    async def command(self, line: str, *, timeout: float = 30.0) -> AgiResponse:
        """Send one command and return its ``200`` answer.

        Raises :class:`~ivr.call.CallerHungUp` when the channel is gone and
        :class:`AgiError` for 510/520 answers.
        """
        if "\n" in line or "\r" in line:
            raise ValueError("one AGI command per call")
        async with self._lock:
            if self.hung_up and self._writer.is_closing():
                raise CallerHungUp(f"AGI channel {self.headers.get('agi_channel')} has hung up")
            try:
                self._writer.write(line.encode() + b"\n")
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
                    response = await self._read_response()
            except TimeoutError:
                raise AgiError(f"no answer to {line.split()[0:2]} within {timeout} s") from None
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.hung_up = True
                raise CallerHungUp(f"AGI connection closed ({exc!r})") from exc
        if response.code == 511:
            self.hung_up = True
            raise CallerHungUp(f"AGI channel {self.headers.get('agi_channel')} has hung up")
        if response.code != 200:
            raise AgiError(f"{line.split(' ')[0]}: Asterisk answered {response.code} {response.data or ''}".strip())
        return response

    async def _read_response(self) -> AgiResponse:
        while True:
            line = await _read_line(self._reader)
            if line is None:
                raise asyncio.IncompleteReadError(b"", None)
            if line == "HANGUP":
                self.hung_up = True  # the answer to our command still follows
                continue
            response = parse_response(line)
            if line.startswith("520-"):
                # Multi-line usage text; the block ends with "520 End of proper usage."
                while (more := await _read_line(self._reader)) is not None and not more.startswith("520 "):
                    pass
            return response

    # -- the commands flows need ---------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "", *, timeout: float = 300.0) -> str | None:
        """Play a sound file (path under Asterisk's sounds dir, no extension).

        Returns the digit that interrupted it, or None.  Raises ``FileNotFoundError``
        when Asterisk has no such file (it answers ``result=-1 endpos=0`` on a
        live channel).
        """
        response = await self.command(f"STREAM FILE {quote(name)} {quote(escape_digits)}", timeout=timeout)
        if response.result_int < 0:
            if self.hung_up:
                raise CallerHungUp("caller hung up during playback")
            raise FileNotFoundError(f"Asterisk could not play sound {name!r} (missing from its sounds directory?)")
        return chr(response.result_int) if response.result_int > 0 else None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """One keypress within ``timeout_ms``, or None."""
        response = await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}", timeout=timeout_ms / 1000 + 10)
        if response.result_int < 0:
            self.hung_up = True
            raise CallerHungUp("caller hung up while waiting for a digit")
        return chr(response.result_int) if response.result_int > 0 else None

    async def get_data(self, prompt: str, timeout_ms: int = 5000, max_digits: int = 20) -> str:
        """Play ``prompt`` and collect up to ``max_digits`` keys (ended by ``#`` or the timeout)."""
        response = await self.command(
            f"GET DATA {quote(prompt)} {int(timeout_ms)} {int(max_digits)}", timeout=timeout_ms / 1000 * (max_digits + 1) + 300
        )
        if response.result == "-1":
            self.hung_up = True
            raise CallerHungUp("caller hung up during GET DATA")
        return response.result

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {quote(name)} {quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        response = await self.command(f"GET VARIABLE {quote(name)}")
        return response.data if response.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {int(level)}")

    async def exec(self, application: str, options: str = "", *, timeout: float = 3600.0) -> AgiResponse:
        """Run a dialplan application (e.g. ``AudioSocket``, ``uuid,host:port``)."""
        return await self.command(f"EXEC {application} {quote(options)}", timeout=timeout)

    async def hangup(self) -> None:
        """Hang up the channel itself (the dialplan does not continue)."""
        await self.command("HANGUP")

    async def close(self) -> None:
        """End the AGI session; ``AGI()`` returns and the dialplan continues."""
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 5.0)
        except (ConnectionError, asyncio.TimeoutError):
            pass


class AgiCallSession:
    """An :class:`AgiSession` as an :class:`ivr.call.CallSession` (prompts and keys, no audio).

    * ``play(name)`` -> ``STREAM FILE <prompt_dir>/<lang>/<name>``: prompts are
      installed into Asterisk's sounds directory under ``voiceauth/<lang>/``.
      With ``barge_in`` a key pressed during a prompt stops it and is kept as
      the next event (callers type ahead of prompts they know).
    * ``next_event`` -> ``WAIT FOR DIGIT``: yields DtmfDigit, HangUp or None;
      never AudioFrame (FastAGI carries no audio).
    * ``finish(result)`` -> ``SET VARIABLE`` for each ``VOICEAUTH_*``, then
      ends the AGI session, not the call: the dialplan continues after
      ``AGI()`` and routes on VOICEAUTH_RESULT.
    * the language is ``lang=`` from the dialplan, else the channel's, as
      ``language`` picks among those offered (default: as given, else "en").
    """

    def __init__(self, agi: AgiSession, *, prompt_dir: str = "voiceauth", barge_in: bool = True,
                 language: Callable[[str | None], str] | None = None) -> None:
        self._agi = agi
        self._prompt_dir = prompt_dir
        self._barge_in = barge_in
        self._typed_ahead: list[str] = []
        params = {}
        for arg in agi.args:
            key, sep, value = arg.partition("=")
            if sep and value:
                params[key.strip().lower()] = value
        params["channel"] = agi.headers.get("agi_channel", "")
        caller = agi.headers.get("agi_callerid")
        self._info = CallInfo(
            call_id=params.get("uuid") or agi.headers.get("agi_uniqueid", ""),
            caller_id=None if caller in (None, "", "unknown") else caller,
            language=(language or _as_given)(params.get("lang") or agi.headers.get("agi_language")),
            params=params,
            trunk=trunk_of(params["channel"]),
        )

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def agi(self) -> AgiSession:
        return self._agi

    async def play(self, prompt: str) -> None:
        if self._agi.hung_up:
            raise CallerHungUp("caller hung up")
        digit = await self._agi.stream_file(
            f"{self._prompt_dir}/{self._info.language}/{prompt}", ALL_DIGITS if self._barge_in else ""
        )
        if digit:
            self._typed_ahead.append(digit)

    async def next_event(self, timeout: float) -> CallEvent | None:
        if self._typed_ahead:
            return DtmfDigit(self._typed_ahead.pop(0))
        if self._agi.hung_up:
            return HangUp()
        try:
            digit = await self._agi.wait_for_digit(max(1, int(timeout * 1000)))
        except CallerHungUp:
            return HangUp()
        return DtmfDigit(digit) if digit else None

    async def finish(self, result: FlowResult | None) -> None:
        try:
            if result is not None:
                for name, value in channel_variables(result).items():
                    await self._agi.set_variable(name, value)
        finally:
            await self._agi.close()


def _as_given(requested: str | None) -> str:
    return requested or "en"


AgiHandler = Callable[[AgiSession], Awaitable[None]]



def route_of(script: str) -> str:
    """``agi://host:port/verify?x=1`` gives agi_network_script ``verify?x=1``; the route is ``verify``."""
    return script.split("?", 1)[0].strip("/")


async def _read_line(reader: asyncio.StreamReader) -> str | None:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise AgiProtocolError("connection closed in the middle of a line") from None
        return None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError(f"line longer than {MAX_LINE_BYTES} bytes") from None
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise AgiProtocolError("line is not UTF-8 text") from None


class FastAgiServer(TcpListener):
    """Serves ``AGI(agi://host:port/<route>)`` by routing to ``routes[<route>]``.

    A peer that does not send a valid ``agi_*`` header block within
    ``header_timeout`` (garbage, a port scanner, a stalled client) is closed
    with a WARNING; ``max_calls`` bounds concurrent sessions.
    """

    stream_limit = MAX_LINE_BYTES
    protocol = "FastAGI"

    def __init__(
        self,
        routes: Mapping[str, AgiHandler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        max_calls: int = 50,
        header_timeout: float = 5.0,
        allow_from: Iterable[str] = LOOPBACK,
        max_per_peer: int | None = None,
    ) -> None:
        super().__init__(host, port, allow_from=allow_from, max_per_peer=max_per_peer)
        self._routes = {route_of(k): v for k, v in routes.items()}
        self._max_calls = max_calls
        self._header_timeout = header_timeout
        self.active_calls = 0
        self.rejected_connections = 0

    def _reject(self, peer: str, reason: str) -> None:
        self.rejected_connections += 1
        log.warning("FastAGI %s: rejected: %s", peer, reason)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if self.active_calls >= self._max_calls:
            self._reject(peer, f"already {self.active_calls} calls (max_calls)")
            return
        self.active_calls += 1
        try:
            try:
                async with asyncio.timeout(self._header_timeout):
                    headers = await self._read_headers(reader)
            except TimeoutError:
                self._reject(peer, f"no complete agi_ header block within {self._header_timeout} s")
                return
            except AgiProtocolError as exc:
                self._reject(peer, str(exc))
                return
            route = route_of(headers.get("agi_network_script", ""))
            handler = self._routes.get(route)
            if handler is None:
                self._reject(peer, f"no handler for script {route!r} (have {sorted(self._routes)})")
                return
            session = AgiSession(headers, reader, writer, peer=peer)
            try:
                await handler(session)
            except CallerHungUp:
                log.info("FastAGI %s %s: caller hung up during the flow", peer, headers.get("agi_channel"))
            except Exception:
                log.exception("FastAGI %s %s: handler %r failed", peer, headers.get("agi_channel"), route)
        finally:
            self.active_calls -= 1

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = await _read_line(reader)
            if line is None:
                raise AgiProtocolError("closed before the end of the agi_ header block")
            if line == "":
                if "agi_network_script" not in headers and "agi_request" not in headers:
                    raise AgiProtocolError("header block without agi_network_script/agi_request")
                return headers
            if not _HEADER.match(line):
                raise AgiProtocolError(f"not an agi_ header line: {line[:60]!r}")
            key, _, value = line.partition(":")
            headers[key] = value.strip()
        raise AgiProtocolError(f"more than {MAX_HEADER_LINES} header lines")
