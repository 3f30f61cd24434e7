"""The browser demo page, served by the lobby at /play, plays in a Python-hosted match.

A Python session runs demo_game's authoritative HostGame (as ``python -m demo_game``
hosts it); the page, loaded from the lobby itself (``/play?room=CODE``: the lobby
URL defaults to the page's origin), joins its room, steers with the keyboard, and
its player moves on the Python side. Screenshots go to :func:`artifact_dir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from demo_game.host import HostGame
from demo_game.messages import decode_inputs
from netcode import DecodeError
from netcode.events import (
    Event,
    Kicked,
    PeerConnected,
    PeerReconnected,
    PeerReconnecting,
    StateReceived,
)
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from tests.browser.conftest import artifact_dir, open_page, wait_js, wait_until
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, loopback_config

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120 * TIMESCALE)

MS = int(TIMEOUT * 1000)
ROOT = Path(__file__).resolve().parents[2]


class _Host:
    """The host half of demo_game's loop: inputs in, HostGame ticks, snapshots out."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.game = HostGame(local_pid=None)
        self.bad_inputs = 0
        self.seen: list[Event] = []
        self.waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def on_event(self, ev: Event) -> None:
        self.seen.append(ev)
        if isinstance(ev, PeerConnected):
            self.game.add_peer(ev.peer_id)
            self.s.send_event({"k": "welcome", "host": True}, to=ev.peer_id)
        elif isinstance(ev, StateReceived):
            try:
                self.game.receive_inputs(ev.peer_id, decode_inputs(ev.data))
            except DecodeError:
                self.bad_inputs += 1

    async def run(self) -> None:
        """Tick at 60 Hz until cancelled, waking waiters whose condition holds."""
        tick = 0
        while True:
            for ev in self.s.poll():
                self.on_event(ev)
            self.game.tick()
            tick += 1
            if tick % 2 == 0 and self.game.queues:
                self.s.send_snapshot(self.game.snapshot())
            for cond, fut in list(self.waiters):
                if cond() and not fut.done():
                    fut.set_result(None)
            await asyncio.sleep(1 / 60)  # the host's fixed tick, not a synchronisation

    async def wait(self, cond: Callable[[], bool]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((cond, fut))
        try:
            async with asyncio.timeout(TIMEOUT):
                await fut
        finally:
            self.waiters.remove((cond, fut))

    def x_of(self, pid: str) -> float:
        return self.game.world.players[pid].x

    def placed(self, pid: str) -> Callable[[], bool]:
        """The browser's player is in the world and its inputs arrive."""
        return lambda: pid in self.game.world.players and self.game.acks().get(pid, -1) >= 0


async def open_play(browser: Any, lobby: LobbyServer, room: str) -> Any:
    """The /play page as the lobby serves it, joined to ``room``."""
    url = f"http://127.0.0.1:{lobby.port}/play?room={room}&loopback=1"
    return await open_page(browser, url, "!!(window.demo && window.demo.session)")


async def steer_right(page: Any, host: _Host, pid: str, px: float = 50.0) -> None:
    """Hold the right arrow until the Python host has moved the player ``px`` pixels."""
    start = host.x_of(pid)
    await page.keyboard.down("ArrowRight")
    try:
        await host.wait(lambda: host.x_of(pid) > start + px)
    finally:
        await page.keyboard.up("ArrowRight")


@contextlib.asynccontextmanager
async def hosted_page(
    lobby: LobbyServer, browser: Any
) -> AsyncIterator[tuple[Session, _Host, Any, str]]:
    """A Python host ticking a room, and the /play page playing in it: (the host's
    session, the host, the page, the page's peer id) once the page's player is placed."""
    async with connect(lobby.url, create=True, config=loopback_config()) as session:
        host = _Host(session)
        ticking = asyncio.create_task(host.run())
        try:
            page = await open_play(browser, lobby, session.room)
            pid = await page.evaluate("window.demo.session.peerId")
            await host.wait(host.placed(pid))
            yield session, host, page, pid
        finally:
            ticking.cancel()


async def test_play_page_from_the_lobby_moves_on_the_python_host(
    lobby: LobbyServer, browser: Any, tmp_path: Path
) -> None:
    async with hosted_page(lobby, browser) as (session, host, page, pid):
        assert await page.evaluate("window.demo.session.url") == lobby.url + "/"
        await steer_right(page, host, pid)
        # Prediction: our circle is where the host will put it, ahead of the snapshots.
        await wait_js(page, "() => window.demo.snapshots > 10 && window.demo.me.predictor")
        drawn = await page.evaluate("window.demo.me.drawn()")
        assert drawn["x"] == pytest.approx(host.x_of(pid), abs=60)
        # The net graph has a row for the host: RTT samples and the ICE path.
        await wait_js(
            page,
            "(h) => { const r = window.demo.graph.peers.get(h);"
            " return r && r.rtts.length > 0 && r.path !== null; }",
            session.peer_id,
        )
        path = await page.evaluate("(h) => window.demo.graph.peers.get(h).path", session.peer_id)
        assert path in ("host", "srflx")  # loopback: no relay; prflx counts as srflx
        shot = artifact_dir(tmp_path) / "play_page.png"
        await page.screenshot(path=str(shot))
        assert shot.stat().st_size > 1000
        assert host.bad_inputs == 0 and page.page_errors == []
        await page.close()


def _conn_of(lobby: LobbyServer, pid: str) -> Any:
    """The lobby's websocket of peer ``pid`` (to cut it as a network drop would)."""
    conn = next(c for c in lobby.core.connections() if lobby.core.peer_id(c) == pid)
    return lobby._links[conn].ws


async def test_page_rejoins_after_a_lobby_drop_and_after_a_reload(
    lobby: LobbyServer, browser: Any
) -> None:
    async with hosted_page(lobby, browser) as (_session, host, page, pid):
        _conn_of(lobby, pid).transport.abort()  # no close frame: the seat is kept
        await wait_js(page, "() => window.demo.lobbyEvents.some((e) => e.type === 'LobbyRejoined')")
        assert await page.evaluate("window.demo.session.peerId") == pid
        await host.wait(lambda: any(isinstance(e, PeerReconnected) for e in host.seen))
        assert any(isinstance(e, PeerReconnecting) and e.peer_id == pid for e in host.seen)
        await steer_right(page, host, pid)  # the peer link stayed up meanwhile

        # A reload: the new page takes the same seat back (sessionStorage token).
        await page.reload()
        await wait_js(page, "() => window.demo && window.demo.session")
        assert await page.evaluate("window.demo.session.peerId") == pid
        await wait_js(page, "() => window.demo.me.predictor")
        await steer_right(page, host, pid)
        assert host.bad_inputs == 0 and page.page_errors == []
        await page.close()


async def test_quick_match_and_owner_controls_browser_and_python(
    lobby: LobbyServer, browser: Any, js_server: str
) -> None:
    page = await open_page(browser, f"{js_server}/test/harness.html", "document.title === 'ready'")
    opts = {"quickMatch": {"game": "arena", "size": 2}}
    browser_join = asyncio.create_task(
        page.evaluate("([u, o]) => window.join(u, o)", [lobby.url, opts])
    )
    await wait_until(
        lambda: lobby.core.stats().quick_match_waiting >= 1 or browser_join.done(),
        "browser waiting in the quick-match queue",
    )
    py_opts = {"game": "arena", "size": 2}
    async with connect(lobby.url, quick_match=py_opts, config=loopback_config()) as py:
        me = await browser_join
        assert me["room"] == py.room and py.host_id == me["peerId"], "first in line hosts"
        await py.wait_for_peers(1, timeout=TIMEOUT)
        await page.evaluate(
            "([i, ms]) => window.waitLog(i, (l) => l.some((e) => e.type === 'PeerConnected'), ms)",
            [me["index"], MS],
        )
        # Owner controls from the browser, seen by the Python session.
        await page.evaluate(
            "(i) => window.sessions[i].updateMetadata({ map: 'dunes' })", me["index"]
        )
        await page.evaluate("(i) => window.sessions[i].lock(true)", me["index"])
        await wait_until(
            lambda: py.locked and py.metadata.get("map") == "dunes", "room_updated at Python"
        )
        refused = await page.evaluate(
            "async ([u, room]) => { try { await window.netcode.connect(u, { room }); return null; }"
            " catch (e) { return e.code; } }",
            [lobby.url, py.room],
        )
        assert refused == "room_locked"
        await page.evaluate(
            "([i, p]) => window.sessions[i].kick(p, 'afk')", [me["index"], py.peer_id]
        )
        kicked = await py.next_event(timeout=TIMEOUT)
        while not isinstance(kicked, Kicked):
            kicked = await py.next_event(timeout=TIMEOUT)
        assert kicked.reason == "afk"
    # listRooms: a public Python room, filtered by game.
    meta = {"game": "pong"}
    async with connect(lobby.url, create=True, metadata=meta, config=loopback_config()) as room:
        rooms = await page.evaluate(
            "(u) => window.netcode.listRooms(u, { game: 'pong' })", lobby.url
        )
        assert [r["room"] for r in rooms] == [room.room]
        assert rooms[0]["metadata"] == meta and rooms[0]["players"] == 1
    assert page.page_errors == []
    await page.close()


def _demo_env() -> dict[str, str]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


async def test_the_url_the_demo_prints_plays_in_the_same_match(
    browser: Any, tmp_path: Path
) -> None:
    """``python -m demo_game`` (embedded lobby, host process, 2 bots, the pygame player)
    prints a URL; the browser opening it plays in that match: the pygame player sees
    the browser's circle move, the browser draws everyone."""
    stats = tmp_path / "main.json"
    cmd = [sys.executable, "-m", "demo_game", "--headless", "--seed", "3"]
    cmd += ["--duration", str(20 * TIMESCALE), "--bot-drop-after", "0", "--stats-json", str(stats)]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=ROOT,
        env=_demo_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = ""
        async with asyncio.timeout(60 * TIMESCALE):
            while not url:
                line = (await proc.stdout.readline()).decode()
                assert line, "the demo ended without printing the URL"
                if "play in a browser: " in line:
                    url = line.split("play in a browser: ", 1)[1].split()[0]
        page = await open_page(browser, url + "&loopback=1", "window.demo && window.demo.session")
        pid = await page.evaluate("window.demo.session.peerId")
        # Everyone reaches the page: the pygame player and the 2 bots (the host has no player).
        await wait_js(
            page,
            "(me) => window.demo.me.predictor && window.demo.latest &&"
            " [...window.demo.latest.keys()]"
            ".filter((k) => k.startsWith('p:') && k !== 'p:' + me).length >= 3",
            pid,
        )
        start = await page.evaluate("window.demo.me.drawn().x")
        await page.keyboard.down("ArrowLeft" if start > 480 else "ArrowRight")
        await wait_js(
            page,
            "(s) => { const m = window.demo.latest.get('p:' + window.demo.session.peerId);"
            " return m && Math.abs(m.x / 10 - s) > 100; }",
            start,
        )
        await page.keyboard.up("ArrowLeft" if start > 480 else "ArrowRight")
        shot = artifact_dir(tmp_path) / "demo_with_browser.png"
        await page.screenshot(path=str(shot))
        assert page.page_errors == []
        async with asyncio.timeout(90 * TIMESCALE):
            _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    main = json.loads(stats.read_text())
    assert main["moved"].get(pid, 0.0) > 50.0, "the pygame player saw the browser player move"
    assert main["bad_packets"] == 0
