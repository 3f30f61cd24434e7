"""Star host migration with a browser: the Python host process is SIGKILLed mid-match.

The lobby names the earliest-joined member that is still connected as the new host
(docs/PROTOCOL.md 1.6, ``host_changed``); every member rebuilds the star around it
at once: clients offer to the new host, which answers each. Here the new host is a
Python client (the browser re-links to it) or the browser itself (the Python
clients link to the tab, which relays between them); and the /play demo page plays
on with the Python player that takes the match over. Nothing is said by the killed
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
from tests.browser.conftest import wait_js
from tests.browser.test_browser import CONFIG, QUANTIZE, join, wait_connected, wait_log
from tests.browser.test_browser_star import _got, _send_until
from tests.browser.test_demo_page import _Host, open_play, steer_right
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, EventLog, loopback_config, running_lobby

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


# The doomed host of the demo page's match: demo_game's HostGame, as
# tests/browser/test_demo_page.py's _Host runs it, in a process of its own.
DEMO_HOST = textwrap.dedent(
    """
    import asyncio, sys
    from demo_game.host import HostGame
    from demo_game.messages import decode_inputs
    from netcode import DecodeError
    from netcode.config import SessionConfig
    from netcode.events import PeerConnected, StateReceived
    from netcode.net.session import connect

    async def main(url):
        cfg = SessionConfig(host_addresses=("127.0.0.1",))
        s = await connect(url, create=True, topology="star", max_players=6, config=cfg)
        game = HostGame(local_pid=None)
        print(s.room, s.peer_id, flush=True)
        tick = 0
        while True:
            for ev in s.poll():
                if isinstance(ev, PeerConnected):
                    game.add_peer(ev.peer_id)
                    s.send_event({"k": "welcome", "host": True}, to=ev.peer_id)
                elif isinstance(ev, StateReceived):
                    try:
                        game.receive_inputs(ev.peer_id, decode_inputs(ev.data))
                    except DecodeError:
                        pass
            game.tick()
            tick += 1
            if tick % 2 == 0 and game.queues:
                s.send_snapshot(game.snapshot())
            await asyncio.sleep(1 / 60)  # the host's fixed tick

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby(FAST) as server:
        yield server


@contextlib.asynccontextmanager
async def host_process(
    url: str, script: str = HOST
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    """(process, room, host peer id) of a Python star host in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
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


async def test_play_page_plays_on_with_the_python_player_that_takes_over(
    lobby: LobbyServer, browser: Any
) -> None:
    """The /play page in a star whose host process dies: it follows HostChanged, takes
    the new host's snapshots (its tick count starts anew) and its player moves there."""
    async with host_process(lobby.url, DEMO_HOST) as (proc, room, old_host):
        heir = await connect(lobby.url, room=room, config=loopback_config())  # earliest
        ticking: asyncio.Task[None] | None = None
        try:
            page = await open_play(browser, lobby, room)
            pid = await page.evaluate("window.demo.session.peerId")
            await wait_js(page, "() => window.demo.snapshots > 30 && window.demo.me.predictor")
            before = await page.evaluate("window.demo.snapshots")
            old_tick = await page.evaluate("window.demo.lastTick")  # about 60 by now
            proc.send_signal(signal.SIGKILL)

            changed = await EventLog(heir).wait_event(HostChanged)
            assert changed.you and changed.previous == old_host
            new_host = _Host(heir)  # heir's game loop from now on, as demo_game's takes over
            ticking = asyncio.create_task(new_host.run())
            await new_host.wait(new_host.placed(pid))
            await steer_right(page, new_host, pid)
            # The new host's ticks count from 0: taken although older than the last one seen.
            await wait_js(
                page,
                "([h, n, t]) => window.demo.host === h && window.demo.snapshots > n + 10"
                " && window.demo.lastTick < t",
                [heir.peer_id, before, old_tick],
            )
            assert new_host.bad_inputs == 0 and page.page_errors == []
            await page.close()
        finally:
            if ticking is not None:
                ticking.cancel()
            await heir.close()
