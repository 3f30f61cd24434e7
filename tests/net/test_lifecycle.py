"""Match lifecycle through the session API: star topology, room control, quick match,
reconnect with the same identity, host migration (real lobby and peers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import netcode
from netcode.config import LobbyConfig
from netcode.errors import ConnectionClosed, LobbyError
from netcode.events import (
    EventReceived,
    HostChanged,
    Kicked,
    PeerConnected,
    PeerLeft,
    PeerLost,
    PeerReconnected,
    PeerReconnecting,
    StateReceived,
)
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from tests.helpers import LOOPBACK, TIMEOUT, EventLog, lobby_in_thread, running_lobby

pytestmark = pytest.mark.timeout(90)

FAST = LobbyConfig(reconnect_grace_s=20.0, host_grace_s=0.3)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby(FAST) as server:
        yield server


@contextlib.asynccontextmanager
async def star(url: str, clients: int) -> AsyncIterator[tuple[Session, list[Session]]]:
    """A star room: the creator is the host; every session is closed on exit."""
    sessions: list[Session] = []
    try:
        host = await connect(
            url, create=True, topology="star", max_players=clients + 1, config=LOOPBACK
        )
        sessions.append(host)
        for _ in range(clients):
            sessions.append(await connect(url, room=host.room, config=LOOPBACK))
        async with asyncio.timeout(TIMEOUT):
            await host.wait_for_peers(clients)
            for s in sessions[1:]:
                await s.wait_for_peers(clients)  # the host directly, the others through it
        yield host, sessions[1:]
    finally:
        for s in sessions:
            await s.close()


async def crash(session: Session) -> None:
    """What a killed process leaves behind: no goodbye, no rejoin, sockets just gone."""
    session._signal_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session._signal_task
    await session._client.abort()
    for link in session._live():
        await link.pc.close()


async def test_star_clients_link_only_to_the_host_and_hear_each_other_through_it(
    lobby: LobbyServer,
) -> None:
    async with star(lobby.url, 3) as (host, clients):
        a, b, c = clients
        assert host.topology == a.topology == "star"
        assert host.is_host and a.host_id == host.peer_id and not a.is_host
        assert a.link_view(b.peer_id) is None and a.link_view(host.peer_id) is not None
        assert {p for p in host.peers} == {a.peer_id, b.peer_id, c.peer_id}
        logs = {s.peer_id: EventLog(s) for s in (host, a, b, c)}
        for i in range(20):  # a broadcasts; b and c get it through the host, as from a
            a.send_state({"i": i})
            a.send_event(i)
        a.send_event("to b only", to=b.peer_id)
        for s in (host, b, c):
            await logs[s.peer_id].wait_count(EventReceived, 20, a.peer_id)
            states = logs[s.peer_id].of(StateReceived, a.peer_id)
            assert states and [e.data["i"] for e in states] == sorted({e.data["i"] for e in states})
        await logs[b.peer_id].wait_for(
            lambda evs: any(isinstance(e, EventReceived) and e.data == "to b only" for e in evs)
        )
        assert all(e.data != "to b only" for e in logs[c.peer_id].of(EventReceived))
        assert all(e.data != "to b only" for e in logs[host.peer_id].of(EventReceived))
        # The host's own sends go straight to every client.
        host.send_snapshot({1: {"x": 1.0}})
        host.send_event("from host")
        for s in clients:
            await logs[s.peer_id].wait_for(
                lambda evs: any(isinstance(e, EventReceived) and e.data == "from host" for e in evs)
            )


async def test_only_the_host_kicks_and_locks(lobby: LobbyServer) -> None:
    async with star(lobby.url, 2) as (host, (a, b)):
        with pytest.raises(LobbyError) as err:
            await a.kick(b.peer_id)
        assert err.value.code == "not_owner"
        log_a, log_b = EventLog(a), EventLog(b)
        await host.kick(b.peer_id, "griefing")
        kicked = await log_b.wait_event(Kicked)
        assert kicked.reason == "griefing"
        left = await log_a.wait_event(PeerLeft, b.peer_id)
        assert left.reason == "kicked"
        with pytest.raises(ConnectionClosed):
            b.send_event("still here?")
        await host.lock()
        with pytest.raises(LobbyError) as err:
            await connect(lobby.url, room=host.room, config=LOOPBACK)
        assert err.value.code == "room_locked"
        await host.update_metadata({"map": "dust"})
        rooms = await netcode.list_rooms(lobby.url, config=LOOPBACK)
        assert rooms[0].metadata == {"map": "dust"} and rooms[0].locked


async def test_quick_match_groups_nine_arrivals_into_rooms_of_four(lobby: LobbyServer) -> None:
    ask = {"game": "arena", "size": 4}

    async def arrive() -> Session:
        return await connect(lobby.url, quick_match=ask, config=LOOPBACK)

    tasks = [asyncio.create_task(arrive()) for _ in range(9)]
    try:
        done: set[asyncio.Task[Session]] = set()
        waiting: set[asyncio.Task[Session]] = set(tasks)
        while len(done) < 8:
            placed, waiting = await asyncio.wait(
                waiting, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            assert placed, f"only {len(done)} placed"
            done |= placed
        # Eight are placed; the ninth waits for three more players.
        assert len(waiting) == 1
        sessions = [t.result() for t in done]
        rooms: dict[str, int] = {}
        for s in sessions:
            rooms[s.room] = rooms.get(s.room, 0) + 1
        assert sorted(rooms.values()) == [4, 4]
        async with asyncio.timeout(TIMEOUT):
            for s in sessions:
                await s.wait_for_peers(3)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await (await t).close()


async def test_a_dropped_lobby_connection_takes_the_seat_back(lobby: LobbyServer) -> None:
    a = await connect(lobby.url, create=True, config=LOOPBACK)
    async with a, connect(lobby.url, room=a.room, config=LOOPBACK) as b:
        await a.wait_for_peers(1, TIMEOUT)
        log_b = EventLog(b)
        token = a.reconnect_token
        assert token
        await a._client.abort()  # the lobby socket dies; peer links stay up
        await log_b.wait_event(PeerReconnecting, a.peer_id)
        await log_b.wait_event(PeerReconnected, a.peer_id)
        assert a.lobby_connected and a.peer_id in b.peers
        a.send_event("after")
        await log_b.wait_for(
            lambda evs: any(isinstance(e, EventReceived) and e.data == "after" for e in evs)
        )


async def test_a_restarted_player_rejoins_with_its_token(lobby: LobbyServer) -> None:
    async with connect(lobby.url, create=True, config=LOOPBACK) as a:
        b = await connect(lobby.url, room=a.room, config=LOOPBACK)
        await a.wait_for_peers(1, TIMEOUT)
        b_id, token = b.peer_id, b.reconnect_token
        log_a = EventLog(a)
        await crash(b)
        await log_a.wait_event(PeerReconnecting, b_id)
        async with connect(lobby.url, rejoin_token=token, config=LOOPBACK) as b2:
            assert b2.peer_id == b_id and b2.room == a.room
            await log_a.wait_event(PeerReconnected, b_id)
            await b2.wait_for_peers(1, TIMEOUT)
            b2.send_event("back")
            await log_a.wait_for(
                lambda evs: any(isinstance(e, EventReceived) and e.data == "back" for e in evs)
            )
            assert sum(isinstance(e, PeerConnected) for e in log_a.of(PeerConnected, b_id)) >= 1
        with contextlib.suppress(Exception):
            await b.close()


async def test_bad_tokens_are_refused(lobby: LobbyServer) -> None:
    with pytest.raises(LobbyError) as err:
        await connect(lobby.url, rejoin_token="not-a-token", config=LOOPBACK)
    assert err.value.code == "bad_token"


async def test_host_lost_in_a_star_moves_the_hub_and_play_goes_on(lobby: LobbyServer) -> None:
    async with star(lobby.url, 3) as (host, clients):
        logs = [EventLog(c) for c in clients]
        await crash(host)
        changed = [await log.wait_event(HostChanged) for log in logs]
        assert len({c.peer_id for c in changed}) == 1 and changed[0].previous == host.peer_id
        new_host = next(c for c in clients if c.peer_id == changed[0].peer_id)
        others = [c for c in clients if c is not new_host]
        assert new_host.is_host and all(c.host_id == new_host.peer_id for c in others)
        async with asyncio.timeout(TIMEOUT):  # the star is rebuilt around the new host
            await new_host.wait_for_peers(2)
            for c in others:
                await c.wait_for_peers(2)  # the new host, and the other client through it
        log_new, log_far = EventLog(new_host), EventLog(others[1])
        others[0].send_event("hello, everyone")
        for log in (log_new, log_far):
            await log.wait_for(
                lambda evs: any(
                    isinstance(e, EventReceived) and e.data == "hello, everyone" for e in evs
                )
            )
        assert log_far.of(EventReceived)[-1].peer_id == others[0].peer_id


async def test_a_host_change_missed_while_away_is_caught_up_on_rejoin(
    lobby: LobbyServer,
) -> None:
    async with star(lobby.url, 2) as (host, (x, y)):
        log_x, log_y = EventLog(x), EventLog(y)
        x._urls = ("ws://127.0.0.1:1",)  # its lobby unreachable for a while (refused)
        await x._client.abort()
        await log_y.wait_event(PeerReconnecting, x.peer_id)
        await crash(host)  # the host dies while x cannot hear the lobby
        changed = await log_y.wait_event(HostChanged)
        assert changed.peer_id == y.peer_id and y.is_host
        x._urls = (lobby.url,)  # back: x rejoins and learns what it missed
        missed = await log_x.wait_event(HostChanged)
        assert (missed.peer_id, missed.previous) == (y.peer_id, host.peer_id)
        assert x.host_id == y.peer_id and not missed.you
        # The star is rebuilt around y: x links to it again.
        await log_x.wait_for(lambda _: getattr(x.peers.get(y.peer_id), "state", "") == "connected")
        x.send_event("caught up")
        await log_y.wait_for(
            lambda evs: any(isinstance(e, EventReceived) and e.data == "caught up" for e in evs)
        )


def connected_twice(events: list[Any]) -> list[str]:
    """Peers announced PeerConnected again with no PeerLost/PeerLeft in between."""
    up: set[str] = set()
    twice = []
    for e in events:
        if isinstance(e, PeerConnected):
            if e.peer_id in up:
                twice.append(e.peer_id)
            up.add(e.peer_id)
        elif isinstance(e, PeerLost | PeerLeft):
            up.discard(e.peer_id)
    return twice


async def test_a_host_replaced_while_its_links_work_is_lost_before_the_new_star(
    lobby: LobbyServer,
) -> None:
    async with star(lobby.url, 3) as (host, (x, y, z)):
        logs = {c.peer_id: EventLog(c) for c in (x, y, z)}
        host._urls = ("ws://127.0.0.1:1",)  # its lobby socket dies for good; links stay
        await host._client.abort()
        changed = await logs[x.peer_id].wait_event(HostChanged)
        new_host = next(c for c in (x, y, z) if c.peer_id == changed.peer_id)
        for c in (x, y, z):  # the star rebuilt: everyone connected to everyone again
            log = logs[c.peer_id]
            others = {s.peer_id for s in (x, y, z)} - {c.peer_id}

            def rebuilt(evs: list[Any], others: set[str] = others) -> bool:
                return others <= reconnected(evs)

            await log.wait_for(rebuilt)
            assert connected_twice(log.events) == [], (c is new_host, log.events)
            if c is not new_host:  # the old host's link was retired: heard as lost
                lost = [e for e in log.of(PeerLost) if e.peer_id == host.peer_id]
                assert lost and lost[0].detail == "no longer the host"


def reconnected(events: list[Any]) -> set[str]:
    """Peers connected again after the host changed (directly or through the host)."""
    after = next((i for i, e in enumerate(events) if isinstance(e, HostChanged)), len(events))
    return {e.peer_id for e in events[after:] if isinstance(e, PeerConnected)}


def test_the_sync_api_plays_a_star_and_controls_the_room() -> None:
    with (
        lobby_in_thread(FAST) as url,
        netcode.connect_sync(url, create=True, topology="star", config=LOOPBACK) as host,
        netcode.connect_sync(url, room=host.room, config=LOOPBACK) as a,
        netcode.connect_sync(url, room=host.room, config=LOOPBACK) as b,
    ):
        for s in (host, a, b):
            s.wait_for_peers(2, TIMEOUT)
        assert a.topology == "star" and a.host_id == host.peer_id and host.is_host
        assert a.reconnect_token
        a.send_event("through the host")
        got: list[Any] = []
        while not any(isinstance(e, EventReceived) for e in got):
            got.append(b.next_event(timeout=TIMEOUT))
        event = next(e for e in got if isinstance(e, EventReceived))
        assert (event.peer_id, event.data) == (a.peer_id, "through the host")
        host.update_metadata({"map": "dust"})
        host.kick(b.peer_id, "bye")
        with pytest.raises(LobbyError):
            a.lock()  # not the host
