"""Several lobby nodes in one process sharing rooms through a bus.

Every scenario runs against the in-process :class:`MemoryBus` and, when
``redis-server`` is installed, against a real Redis (one :class:`RedisBus` per
node), so both implementations of :class:`LobbyBus` keep the same behaviour.
The separate-process cluster is in tests/net/test_lobby_cluster.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import pytest

from netcode.config import LobbyConfig
from netcode.errors import LobbyError, RoomFull
from netcode.lobby.cluster import decode_snapshot
from netcode.lobby.messages import PeerJoinedMsg, PeerReconnected, SignalMsg
from netcode.net.lobby_bus import Frame, LobbyBus, MemoryBus, encode_bus
from netcode.net.lobby_server import LobbyServer, serve_lobby
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT, raw_client, recv_json, wait_until
from tests.net.redis_util import redis_server

LEASE = 1.5  # short leases (a dead node is noticed within ~2 s), long enough for a busy CI box


class Cluster:
    def __init__(self, make_bus: Callable[[], LobbyBus]) -> None:
        self.make_bus = make_bus
        self.nodes: list[LobbyServer] = []
        self.opened: list[SignalingClient] = []

    async def add(self, **config: Any) -> LobbyServer:
        cfg = LobbyConfig(node_lease_s=LEASE, node_id=f"n{len(self.nodes)}", **config)
        server = await serve_lobby("127.0.0.1", 0, cfg, bus=self.make_bus())
        self.nodes.append(server)
        return server

    async def client(self, node: int) -> SignalingClient:
        c = await SignalingClient.connect(self.nodes[node].url, timeout=TIMEOUT)
        self.opened.append(c)
        return c


@pytest.fixture(params=["memory", "redis"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        if request.param == "memory":
            shared = MemoryBus()
            make: Callable[[], LobbyBus] = lambda: shared  # noqa: E731
        else:
            from netcode.net.lobby_redis import RedisBus

            url = await stack.enter_async_context(redis_server())
            make = lambda: RedisBus(url)  # noqa: E731
        c = Cluster(make)
        try:
            for _ in range(3):
                await c.add()
            yield c
        finally:
            await asyncio.gather(*(x.close() for x in c.opened), return_exceptions=True)
            for node in c.nodes:
                await node.close()


async def next_of(client: SignalingClient, kind: type[Any]) -> Any:
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await client.next_event()
            if isinstance(event, kind):
                return event


async def test_a_room_spans_nodes_presence_and_signals_cross(cluster: Cluster) -> None:
    a, b = await cluster.client(0), await cluster.client(1)
    info = await a.create_room(max_players=4)
    joined = await b.join_room(info.room)
    assert joined.peers == (info.peer_id,)
    assert joined.peer_id == b.peer_id  # the proxied connection keeps its welcome id
    seen = await next_of(a, PeerJoinedMsg)
    assert seen.peer_id == b.peer_id
    await b.send_signal(a.peer_id, "offer", {"sdp": "x" * 500})
    got = await next_of(a, SignalMsg)
    assert (got.sender, got.kind, got.data) == (b.peer_id, "offer", {"sdp": "x" * 500})
    await a.send_signal(b.peer_id, "answer", {"sdp": "y"})
    back = await next_of(b, SignalMsg)
    assert (back.sender, back.kind) == (a.peer_id, "answer")
    assert cluster.nodes[0].core.room_view(info.room) is not None
    assert cluster.nodes[1].core.room_view(info.room) is None  # one home only


async def test_max_players_holds_under_concurrent_joins_over_nodes(cluster: Cluster) -> None:
    owner = await cluster.client(0)
    info = await owner.create_room(max_players=3)
    joiners = [await cluster.client(i % 3) for i in range(9)]
    results = await asyncio.gather(
        *(j.join_room(info.room) for j in joiners), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    full = [r for r in results if isinstance(r, RoomFull)]
    assert (len(ok), len(full)) == (2, 7), results
    view = cluster.nodes[0].core.room_view(info.room)
    assert view is not None and len(view.members) == 3


async def test_room_codes_are_unique_across_nodes(cluster: Cluster) -> None:
    clients = [await cluster.client(i % 3) for i in range(24)]
    infos = await asyncio.gather(*(c.create_room() for c in clients))
    codes = [i.room for i in infos]
    assert len(set(codes)) == len(codes)
    homes = [await cluster.nodes[0].cluster.bus.home(c) for c in codes]  # type: ignore[union-attr]
    assert {h for h in homes} == {"n0", "n1", "n2"}


async def test_list_rooms_merges_other_nodes(cluster: Cluster) -> None:
    a, b = await cluster.client(0), await cluster.client(2)
    info = await a.create_room(metadata={"game": "arena"})

    async def listed() -> bool:
        return info.room in [r.room for r in await b.list_rooms("arena")]

    async with asyncio.timeout(TIMEOUT):
        while not await listed():  # noqa: ASYNC110 - summaries refresh every lease / 3
            await asyncio.sleep(0.05)


async def test_quick_match_groups_players_of_different_nodes(cluster: Cluster) -> None:
    a, b = await cluster.client(1), await cluster.client(2)
    ra, rb = await asyncio.gather(a.quick_match("arena", 2), b.quick_match("arena", 2))
    assert ra.room == rb.room
    assert {ra.peer_id, rb.peer_id} == {a.peer_id, b.peer_id}


async def test_a_dead_node_costs_its_clients_one_reconnect_and_no_room(cluster: Cluster) -> None:
    home, far = await cluster.client(0), await cluster.client(1)
    info = await home.create_room()
    far_info = await far.join_room(info.room)
    await next_of(home, PeerJoinedMsg)
    dead = cluster.nodes[0]
    assert dead.cluster is not None
    # What a client was told (room_joined, peer_joined) is stored before it is sent:
    # the seat is in the snapshot already, and a crash right now cannot lose it.
    stored = await dead.cluster.bus.load(info.room)
    assert stored is not None and len(decode_snapshot(stored).seats) == 2
    await dead.cluster.crash()
    # The proxy closes its client (1012) once the home is found dead.
    async with asyncio.timeout(TIMEOUT):
        while not far.closed:  # noqa: ASYNC110 - the close has no event to await
            await asyncio.sleep(0.02)
    assert far.close_code == 1012
    # Both come back through surviving nodes with their tokens.
    assert info.token is not None and far_info.token is not None
    again = await cluster.client(2)
    back = await again.rejoin(info.token, info.room)
    assert back.peer_id == info.peer_id
    far2 = await cluster.client(1)
    back2 = await far2.rejoin(far_info.token, info.room)
    assert back2.peer_id == far_info.peer_id
    seen = await next_of(again, PeerReconnected)
    assert seen.peer_id == far_info.peer_id
    adopters = [n for n in cluster.nodes[1:] if n.core.room_view(info.room) is not None]
    assert len(adopters) == 1
    view = adopters[0].core.room_view(info.room)
    assert view is not None and view.reconnecting == ()
    # Relays work in the adopted room, across nodes or not.
    await again.send_signal(far_info.peer_id, "offer", {"n": 1})
    assert (await next_of(far2, SignalMsg)).data == {"n": 1}


class GatedBus(MemoryBus):
    """A store whose snapshot writes wait for ``gate`` (``writing`` is set meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.writing = asyncio.Event(), asyncio.Event()
        self.gate.set()

    async def save(self, snapshots: dict[str, bytes], node: str) -> list[str]:
        if not self.gate.is_set():
            self.writing.set()
            await self.gate.wait()
        return await super().save(snapshots, node)


async def test_what_a_client_is_told_is_stored_before_it_is_sent() -> None:
    bus = GatedBus()
    cfg = LobbyConfig(node_lease_s=LEASE, node_id="n0")
    async with await serve_lobby("127.0.0.1", 0, cfg, bus=bus) as node:
        home = await SignalingClient.connect(node.url, timeout=TIMEOUT)
        guest = await SignalingClient.connect(node.url, timeout=TIMEOUT)
        try:
            info = await home.create_room()
            sent = node.observer.sent_by_type
            before = (sent.get("room_joined", 0), sent.get("peer_joined", 0))
            bus.gate.clear()
            joining = asyncio.ensure_future(guest.join_room(info.room))
            async with asyncio.timeout(TIMEOUT):
                await bus.writing.wait()
            # The join is decided and its snapshot is being written: nobody told yet.
            assert (sent.get("room_joined", 0), sent.get("peer_joined", 0)) == before
            assert not joining.done()
            bus.gate.set()
            joined = await joining
            stored = await bus.load(info.room)
            assert stored is not None and len(decode_snapshot(stored).seats) == 2
            assert (await next_of(home, PeerJoinedMsg)).peer_id == joined.peer_id
        finally:
            await asyncio.gather(home.close(), guest.close(), return_exceptions=True)


async def test_a_restarted_store_is_rebuilt_and_cross_node_joins_work(cluster: Cluster) -> None:
    a = await cluster.client(0)
    info = await a.create_room()
    bus = cluster.nodes[0].cluster.bus  # type: ignore[union-attr]
    await _restart_store(bus)
    node0 = cluster.nodes[0].cluster
    assert node0 is not None

    async def rebuilt() -> bool:
        try:
            return await bus.home(info.room) == "n0"
        except Exception:
            return False

    async with asyncio.timeout(TIMEOUT):
        while not await rebuilt():  # noqa: ASYNC110 - polled store state
            await asyncio.sleep(0.05)
    b = await cluster.client(2)
    async with asyncio.timeout(TIMEOUT):
        while True:  # until node 2 sees node 0 alive again
            try:
                joined = await b.join_room(info.room)
                break
            except LobbyError as exc:
                assert exc.code == "unavailable", exc
    assert joined.peers == (info.peer_id,)


async def test_with_the_store_down_nothing_waits_for_it() -> None:
    bus = MemoryBus()
    cfg = LobbyConfig(node_lease_s=LEASE, node_id="n0")
    async with await serve_lobby("127.0.0.1", 0, cfg, bus=bus) as node:
        home = await SignalingClient.connect(node.url, timeout=TIMEOUT)
        guest = await SignalingClient.connect(node.url, timeout=TIMEOUT)
        try:
            info = await home.create_room()
            bus.down = True  # every write fails from now on: the join is answered anyway
            joined = await guest.join_room(info.room)
            assert joined.peers == (info.peer_id,)
            assert (await next_of(home, PeerJoinedMsg)).peer_id == joined.peer_id
        finally:
            await asyncio.gather(home.close(), guest.close(), return_exceptions=True)


async def test_a_room_made_just_after_a_store_restart_is_found_by_other_nodes(
    cluster: Cluster,
) -> None:
    bus = cluster.nodes[0].cluster.bus  # type: ignore[union-attr]
    await _restart_store(bus)
    # At once, before the nodes' leases notice: the code came from a pool claimed in
    # the store that is gone, so only the room's first snapshot write registers it.
    info = await (await cluster.client(0)).create_room()
    b = await cluster.client(1)
    async with asyncio.timeout(TIMEOUT):
        while True:  # "unavailable" until node 0's next heartbeat: never room_not_found
            try:
                joined = await b.join_room(info.room)
                break
            except LobbyError as exc:
                assert exc.code == "unavailable", exc
    assert joined.peers == (info.peer_id,)
    assert await bus.home(info.room) == "n0"


async def _stored(bus: LobbyBus, code: str, *, seats: int) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            data = await bus.load(code)
            if data is not None and len(decode_snapshot(data).seats) == seats:
                return
            await asyncio.sleep(0.01)


async def _restart_store(bus: LobbyBus) -> None:
    if isinstance(bus, MemoryBus):
        bus.restart()
        return
    from netcode.net.lobby_redis import RedisBus

    assert isinstance(bus, RedisBus)
    await bus._redis.flushdb()  # what a restart without persistence loses


async def test_a_proxied_connection_keeps_its_forwarded_address_on_the_home_node() -> None:
    # Behind a trusted proxy, the per-address cap on a room's home node counts the
    # client's address from X-Forwarded-For, not the proxy's.
    bus = MemoryBus()
    cfg = LobbyConfig(node_lease_s=LEASE, trusted_proxies=("127.0.0.0/8",))
    n0, n1 = replace(cfg, node_id="n0"), replace(cfg, node_id="n1")
    async with (
        await serve_lobby("127.0.0.1", 0, n0, bus=bus) as home,
        await serve_lobby("127.0.0.1", 0, n1, bus=bus) as far,
    ):
        owner = await SignalingClient.connect(home.url, timeout=TIMEOUT)
        try:
            info = await owner.create_room()
            headers = {"X-Forwarded-For": "203.0.113.7"}
            async with raw_client(far.url, additional_headers=headers) as ws:
                assert (await recv_json(ws))["type"] == "welcome"
                await ws.send(json.dumps({"type": "join_room", "room": info.room, "rid": 1}))
                assert (await recv_json(ws))["type"] == "room_joined"
                assert home.core.address_slots().get("203.0.113.7") == 1
        finally:
            await owner.close()


async def test_malformed_bus_payloads_are_counted_and_dropped(cluster: Cluster) -> None:
    node = cluster.nodes[1].cluster
    assert node is not None
    garbage = [b"", b"\xff\x00", b"\x93\xa4open", encode_bus(Frame("n9", 1, b"x"))[:-1]]
    await node.bus.publish([("n1", g) for g in garbage])
    await wait_until(lambda: node.bad_messages >= len(garbage), "bad bus messages counted")
    a, b = await cluster.client(0), await cluster.client(1)
    info = await a.create_room()
    assert (await b.join_room(info.room)).room == info.room  # still serving


async def test_a_session_fails_over_to_another_lobby_node(cluster: Cluster) -> None:
    from netcode.net.session import connect

    urls = [cluster.nodes[0].url, cluster.nodes[1].url]
    session = await connect(",".join(urls), create=True)
    try:
        room, me = session.room, session.peer_id
        node0 = cluster.nodes[0].cluster
        assert node0 is not None and cluster.nodes[0].core.room_view(room) is not None
        await _stored(node0.bus, room, seats=1)
        await node0.crash()
        await wait_until(lambda: not session.lobby_connected, "the lost lobby noticed")

        def back() -> bool:
            views = [n.core.room_view(room) for n in cluster.nodes[1:]]
            return session.lobby_connected and any(v and v.reconnecting == () for v in views)

        await wait_until(back, "the session rejoined its room through node 1")
        assert session.room == room and session.peer_id == me
    finally:
        await session.close()
