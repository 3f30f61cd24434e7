"""Issue 11's smaller API gaps: clear errors for misuse, blocking next_event, counted
unsent events, sender timestamps on received state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

import netcode
from netcode.errors import ConfigError
from netcode.events import Event, EventReceived, PeerConnected, SnapshotReceived, StateReceived
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import connect
from netcode.protocol import wire
from tests.helpers import LOOPBACK, TIMEOUT, EventLog, lobby_in_thread, mesh, running_lobby

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def test_plain_with_on_connect_points_to_async_with(lobby: LobbyServer) -> None:
    with pytest.raises(ConfigError, match="async with"), connect(lobby.url, config=LOOPBACK):
        pass


async def test_connect_sync_inside_a_running_loop_fails_fast(lobby: LobbyServer) -> None:
    with pytest.raises(ConfigError, match="running asyncio event loop"):
        netcode.connect_sync(lobby.url, config=LOOPBACK)


async def test_event_with_nobody_there_is_counted_and_logged_once(
    lobby: LobbyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netcode.session")
    async with connect(lobby.url, create=True, config=LOOPBACK) as alone:
        alone.send_event("hello?")
        alone.send_event("anyone?")
        assert alone.events_unsent == 2
    assert sum("not delivered" in r.getMessage() for r in caplog.records) == 1


async def test_state_and_snapshots_carry_the_senders_timestamp(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log = EventLog(b)
        loop_now = asyncio.get_running_loop().time()
        a.send_state({"x": 1})
        a.send_snapshot({1: {"x": 1.0}})
        a.send_event("flush")
        await log.wait_count(EventReceived, 1, a.peer_id)
        state = log.of(StateReceived, a.peer_id)[0]
        # Both sessions run on this loop: the stamp is this loop's clock, a moment ago.
        age_us = wire.us_elapsed(wire.timestamp_us(loop_now + 5.0), state.sent_us)
        assert 0 < age_us <= 5_000_000 + 1_000_000
        snaps = log.of(SnapshotReceived, a.peer_id)
        assert snaps and snaps[0].sent_us != 0


def test_sync_next_event_blocks_until_an_event() -> None:
    with lobby_in_thread() as url, netcode.connect_sync(url, create=True, config=LOOPBACK) as host:
        with pytest.raises(TimeoutError):
            host.next_event(timeout=0.05)
        with netcode.connect_sync(url, room=host.room, config=LOOPBACK) as guest:
            seen: list[Event] = []
            while not any(isinstance(e, PeerConnected) for e in seen):
                seen.append(guest.next_event(timeout=TIMEOUT))
            guest.send_event("hi")
            got: list[Event] = []
            while not any(isinstance(e, EventReceived) for e in got):
                got.append(host.next_event(timeout=TIMEOUT))
            assert [e.data for e in got if isinstance(e, EventReceived)] == ["hi"]


async def test_list_rooms_from_the_high_level_api(lobby: LobbyServer) -> None:
    async with connect(lobby.url, create=True, metadata={"game": "arena"}, config=LOOPBACK) as host:
        rooms = await netcode.list_rooms(lobby.url, config=LOOPBACK)
        assert [r.room for r in rooms] == [host.room]
        assert rooms[0].players == 1 and rooms[0].metadata == {"game": "arena"}
        assert await netcode.list_rooms(lobby.url, game="other", config=LOOPBACK) == []


def test_list_rooms_sync() -> None:
    with lobby_in_thread() as url, netcode.connect_sync(url, create=True, config=LOOPBACK) as host:
        rooms = netcode.list_rooms_sync(url, config=LOOPBACK)
        assert [r.room for r in rooms] == [host.room]
