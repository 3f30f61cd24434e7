"""The browser demo page (js/demo) plays in a Python-hosted demo_game match.

A Python session runs demo_game's authoritative HostGame (as ``python -m demo_game``
hosts it); the page joins its room by code, steers with the keyboard, and its player
moves on the Python side. A screenshot of the page is saved as a test artifact.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from demo_game.host import HostGame
from demo_game.messages import decode_inputs
from netcode import DecodeError
from netcode.events import Event, PeerConnected, StateReceived
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, loopback_config, running_lobby

__all__: list[str] = []

pytestmark = pytest.mark.timeout(90 * TIMESCALE)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


class _Host:
    """The host half of demo_game's loop: inputs in, HostGame ticks, snapshots out."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.game = HostGame(local_pid=None)
        self.bad_inputs = 0
        self.waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def on_event(self, ev: Event) -> None:
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
        async with asyncio.timeout(TIMEOUT):
            await fut


def _artifact_dir(tmp_path: Path) -> Path:
    where = os.environ.get("NETCODE_TEST_ARTIFACTS")
    out = Path(where) if where else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


async def test_play_page_player_moves_on_python_host(
    lobby: LobbyServer, browser: Any, js_server: str, tmp_path: Path
) -> None:
    async with connect(lobby.url, create=True, config=loopback_config()) as session:
        host = _Host(session)
        ticking = asyncio.create_task(host.run())
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            query = f"lobby={lobby.url}&room={session.room}&loopback=1"
            await page.goto(f"{js_server}/demo/index.html?{query}")
            await page.wait_for_function(
                "!!(window.demo && window.demo.session)", polling=50, timeout=TIMEOUT * 1000
            )
            pid = await page.evaluate("window.demo.session.peerId")

            def joined() -> bool:
                return pid in host.game.world.players and bool(host.game.acks().get(pid, -1) >= 0)

            await host.wait(joined)
            start = host.game.world.players[pid].x
            await page.keyboard.down("ArrowRight")
            await host.wait(lambda: host.game.world.players[pid].x > start + 50)
            await page.keyboard.up("ArrowRight")
            await page.wait_for_function(
                "window.demo.snapshots > 10", polling=50, timeout=TIMEOUT * 1000
            )
            shot = _artifact_dir(tmp_path) / "play_page.png"
            await page.screenshot(path=str(shot))
            assert shot.stat().st_size > 1000
            drawn = await page.evaluate(
                "(pid) => window.demo.buffer.sample(performance.now() / 1000).has('p:' + pid)", pid
            )
            assert drawn, "the page draws its own player from the host's snapshots"
            assert host.bad_inputs == 0 and errors == []
            await page.close()
        finally:
            ticking.cancel()
