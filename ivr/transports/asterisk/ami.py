"""Asterisk Manager Interface (AMI) client on asyncio streams.

Why hand-written: AMI is "Key: value" lines in blank-line-separated blocks;
the client needs ~300 lines.  panoramisk (the asyncio library) is unmaintained,
its FastAGI side breaks on Python 3.11, and it does not give the guarantees the
worker needs: every wait bounded, pending actions failed (not hung) when the
link drops, and reconnection with bounded jittered backoff while Asterisk
restarts.  asterisk-ami uses a thread that dies silently on idle links.

The worker uses AMI for what AudioSocket cannot do: find the channel behind an
AudioSocket UUID, read the dialplan's inputs (Getvar) and hand the result back
(Setvar) before closing the socket.  See :class:`AmiCallDirectory`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterable, Mapping

from ivr.call import CallInfo
from ivr.transports.asterisk.channel_names import trunk_of

log = logging.getLogger(__name__)

# AMI messages are small (a few hundred bytes); a "message" of this size means
# the peer is not Asterisk or the stream is corrupt.
MAX_MESSAGE_BYTES = 256 * 1024


class AmiError(Exception):
    """Asterisk answered an action with ``Response: Error``."""


class AmiConnectionError(ConnectionError):
    """Not connected to Asterisk (down, restarting, or unreachable)."""


class AmiAuthError(AmiError):
    """Asterisk refused the login: wrong user/secret or a ``permit`` that excludes this host."""


@dataclass(frozen=True)
class AmiMessage:
    """One AMI block.  Keys can repeat (``Output:``, ``Variable:``), so headers are kept in order."""

    headers: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        key = key.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def is_error(self) -> bool:
        return (self.get("Response") or "").lower() == "error"

    def as_dict(self) -> dict[str, str]:
        """First value of each key (convenient for events, which rarely repeat keys)."""
        out: dict[str, str] = {}
        for k, v in self.headers:
            out.setdefault(k, v)
        return out


def encode_action(action: str, fields: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"Action: {action}"]
    for key, value in fields:
        value = str(value)
        if "\r" in value or "\n" in value:
            # A newline would end the block and inject headers of our own making.
            raise ValueError(f"AMI field {key!r} contains a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_block(data: bytes) -> AmiMessage:
    headers = []
    for raw in data.decode("utf-8", "replace").split("\r\n"):
        if not raw:
            continue
        key, sep, value = raw.partition(":")
        if sep:
            headers.append((key.strip(), value.strip()))
        else:
            # Old-style command output lines without a key.
            headers.append(("Output", raw))
    return AmiMessage(tuple(headers))


class EventSubscription:
    """A bounded queue of matching events; iterate it or ``await get(timeout)``."""

    def __init__(self, client: "AmiClient", names: frozenset[str] | None, maxsize: int) -> None:
        self._client = client
        self._names = names
        self._queue: deque[AmiMessage] = deque(maxlen=maxsize)  # a slow reader loses the oldest
        self._arrived = asyncio.Event()

    def matches(self, message: AmiMessage) -> bool:
        return self._names is None or (message.event or "").lower() in self._names

    def push(self, message: AmiMessage) -> None:
        self._queue.append(message)
        self._arrived.set()

    async def get(self, timeout: float) -> AmiMessage | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._queue:
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        return self._queue.popleft()

    async def wait_for(self, predicate, timeout: float) -> AmiMessage | None:
        """The first event satisfying ``predicate`` within ``timeout`` s (others are discarded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            message = await self.get(remaining)
            if message is not None and predicate(message):
                return message
        return None

    def __aiter__(self) -> AsyncIterator[AmiMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AmiMessage]:
        while True:
            message = await self.get(3600.0)
            if message is not None:
                yield message

    def close(self) -> None:
        self._client._subscriptions.discard(self)

    def __enter__(self) -> "EventSubscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AmiClient:
    """A long-lived AMI connection that logs in again after Asterisk restarts.

    Use as ``async with AmiClient(...) as ami:``; ``await ami.wait_connected(t)``
    before the first action if the caller needs one at once.  While
    disconnected, actions fail fast with :class:`AmiConnectionError` rather than
    queueing behind an outage.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5038,
        *,
        username: str,
        secret: str,
        connect_timeout: float = 5.0,
        action_timeout: float = 10.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        event_queue_size: int = 1000,
        tracked_variables: Iterable[str] = ("VOICEAUTH_UUID",),
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self._connect_timeout = connect_timeout
        self._action_timeout = action_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._event_queue_size = event_queue_size
        self._tracked = {v.upper() for v in tracked_variables}
        # (variable, value) -> channel, learned from VarSet events; bounded LRU-ish.
        self._channel_by_var: dict[tuple[str, str], str] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[AmiMessage]] = {}
        self._lists: dict[str, list[AmiMessage]] = {}
        self._complete: dict[str, asyncio.Future[AmiMessage]] = {}
        self._subscriptions: set[EventSubscription] = set()
        self._ids = itertools.count(1)
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fatal: Exception | None = None
        self._gave_up = asyncio.Event()  # set when retrying cannot help (login refused)
        self.last_error: str | None = None
        self.connections = 0  # how many times a login succeeded (reconnects = connections - 1)

    # -- lifecycle ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-{self.host}:{self.port}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._drop_connection(AmiConnectionError("AMI client closed"))

    async def __aenter__(self) -> "AmiClient":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connected(self, timeout: float) -> None:
        if self._fatal is not None:
            raise self._fatal
        waiters = [asyncio.ensure_future(self._connected.wait()), asyncio.ensure_future(self._gave_up.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._fatal is not None:
            raise self._fatal
        if not self._connected.is_set():
            if self._fatal is not None:
                raise self._fatal from None
            raise AmiConnectionError(
                f"no AMI connection to {self.host}:{self.port} within {timeout} s (last error: {self.last_error})"
            ) from None

    # -- actions -----------------------------------------------------------

    async def action(self, action: str, fields: Mapping[str, str] | Iterable[tuple[str, str]] = (), *, timeout: float | None = None) -> AmiMessage:
        """Send an action and return its response; raises :class:`AmiError` on ``Response: Error``."""
        response = await self._send(action, fields, timeout, collect=False)
        return response[0]

    async def action_list(
        self, action: str, fields: Mapping[str, str] | Iterable[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> list[AmiMessage]:
        """Send an action whose answer is an event list (Status, CoreShowChannels...); returns the events."""
        messages = await self._send(action, fields, timeout, collect=True)
        return messages[1:]

    async def setvar(self, channel: str, name: str, value: str) -> None:
        await self.action("Setvar", [("Channel", channel), ("Variable", name), ("Value", value)])

    async def getvar(self, channel: str, name: str) -> str | None:
        """The variable's value, or None if it is unset or empty (AMI cannot tell the two apart)."""
        response = await self.action("Getvar", [("Channel", channel), ("Variable", name)])
        value = response.get("Value")
        return value or None

    async def command(self, cli: str) -> str:
        """Run a CLI command; returns its output."""
        response = await self.action("Command", [("Command", cli)])
        return "\n".join(response.get_all("Output"))

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str | None = None,
        variables: Mapping[str, str] | None = None,
        caller_id: str | None = None,
        ring_timeout: float = 30.0,
    ) -> str:
        """Start a call asynchronously; returns the ActionID that its OriginateResponse event carries."""
        fields: list[tuple[str, str]] = [("Channel", channel), ("Async", "true"), ("Timeout", str(int(ring_timeout * 1000)))]
        if application:
            fields.append(("Application", application))
            if data is not None:
                fields.append(("Data", data))
        else:
            if context is None or exten is None:
                raise ValueError("originate needs context+exten or application")
            fields += [("Context", context), ("Exten", exten), ("Priority", str(priority))]
        if caller_id:
            fields.append(("CallerID", caller_id))
        for name, value in (variables or {}).items():
            fields.append(("Variable", f"{name}={value}"))
        action_id = self._next_id()
        fields.append(("ActionID", action_id))
        await self.action("Originate", fields)
        return action_id

    async def find_channel(self, variable: str, value: str, *, timeout: float = 5.0) -> str | None:
        """The channel on which ``variable`` has ``value``.

        Fast path: the VarSet events seen on this connection.  Fallback (the
        event was missed, e.g. during a reconnect): AMI ``Status`` with
        ``Variables:``, which asks Asterisk itself.
        """
        key = (variable.upper(), value)
        if key in self._channel_by_var:
            return self._channel_by_var[key]
        for status in await self.action_list("Status", [("Variables", variable)], timeout=timeout):
            for pair in status.get_all("Variable"):
                name, _, val = pair.partition("=")
                if name.strip().upper() == variable.upper() and val == value:
                    return status.get("Channel")
        return None

    # -- events ------------------------------------------------------------

    def subscribe(self, *names: str, maxsize: int | None = None) -> EventSubscription:
        """Events named ``names`` (all events if none) from now on, across reconnects."""
        sub = EventSubscription(self, frozenset(n.lower() for n in names) or None, maxsize or self._event_queue_size)
        self._subscriptions.add(sub)
        return sub

    def user_events(self, user_event: str | None = None) -> EventSubscription:
        """``UserEvent`` events (optionally only those with ``UserEvent: <user_event>``)."""
        sub = self.subscribe("UserEvent")
        if user_event is not None:
            wanted = user_event.lower()
            base = sub.matches
            sub.matches = lambda m: base(m) and (m.get("UserEvent") or "").lower() == wanted  # type: ignore[method-assign]
        return sub

    # -- internals ---------------------------------------------------------

    def _next_id(self) -> str:
        return f"voiceauth-{next(self._ids)}"

    async def _send(self, action: str, fields, timeout: float | None, *, collect: bool) -> list[AmiMessage]:
        if self._fatal is not None:
            raise self._fatal
        writer = self._writer
        if writer is None or not self._connected.is_set():
            raise AmiConnectionError(f"not connected to AMI at {self.host}:{self.port} ({self.last_error or 'connecting'})")
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        action_id = next((v for k, v in pairs if k.lower() == "actionid"), None)
        if action_id is None:
            action_id = self._next_id()
            pairs.append(("ActionID", action_id))
        return await self._exchange(writer, action, pairs, action_id, timeout, collect)

    async def _exchange(self, writer, action, pairs, action_id, timeout, collect) -> list[AmiMessage]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AmiMessage] = loop.create_future()
        self._pending[action_id] = future
        if collect:
            self._lists[action_id] = []
            # Created up front: the closing event can arrive right behind the response.
            complete: asyncio.Future[AmiMessage] = loop.create_future()
            self._complete[action_id] = complete
        try:
            writer.write(encode_action(action, pairs))
            async with asyncio.timeout(timeout or self._action_timeout):
                await writer.drain()
                response = await future
                if response.is_error:
                    raise AmiError(f"{action} failed: {response.get('Message', 'no message')}")
                if not collect:
                    return [response]
                # The response says "EventList: start"; events follow until "EventList: Complete".
                await complete
                return [response, *self._lists[action_id]]
        except TimeoutError:
            raise AmiConnectionError(f"AMI {action} got no answer within {timeout or self._action_timeout} s") from None
        finally:
            self._pending.pop(action_id, None)
            self._lists.pop(action_id, None)
            self._complete.pop(action_id, None)

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self._connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                self.last_error = f"connect: {exc!r}"
            else:
                try:
                    await self._session(reader, writer)
                    attempt = 0
                except AmiAuthError as exc:
                    self._fatal = exc
                    self._gave_up.set()
                    self.last_error = str(exc)
                    log.error("%s", exc)
                    self._drop_connection(exc)
                    writer.close()
                    return
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                    self.last_error = f"session: {exc!r}"
                    was_connected = self._connected.is_set()
                    self._drop_connection(AmiConnectionError(f"AMI connection lost ({self.last_error})"))
                    writer.close()
                    if was_connected:
                        log.warning("AMI %s:%s: connection lost (%s); reconnecting", self.host, self.port, self.last_error)
                except asyncio.CancelledError:
                    writer.close()
                    raise
            # Exponential backoff, capped, with full jitter so that many workers
            # do not hammer a restarting Asterisk in lockstep.
            delay = min(self._backoff_max, self._backoff_initial * 2**attempt)
            attempt = min(attempt + 1, 16)
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        banner = await asyncio.wait_for(reader.readline(), self._connect_timeout)
        if not banner.startswith(b"Asterisk Call Manager"):
            raise ValueError(f"not an AMI server (banner {banner[:60]!r})")
        login_id = self._next_id()
        writer.write(encode_action("Login", [("Username", self._username), ("Secret", self._secret), ("ActionID", login_id)]))
        await writer.drain()
        while True:
            message = await asyncio.wait_for(self._read_message(reader), self._connect_timeout)
            if message.get("ActionID") == login_id:
                break
        if message.is_error:
            raise AmiAuthError(
                f"AMI login as {self._username!r} at {self.host}:{self.port} refused: {message.get('Message')}; "
                "check manager.conf (secret, permit=)"
            )
        self._writer = writer
        self._connected.set()
        self.connections += 1
        self.last_error = None
        log.info("AMI %s:%s: logged in as %s", self.host, self.port, self._username)
        while True:
            # No read deadline: an idle PBX legitimately sends nothing.  A dead
            # peer is noticed by TCP (RST when Asterisk exits) or by an action timing out.
            self._dispatch(await self._read_message(reader))

    async def _read_message(self, reader: asyncio.StreamReader) -> AmiMessage:
        try:
            data = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise ValueError("AMI message too large") from None
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError("AMI message too large")
        return parse_block(data)

    def _dispatch(self, message: AmiMessage) -> None:
        action_id = message.get("ActionID")
        event = message.event
        if event is None:
            future = self._pending.get(action_id or "")
            if future is not None and not future.done():
                future.set_result(message)
            return
        if action_id in self._lists:
            if (message.get("EventList") or "").lower() == "complete":
                future = self._complete.get(action_id or "")
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self._lists[action_id].append(message)
            return
        if event.lower() == "varset":
            name = (message.get("Variable") or "").upper()
            if name in self._tracked and message.get("Value"):
                if len(self._channel_by_var) > 10000:
                    self._channel_by_var.pop(next(iter(self._channel_by_var)))
                self._channel_by_var[(name, message["Value"])] = message.get("Channel") or ""
        elif event.lower() == "hangup":
            channel = message.get("Channel")
            for key in [k for k, v in self._channel_by_var.items() if v == channel]:
                del self._channel_by_var[key]
        for sub in list(self._subscriptions):
            if sub.matches(message):
                sub.push(message)

    def _drop_connection(self, error: Exception) -> None:
        self._connected.clear()
        self._writer = None
        for future in [*self._pending.values(), *self._complete.values()]:
            if not future.done():
                future.set_exception(error)
                future.add_done_callback(lambda f: f.exception())  # an unawaited one must not warn
        self._pending.clear()
        self._complete.clear()


