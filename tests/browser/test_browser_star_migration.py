"""Star host migration with a browser: the Python host process is SIGKILLed mid-match.

The lobby names the earliest-joined member that is still connected as the new host
(docs/PROTOCOL.md 1.6, ``host_changed``); every member rebuilds the star around it
at once: clients offer to the new host, which answers each. Here the new host is a
Python client (the browser re-links to it) or the browser itself (the Python
clients link to the tab, which relays between them). Nothing is said by the killed
process: no BYE, no leave_room; its sockets just vanish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import netcode
from netcode.config import LobbyConfig
from netcode.events import EventReceived, HostChanged, PeerConnected, StateReceived
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import connect
from tests.browser.test_browser import CONFIG, QUANTIZE, join, wait_connected, wait_log
from tests.browser.test_browser_star import _got, _send_until
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, EventLog, running_lobby

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120 * TIMESCALE)

# A dropped host is replaced after 0.3 s; its seat is freed (peer_left) after 2 s.
FAST = LobbyConfig(reconnect_grace_s=2.0, host_grace_s=0.3)

# The doomed host: creates the star room, says so on stdout, then relays until killed.
HOST = textwrap.dedent(
    f"""
    import asyncio, sys
    from netcode.config import SessionConfig
    from netcode.net.session import connect

    async def main(url):
        cfg = SessionConfig(host_addresses=("127.0.0.1",), snapshot_quantize={QUANTIZE!r})
        host = await connect(url, create=True, topology="star", max_players=6, config=cfg)
        print(host.room, host.peer_id, flush=True)
        while True:
            host.poll()  # keep its event queue short; relaying needs nothing from us
            await asyncio.sleep(0.05)

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby(FAST) as server:
        yield server


