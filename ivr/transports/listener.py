"""What every TCP listener of the worker shares: start, the bound port, who may connect, a clean close.

Each connection runs in its own task; ``close`` stops accepting, then cancels
the connections still open, so a shutdown never leaves a half-served call.

AudioSocket and FastAGI have no authentication of their own: whoever can
connect can stream a call or drive a flow. So a peer must be in the
allowlist (default: loopback only; add the PBX's address), and no peer may
hold more than ``max_per_peer`` connections at once. A refused peer is told
nothing: the connection is closed and a WARNING names it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from typing import Iterable, Self

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1/128")


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.5", "192.168.1.0/24"]`` -> networks; ValueError naming a bad entry."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(found)


def _address(peer: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TcpListener:
    # asyncio's default stream buffer limit; subclasses bound their line length.
    stream_limit = 2**16
    protocol = "TCP"

    def __init__(self, host: str, port: int, *, allow_from: Iterable[str] = LOOPBACK,
                 max_per_peer: int | None = None) -> None:
        self._host = host
        self._port = port
        self._allowed = networks(allow_from)
        self._max_per_peer = max_per_peer
        self._per_peer: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused_peers = 0

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port,
                                                  limit=self.stream_limit)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _admit(self, peer: object) -> str | None:
        """None if the peer may connect now; else why not."""
        address = _address(peer)
        if address is None or not any(address in net for net in self._allowed):
            return (f"{address or peer} is not in the allowlist "
                    f"({', '.join(map(str, self._allowed))}; VOICEAUTH_*__ALLOW_FROM)")
        if self._max_per_peer is not None and self._per_peer[str(address)] >= self._max_per_peer:
            return f"{address} already has {self._max_per_peer} connections (max_per_peer)"
        return None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        refusal = self._admit(peer)
        if refusal is not None:
            self.refused_peers += 1
            log.warning("%s: refused a connection: %s", self.protocol, refusal)
            writer.close()
            return
        key = str(_address(peer))
        self._per_peer[key] += 1
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)
            self._per_peer[key] -= 1
            if not self._per_peer[key]:
                del self._per_peer[key]
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