class AmiCallDirectory:
    """Ties an AudioSocket call (known only by its UUID) to its Asterisk channel.

    The dialplan (dialplans/extensions_voiceauth.conf) sets the inputs first and
    ``VOICEAUTH_UUID`` last, then connects the AudioSocket.  Plug ``call_info``
    and ``set_result`` into :class:`ivr.transports.asterisk.audiosocket.AudioSocketServer`.
    """

    INPUTS = ("VOICEAUTH_LANG", "VOICEAUTH_CLAIM", "VOICEAUTH_ACCOUNT", "VOICEAUTH_MODE")

    def __init__(self, ami: AmiClient, *, uuid_variable: str = "VOICEAUTH_UUID", lookup_timeout: float = 5.0,
                 language: Callable[[str | None], str] | None = None) -> None:
        self._ami = ami
        self._language = language or (lambda requested: requested or "en")
        self._uuid_variable = uuid_variable
        self._lookup_timeout = lookup_timeout

    async def channel(self, call_id: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lookup_timeout
        # The VarSet event normally precedes the AudioSocket connection; a short
        # retry covers an AMI link that is a few milliseconds behind.
        while True:
            channel = await self._ami.find_channel(self._uuid_variable, call_id, timeout=self._lookup_timeout)
            if channel:
                return channel
            if loop.time() >= deadline:
                raise LookupError(f"no Asterisk channel has {self._uuid_variable}={call_id}")
            await asyncio.sleep(0.05)

    async def call_info(self, call_id: str) -> CallInfo:
        channel = await self.channel(call_id)
        values = {name: await self._ami.getvar(channel, name) for name in self.INPUTS}
        caller = await self._ami.getvar(channel, "CALLERID(num)")
        params = {name.removeprefix("VOICEAUTH_").lower(): value for name, value in values.items() if value}
        params["channel"] = channel
        return CallInfo(call_id=call_id, caller_id=caller, language=self._language(values["VOICEAUTH_LANG"]), params=params,
                        trunk=trunk_of(channel))

    async def set_result(self, call_id: str, variables: Mapping[str, str]) -> None:
        channel = await self.channel(call_id)
        for name, value in variables.items():
            await self._ami.setvar(channel, name, value)
