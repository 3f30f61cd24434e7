"""Star rooms with a browser: as a client of a Python host, and as the host itself.

In a star every client links only to the host; messages between clients travel
as RELAY (client -> host) and FORWARD (host -> client), docs/PROTOCOL.md 2.4.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from netcode.events import EventReceived, StateReceived
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from tests.browser.test_browser import CONFIG, join, wait_connected, wait_log
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, EventLog

__all__: list[str] = []

pytestmark = pytest.mark.timeout(90 * TIMESCALE)


def _got(log: EventLog, cls: type[Any], peer: str, data: object) -> bool:
    return any(e.data == data for e in log.of(cls, peer))


async def _send_until(
    log: EventLog, send: Callable[[], Awaitable[object]], done: Callable[[], bool]
) -> None:
    """Unreliable state may be lost: resend every 20 ms until it arrived."""
    async with asyncio.timeout(TIMEOUT):
        while not done():
            await send()
            with contextlib.suppress(TimeoutError):
                await log.wait_for(lambda _: done(), within=0.02)


async def test_browser_as_star_client(lobby: LobbyServer, page: Any) -> None:
    host = await connect(lobby.url, create=True, config=CONFIG, topology="star")
    client: Session | None = None
    try:
        me = await join(page, lobby.url, room=host.room)
        client = await connect(lobby.url, room=host.room, config=CONFIG)
        await host.wait_for_peers(2, timeout=TIMEOUT)
        await client.wait_for_peers(2, timeout=TIMEOUT)
        await wait_connected(page, me["index"], 2)  # the host, and the client through it
        links = await page.evaluate("(i) => [...window.sessions[i].links.keys()]", me["index"])
        assert links == [host.peer_id], "a star client links to the host only"
        # Python client -> browser through the host (FORWARD), state and event.
        client.send_event({"via": "host"}, to=me["peerId"])
        for _ in range(5):
            client.send_state({"c": 1}, to=me["peerId"])
        await wait_log(
            page,
            me["index"],
            f"log.some((e) => e.type === 'EventReceived' && e.peerId === '{client.peer_id}'"
            " && e.data.via === 'host')",
        )
        # Browser -> Python client (RELAY), and -> everyone ("" relay reaches the host too).
        clog, hlog = EventLog(client), EventLog(host)
        await page.evaluate(
            "([i, c]) => window.sessions[i].sendEvent({ b: 'to-client' }, c)",
            [me["index"], client.peer_id],
        )
        await page.evaluate("(i) => window.sessions[i].sendEvent({ b: 'all' })", me["index"])
        await clog.wait_for(lambda _: _got(clog, EventReceived, me["peerId"], {"b": "all"}))
        assert _got(clog, EventReceived, me["peerId"], {"b": "to-client"})
        await hlog.wait_for(lambda _: _got(hlog, EventReceived, me["peerId"], {"b": "all"}))
        assert not _got(hlog, EventReceived, me["peerId"], {"b": "to-client"})

        async def send() -> object:
            return await page.evaluate("(i) => window.sessions[i].sendState({ s: 1 })", 0)

        await _send_until(clog, send, lambda: _got(clog, StateReceived, me["peerId"], {"s": 1}))
        stats = await page.evaluate(
            "([i, h]) => window.sessions[i].stats(h)", [me["index"], host.peer_id]
        )
        assert stats["badPackets"] == 0
        assert host.stats(me["peerId"]).bad_packets == 0
    finally:
        await asyncio.gather(host.close(), *([client.close()] if client else []))


async def test_browser_as_star_host(lobby: LobbyServer, page: Any) -> None:
    me = await join(page, lobby.url, create=True, topology="star")
    a = await connect(lobby.url, room=me["room"], config=CONFIG)
    b = await connect(lobby.url, room=me["room"], config=CONFIG)
    try:
        assert a.topology == "star" and a.host_id == me["peerId"]
        await a.wait_for_peers(2, timeout=TIMEOUT)
        await b.wait_for_peers(2, timeout=TIMEOUT)
        await wait_connected(page, me["index"], 2)
        blog = EventLog(b)
        a.send_event({"from": "a", "to": "b"}, to=b.peer_id)  # RELAY -> browser -> FORWARD
        a.send_event({"from": "a", "to": "all"})
        await blog.wait_for(
            lambda _: _got(blog, EventReceived, a.peer_id, {"from": "a", "to": "all"})
        )
        assert _got(blog, EventReceived, a.peer_id, {"from": "a", "to": "b"})
        await wait_log(
            page,
            me["index"],
            f"log.some((e) => e.type === 'EventReceived' && e.peerId === '{a.peer_id}'"
            " && e.data.to === 'all')",
        )
        no_b = await page.evaluate(
            "(i) => window.sessions[i].log.some((e) => e.data && e.data.to === 'b')", me["index"]
        )
        assert not no_b, "a relay addressed to b is not delivered to the host's game"

        async def send() -> object:
            return a.send_state({"st": 2}, to=b.peer_id)

        await _send_until(
            blog,
            send,
            lambda: _got(blog, StateReceived, a.peer_id, {"st": 2}),
        )
        assert b.stats(me["peerId"]).bad_packets == 0 and a.stats(me["peerId"]).bad_packets == 0
    finally:
        await asyncio.gather(a.close(), b.close())