@contextlib.asynccontextmanager
async def host_process(url: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    """(process, room, host peer id) of a Python star host in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOST,
        url,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(netcode.__file__).parents[1])},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 3 * TIMEOUT)
        room, host_id = line.decode().split()
        yield proc, room, host_id
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def js(page: Any, index: int, expr: str, arg: Any = None) -> Any:
    """``expr`` (over ``s``, the tab's session, and ``arg``) evaluated in the page."""
    return await page.evaluate(
        f"([i, arg]) => {{ const s = window.sessions[i]; return {expr}; }}", [index, arg]
    )


async def wait_after_host_change(page: Any, index: int, condition: str) -> None:
    """Wait in the page for an event matching ``condition`` (JS over ``e``) that came
    after HostChanged: proof it belongs to the rebuilt star, not the first one."""
    await wait_log(
        page,
        index,
        "log.slice(log.findIndex((e) => e.type === 'HostChanged') + 1)"
        f".some((e) => log.some((h) => h.type === 'HostChanged') && ({condition}))",
    )


async def test_browser_follows_a_python_client_that_becomes_the_host(
    lobby: LobbyServer, page: Any
) -> None:
    async with host_process(lobby.url) as (proc, room, old_host):
        client = await connect(lobby.url, room=room, config=CONFIG)  # earliest: next host
        try:
            me = await join(page, lobby.url, room=room)
            i, bid = me["index"], me["peerId"]
            await client.wait_for_peers(2, timeout=TIMEOUT)
            await wait_connected(page, i, 2)  # the host, and the client through it
            assert await js(page, i, "[...s.links.keys()]") == [old_host]
            clog = EventLog(client)
            killed = time.perf_counter()
            proc.send_signal(signal.SIGKILL)  # mid-match: nothing said

            await wait_after_host_change(
                page, i, f"e.type === 'PeerConnected' && e.peerId === '{client.peer_id}'"
            )
            took = time.perf_counter() - killed
            print(f"\nhost SIGKILL -> tab linked to the new host: {took:.2f} s")
            changed = await js(page, i, "s.log.find((e) => e.type === 'HostChanged')")
            assert changed == {
                "type": "HostChanged",
                "peerId": client.peer_id,
                "previous": old_host,
                "you": False,
            }
            assert await js(page, i, "[s.host, s.isHost]") == [client.peer_id, False]
            peers = await js(page, i, "s.peers")
            assert peers[client.peer_id] == {"state": "connected"}
            assert peers[old_host]["state"] in ("lost", "left")
            await clog.wait_event(HostChanged)
            assert client.is_host

            # The new link carries events and state both ways.
            client.send_event({"from": "new host"}, to=bid)
            await wait_after_host_change(
                page,
                i,
                f"e.type === 'EventReceived' && e.peerId === '{client.peer_id}'"
                " && e.data.from === 'new host'",
            )
            await js(page, i, "s.sendEvent({ from: 'tab' })")
            await clog.wait_for(lambda _: _got(clog, EventReceived, bid, {"from": "tab"}))

            async def tab_state() -> object:
                return await js(page, i, "s.sendState({ s: 7 })")

            await _send_until(clog, tab_state, lambda: _got(clog, StateReceived, bid, {"s": 7}))
            got = "s.log.some((e) => e.type === 'StateReceived' && e.peerId === arg)"
            async with asyncio.timeout(TIMEOUT):  # unreliable: resend until one arrived
                while not await js(page, i, got, client.peer_id):
                    client.send_state({"n": 1}, to=bid)
            # The dead host's seat is freed after reconnect_grace_s: PeerLeft as Python has it.
            await wait_log(
                page, i, f"log.some((e) => e.type === 'PeerLeft' && e.peerId === '{old_host}')"
            )
            stats = await js(page, i, "s.stats(arg)", client.peer_id)
            assert stats["badPackets"] == 0
            assert client.stats(bid).bad_packets == 0
        finally:
            await client.close()


async def test_browser_becomes_the_host_and_relays_between_python_clients(
    lobby: LobbyServer, page: Any
) -> None:
    async with host_process(lobby.url) as (proc, room, old_host):
        me = await join(page, lobby.url, room=room)  # earliest: the next host
        i, bid = me["index"], me["peerId"]
        a = await connect(lobby.url, room=room, config=CONFIG)
        b = await connect(lobby.url, room=room, config=CONFIG)
        try:
            for s in (a, b):
                await s.wait_for_peers(3, timeout=TIMEOUT)
            await wait_connected(page, i, 3)
            alog, blog = EventLog(a), EventLog(b)
            killed = time.perf_counter()
            proc.send_signal(signal.SIGKILL)

            for pid in (a.peer_id, b.peer_id):
                await wait_after_host_change(
                    page, i, f"e.type === 'PeerConnected' && e.peerId === '{pid}'"
                )
            took = time.perf_counter() - killed
            print(f"\nhost SIGKILL -> both clients linked to the tab: {took:.2f} s")
            assert await js(page, i, "[s.host, s.isHost]") == [bid, True]
            for log in (alog, blog):
                changed = await log.wait_event(HostChanged)
                assert (changed.peer_id, changed.previous) == (bid, old_host)
                await log.wait_event(PeerConnected, bid)
            links = await js(
                page, i, "Object.fromEntries([...s.links].map(([p, l]) => [p, l.state]))"
            )
            assert links == {old_host: "lost", a.peer_id: "connected", b.peer_id: "connected"}

            # a -> b through the tab (RELAY -> FORWARD), and a -> everyone.
            a.send_event({"to": "b"}, to=b.peer_id)
            a.send_event({"to": "all"})
            await blog.wait_for(lambda _: _got(blog, EventReceived, a.peer_id, {"to": "all"}))
            assert _got(blog, EventReceived, a.peer_id, {"to": "b"})
            await wait_log(
                page,
                i,
                f"log.some((e) => e.type === 'EventReceived' && e.peerId === '{a.peer_id}'"
                " && e.data.to === 'all')",
            )

            async def relayed_state() -> object:
                return a.send_state({"st": 3}, to=b.peer_id)

            await _send_until(
                blog, relayed_state, lambda: _got(blog, StateReceived, a.peer_id, {"st": 3})
            )
            await js(page, i, "s.sendEvent({ from: 'hub' })")
            for log in (alog, blog):
                await log.wait_event(EventReceived, bid)
                assert _got(log, EventReceived, bid, {"from": "hub"})
            for pid in (a.peer_id, b.peer_id):
                assert (await js(page, i, "s.stats(arg)", pid))["badPackets"] == 0
            assert a.stats(bid).bad_packets == 0 and b.stats(bid).bad_packets == 0
        finally:
            await asyncio.gather(a.close(), b.close())
