"""The lobby's server-wide keepalive (netcode/net/lobby_keepalive.py) on real sockets.

The clients are hand-rolled websocket clients on a raw TCP stream, so a test
decides whether a ping is answered: websockets' own client always answers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from netcode.net import lobby_keepalive
from netcode.net.lobby_server import LobbyServer
from tests.conftest import TIMESCALE
from tests.lobby.netutil import TIMEOUT, clients, lobby, wait_until

_PING, _PONG, _CLOSE = 0x9, 0xA, 0x8
INTERVAL, PING_TIMEOUT = 0.2, 0.5
# docs/LOBBY.md "Dead connections": interval + timeout + close_timeout (min(2 s, timeout)).
BOUND = INTERVAL + PING_TIMEOUT + min(2.0, PING_TIMEOUT)


class RawClient:
    """A websocket client whose pongs the test controls."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pings = 0

    async def frame(self) -> tuple[int, bytes]:
        """The next frame (opcode, payload); (-1, b"") at EOF."""
        try:
            head = await self.reader.readexactly(2)
            size = head[1] & 0x7F
            if size >= 126:
                ext = await self.reader.readexactly(2 if size == 126 else 8)
                size = int.from_bytes(ext, "big")
            return head[0] & 0x0F, await self.reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return -1, b""

    def pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | _PONG, 0x80 | len(payload)]) + mask + masked)

    async def until_closed(self, answer: bool) -> tuple[int, str]:
        """Read frames (answering pings if ``answer``) to the close frame: (code, reason)."""
        while True:
            opcode, payload = await self.frame()
            if opcode == _PING:
                self.pings += 1
                if answer:
                    self.pong(payload)
            elif opcode == _CLOSE:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
            elif opcode == -1:
                return 1006, ""

    async def pings_answered(self, n: int) -> None:
        """Answer pings until ``n`` more came; a close frame before that fails."""
        target = self.pings + n
        while self.pings < target:
            opcode, payload = await self.frame()
            assert opcode not in (_CLOSE, -1), "a ponging client was closed"
            if opcode == _PING:
                self.pings += 1
                self.pong(payload)


@asynccontextmanager
async def raw_client(server: LobbyServer) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            status = await reader.readuntil(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 101"), status
            opcode, welcome = await RawClient(reader, writer).frame()
        assert opcode == 0x1 and b'"welcome"' in welcome
        yield RawClient(reader, writer)
    finally:
        writer.transport.abort()


async def test_silent_client_closed_within_bound_ponging_client_kept() -> None:
    async with (
        lobby(ping_interval_s=INTERVAL, ping_timeout_s=PING_TIMEOUT) as server,
        raw_client(server) as silent,
        raw_client(server) as alive,
    ):
        opened = time.monotonic()
        # Both read concurrently; only `alive` answers its pings.
        keep = asyncio.create_task(alive.pings_answered(1_000_000))
        try:
            async with asyncio.timeout(BOUND + 1.0 * TIMESCALE):
                code, reason = await silent.until_closed(answer=False)
            took = time.monotonic() - opened
            assert (code, reason) == (1011, "keepalive ping timeout")
            assert silent.pings == 1  # no second ping while the first is unanswered
            # Never early: the first ping comes after the connection opened.
            assert took >= PING_TIMEOUT
            assert server.health()["keepalive"]["timeouts"] == 1
            # The ponging client, pinged all along, answers several more and stays.
            before = alive.pings
            await wait_until(lambda: alive.pings >= before + 3, "ponging client pinged")
            assert not keep.done(), keep
        finally:
            keep.cancel()
        assert server.health()["keepalive"]["timeouts"] == 1
        await wait_until(lambda: server.health()["connections"] == 1, "silent one gone")


async def test_every_connection_pinged_once_per_interval() -> None:
    """More connections than one batch of pings (32): all pinged, none timed out."""
    n = 150
    async with (
        lobby(
            ping_interval_s=INTERVAL, ping_timeout_s=PING_TIMEOUT, max_connections_per_ip=None
        ) as server,
        clients(server.url, n) as crowd,
    ):
        start = server.health()["keepalive"]["pings"]
        # Three rounds each: websockets' client answers every ping by itself.
        await wait_until(
            lambda: server.health()["keepalive"]["pings"] >= start + 3 * n, "three rounds"
        )
        assert server.health()["keepalive"]["timeouts"] == 0
        assert not any(c.closed for c in crowd)
        assert server.health()["connections"] == n


async def test_closed_connections_leave_the_schedule() -> None:
    async with lobby(ping_interval_s=INTERVAL, ping_timeout_s=PING_TIMEOUT) as server:
        async with raw_client(server) as client:
            await client.pings_answered(2)
        await wait_until(lambda: server.health()["connections"] == 0, "client gone")
        pings = server.health()["keepalive"]["pings"]
        async with clients(server.url, 1):
            # Two rounds for the newcomer: the closed one's turn has come and gone.
            await wait_until(
                lambda: server.health()["keepalive"]["pings"] >= pings + 2, "newcomer pinged"
            )
            assert server._keepalive.scheduled == 1
        assert server.health()["keepalive"]["timeouts"] == 0


async def test_clogged_connections_get_websockets_keepalive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection whose ping would wait for its write buffer to drain is pinged
    by a task of its own (websockets' own keepalive step): same bound, same close."""
    monkeypatch.setattr(lobby_keepalive, "_can_ping", lambda ws: False)
    async with (
        lobby(ping_interval_s=INTERVAL, ping_timeout_s=PING_TIMEOUT) as server,
        raw_client(server) as silent,
        raw_client(server) as alive,
    ):
        keep = asyncio.create_task(alive.pings_answered(1_000_000))
        try:
            async with asyncio.timeout(BOUND + 1.0 * TIMESCALE):
                code, reason = await silent.until_closed(answer=False)
            assert (code, reason) == (1011, "keepalive ping timeout")
            assert silent.pings == 1 and server.health()["keepalive"]["timeouts"] == 1
            before = alive.pings
            await wait_until(lambda: alive.pings >= before + 3, "ponging client pinged")
            assert not keep.done(), keep
        finally:
            keep.cancel()
