"""on_state / on_snapshot: state handled right in the receive path, no queue hop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from netcode.errors import ConfigError
from netcode.events import EventReceived, SnapshotReceived, StateReceived
from netcode.net.lobby_server import LobbyServer
from tests.helpers import TIMEOUT, EventLog, mesh, running_lobby

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def test_state_handler_replaces_the_queue_for_state_only(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        got: list[StateReceived] = []
        ten = asyncio.Event()

        def on_state(event: StateReceived) -> None:
            got.append(event)
            if len(got) >= 10:
                ten.set()

        b.on_state(on_state)
        for i in range(10):
            a.send_state({"i": i})
            a.send_event(i)
            await asyncio.sleep(0)  # let each go out as its own packet
        await asyncio.wait_for(ten.wait(), TIMEOUT)
        assert [e.data["i"] for e in got] == sorted({e.data["i"] for e in got})
        log = EventLog(b)
        await log.wait_count(EventReceived, 10, a.peer_id)  # events still queue
        assert log.of(StateReceived) == []
        b.on_state(None)  # back to the queue
        a.send_state({"i": 99})
        await log.wait_for(lambda evs: any(isinstance(e, StateReceived) for e in evs))


async def test_snapshot_handler_and_a_raising_handler_is_counted(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        calls = asyncio.Event()

        def broken(event: SnapshotReceived) -> None:
            calls.set()
            raise RuntimeError("game bug")

        b.on_snapshot(broken)
        a.send_snapshot({1: {"x": 1.0}})
        await asyncio.wait_for(calls.wait(), TIMEOUT)
        assert b.handler_errors == 1
        log = EventLog(b)
        a.send_event("still alive")  # the link survived the handler's exception
        await log.wait_count(EventReceived, 1, a.peer_id)
        with pytest.raises(ConfigError):
            b.on_state(42)  # type: ignore[arg-type]
