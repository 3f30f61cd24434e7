"""Configuration mismatches fail fast (docs/PROTOCOL.md 2.1.1): real lobby + aiortc.

Every test runs with ``connect_timeout_s`` far above the wait bound, so an event that
arrives at all arrived because of the hello, never because of the connect timeout.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from netcode.config import ChannelConfig, SessionConfig
from netcode.events import PeerConnected, PeerConnectFailed, PeerLost
from netcode.lobby.messages import SignalMsg
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from netcode.protocol import hello
from tests.helpers import TIMEOUT, EventLog, loopback_config, running_lobby

__all__: list[str] = []

pytestmark = pytest.mark.timeout(60)

# The connect timeout is 6x the longest wait: only the hello can end these links in time.
SLOW_TIMEOUT = 6 * TIMEOUT
BASE = loopback_config(connect_timeout_s=SLOW_TIMEOUT)
CHAT_ORDERED = loopback_config(
    connect_timeout_s=SLOW_TIMEOUT,
    channels=(
        ChannelConfig.unreliable(),
        ChannelConfig.reliable_ordered(),
        ChannelConfig(label="chat", id=3, ordered=True),
    ),
)
CHAT_UNORDERED = loopback_config(
    connect_timeout_s=SLOW_TIMEOUT,
    channels=(
        ChannelConfig.unreliable(),
        ChannelConfig.reliable_ordered(),
        ChannelConfig(label="chat", id=3, ordered=False),
    ),
)
DIFF = 'channel 3 "chat": ordered true vs false'
DIFF_BACK = 'channel 3 "chat": ordered false vs true'


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


@contextlib.asynccontextmanager
async def pair(
    url: str,
    first: SessionConfig,
    second: SessionConfig,
    rewrite: Callable[[str, dict[str, Any]], None] | None = None,
) -> AsyncIterator[tuple[Session, Session]]:
    """``a`` creates the room (answers), ``b`` joins (offers). ``rewrite(kind, data)``
    edits every signal ``a`` receives, before ``a`` handles it."""
    a = await connect(url, create=True, config=first)
    b: Session | None = None
    try:
        if rewrite is not None:
            original = a._on_signal

            def on_signal(msg: SignalMsg) -> None:
                if isinstance(msg.data, dict):
                    rewrite(msg.kind, msg.data)
                original(msg)

            a._on_signal = on_signal  # type: ignore[method-assign]
        b = await connect(url, room=a.room, config=second)
        yield a, b
    finally:
        await a.close()
        if b is not None:
            await b.close()


async def lost(session: Session, peer_id: str) -> PeerLost:
    log = EventLog(session)
    event = await log.wait_event(PeerLost, peer_id)
    assert not log.of(PeerConnected, peer_id), "a mismatched peer never connects"
    assert not log.of(PeerConnectFailed, peer_id)
    return event


async def test_different_channels_fail_fast_on_both_sides(
    lobby: LobbyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="netcode.link")
    async with pair(lobby.url, CHAT_ORDERED, CHAT_UNORDERED) as (a, b):
        on_a = await lost(a, b.peer_id)  # the answerer checked the offer's hello
        on_b = await lost(b, a.peer_id)  # the offerer heard it in the mismatch signal
        assert (on_a.reason, on_b.reason) == ("mismatch", "mismatch")
        assert on_a.detail == f"this side vs the peer: {DIFF}"
        assert on_b.detail == f"this side vs the peer: {DIFF_BACK}"
        assert a.peers[b.peer_id].state == "lost"
        assert a.link_view(b.peer_id) is None, "the link is freed"
        assert a.stats(b.peer_id).bad_packets == 0, "a valid hello is no bad packet"
    logged = [r.getMessage() for r in caplog.records if "configuration mismatch" in r.message]
    assert any(DIFF in line for line in logged), logged
    assert any(DIFF_BACK in line for line in logged), logged


async def test_quantize_and_limits_mismatch(lobby: LobbyServer) -> None:
    other = loopback_config(connect_timeout_s=SLOW_TIMEOUT, snapshot_quantize={"x": 0.01})
    async with pair(lobby.url, BASE, other) as (a, b):
        event = await lost(a, b.peer_id)
        assert event.reason == "mismatch"
        assert "snapshot_quantize: hash none vs " in event.detail
        assert (await lost(b, a.peer_id)).reason == "mismatch"


async def test_the_offerer_checks_the_answer(lobby: LobbyServer) -> None:
    """An answerer that checks nothing (an older client: it saw no hello) still
    answers with its hello; the offerer refuses it and tells the answerer."""

    def strip(kind: str, data: dict[str, Any]) -> None:
        if kind == "offer":
            data.pop(hello.HELLO_KEY, None)

    async with pair(lobby.url, CHAT_ORDERED, CHAT_UNORDERED, strip) as (a, b):
        on_b = await lost(b, a.peer_id)
        assert on_b.reason == "mismatch" and on_b.detail.endswith(DIFF_BACK)
        on_a = await lost(a, b.peer_id)
        assert on_a.reason == "mismatch" and on_a.detail.endswith(DIFF)


async def test_no_hello_is_accepted(lobby: LobbyServer, caplog: pytest.LogCaptureFixture) -> None:
    """A peer that sends no hello (older or independent client) connects as before."""
    caplog.set_level(logging.DEBUG, logger="netcode.rtc")

    def strip(kind: str, data: dict[str, Any]) -> None:
        if kind == "offer":
            data.pop(hello.HELLO_KEY, None)

    async with pair(lobby.url, BASE, BASE, strip) as (a, b):
        await a.wait_for_peers(1, TIMEOUT)
        await b.wait_for_peers(1, TIMEOUT)
    assert any("offer without a hello" in r.getMessage() for r in caplog.records)


async def test_invalid_hello_is_a_counted_bad_message(lobby: LobbyServer) -> None:
    def hostile(kind: str, data: dict[str, Any]) -> None:
        if kind == "offer":
            data[hello.HELLO_KEY] = {"v": 1, "channels": [{"id": "x"}] * 5000}

    async with pair(lobby.url, BASE, BASE, hostile) as (a, b):
        on_a = await lost(a, b.peer_id)
        assert on_a.reason == "mismatch"
        assert on_a.detail == "invalid hello from the peer: 5000 channels, at most 1024"
        assert a.stats(b.peer_id).bad_packets == 1
        # b's own configuration equals a's: it can only quote what a said.
        on_b = await lost(b, a.peer_id)
        assert on_b.detail == f"the peer refused our configuration: {on_a.detail}"
