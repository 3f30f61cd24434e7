"""A browser and a Python peer whose configurations differ refuse each other at once.

Real Chromium, real lobby, real Python session (docs/PROTOCOL.md 2.1.1). Connect
timeouts are set far above the wait bound, so a PeerLost("mismatch") that arrives
came from the hello, never from a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from netcode.config import ChannelConfig
from netcode.events import PeerConnected, PeerLost
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import connect
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, EventLog, loopback_config, running_lobby

__all__: list[str] = []

pytestmark = pytest.mark.timeout(90 * TIMESCALE)

SLOW_MS = int(6 * TIMEOUT * 1000)
MS = int(TIMEOUT * 1000)
PY_CHAT = loopback_config(
    connect_timeout_s=6 * TIMEOUT,
    channels=(
        ChannelConfig.unreliable(),
        ChannelConfig.reliable_ordered(),
        ChannelConfig(label="chat", id=3, ordered=True),
    ),
)
JS_CHAT_UNORDERED = [
    {"label": "state", "id": 1, "ordered": False, "maxRetransmits": 0},
    {"label": "events", "id": 2, "ordered": True},
    {"label": "chat", "id": 3, "ordered": False},
]


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def join(page: Any, url: str, **opts: Any) -> dict[str, Any]:
    opts = {"connectTimeoutMs": SLOW_MS, **opts}
    info: dict[str, Any] = await page.evaluate("([u, o]) => window.join(u, o)", [url, opts])
    return info


async def page_lost(page: Any, index: int) -> dict[str, Any]:
    """The tab's PeerLost event (waits for it); no PeerConnected came before."""
    await page.evaluate(
        "([i, ms]) => window.waitLog(i, (log) => log.some((e) => e.type === 'PeerLost'), ms)",
        [index, MS],
    )
    log: list[dict[str, Any]] = await page.evaluate(
        "(i) => window.sessions[i].log.map((e) => ({type: e.type, reason: e.reason ?? null,"
        " detail: e.detail ?? null}))",
        index,
    )
    assert not [e for e in log if e["type"] in ("PeerConnected", "PeerConnectFailed")], log
    return next(e for e in log if e["type"] == "PeerLost")


async def test_browser_offers_different_channels(lobby: LobbyServer, page: Any) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    async with connect(lobby.url, create=True, config=PY_CHAT) as py:
        log = EventLog(py)
        me = await join(page, lobby.url, room=py.room, channels=JS_CHAT_UNORDERED)
        on_py = await log.wait_event(PeerLost, me["peerId"])
        assert on_py.reason == "mismatch"
        assert on_py.detail == 'this side vs the peer: channel 3 "chat": ordered true vs false'
        assert not log.of(PeerConnected)
        on_js = await page_lost(page, me["index"])
        assert on_js["reason"] == "mismatch"
        assert on_js["detail"] == 'this side vs the peer: channel 3 "chat": ordered false vs true'
    assert any("configuration mismatch" in w for w in warnings), warnings
    assert page.page_errors == []


async def test_python_offers_different_quantization(lobby: LobbyServer, page: Any) -> None:
    me = await join(page, lobby.url, create=True, quantize={"x": 0.01})
    cfg = loopback_config(connect_timeout_s=6 * TIMEOUT, snapshot_quantize={"x": 0.5})
    async with connect(lobby.url, room=me["room"], config=cfg) as py:
        log = EventLog(py)
        on_js = await page_lost(page, me["index"])  # the browser answers: it checks the offer
        assert on_js["reason"] == "mismatch"
        assert on_js["detail"].startswith("this side vs the peer: snapshot_quantize: hash ")
        on_py = await log.wait_event(PeerLost)
        assert on_py.reason == "mismatch"
        assert "snapshot_quantize: hash " in on_py.detail
    assert page.page_errors == []
