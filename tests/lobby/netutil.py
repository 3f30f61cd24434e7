"""Helpers for the lobby tests that use real sockets (tests/net/test_lobby_*.py)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from netcode.config import LobbyConfig
from netcode.net.lobby_server import LobbyServer, serve_lobby
from netcode.net.signaling import SignalingClient
from tests.conftest import TIMESCALE

__all__ = [
    "TIMEOUT",
    "clients",
    "http_get",
    "lobby",
    "raw_client",
    "recv_json",
    "wait_until",
]

# Generous: only matters when something is broken.
TIMEOUT = 10.0 * TIMESCALE


@asynccontextmanager
async def lobby(**config: Any) -> AsyncIterator[LobbyServer]:
    """A real lobby on 127.0.0.1, free port, closed afterwards."""
    server = await serve_lobby("127.0.0.1", 0, LobbyConfig(**config))
    try:
        yield server
    finally:
        await server.close()


@asynccontextmanager
async def clients(url: str, n: int, **kwargs: Any) -> AsyncIterator[list[SignalingClient]]:
    """``n`` connected SignalingClients, all closed afterwards."""
    opened: list[SignalingClient] = []
    try:
        opened.extend(
            await asyncio.gather(
                *(SignalingClient.connect(url, timeout=TIMEOUT, **kwargs) for _ in range(n))
            )
        )
        yield opened
    finally:
        await asyncio.gather(*(c.close() for c in opened), return_exceptions=True)


@asynccontextmanager
async def raw_client(url: str, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    """A bare websocket (welcome not consumed) for sending hostile frames."""
    kwargs.setdefault("max_size", None)
    async with connect(url, open_timeout=TIMEOUT, compression=None, **kwargs) as ws:
        yield ws


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        text = await ws.recv()
    obj = json.loads(text)
    assert isinstance(obj, dict)
    return obj


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for a condition the server reaches asynchronously (e.g. handler cleanup).

    Polls the event loop, bounded by TIMEOUT; the margin is never what's tested.
    """
    async with asyncio.timeout(TIMEOUT):
        while not predicate():  # noqa: ASYNC110 - server state has no event to await
            await asyncio.sleep(0.005)
    assert predicate(), what


async def http_get(
    host: str,
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], str]:
    """A minimal HTTP/1.1 GET with extra ``headers``, over TLS if given: (status,
    headers, body)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}Connection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body
