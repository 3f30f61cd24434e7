"""Match lifecycle end to end: real lobby and SignalingClients on 127.0.0.1.

Kick, lock, room updates, quick match under concurrent arrivals, a websocket
dropped and rejoined within the grace period, grace expiry and host migration.
Grace periods are short (0.2 s) so the timers run; every wait is for a message.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import pytest

from netcode.config import DEFAULT_MAX_PLAYERS
from netcode.errors import ConnectTimeout, LobbyError
from netcode.lobby.messages import (
    HostChanged,
    Kicked,
    PeerJoinedMsg,
    PeerLeftMsg,
    PeerReconnected,
    PeerReconnecting,
    QuickMatchWaiting,
    RoomUpdated,
)
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT, clients, lobby, wait_until

E = TypeVar("E")


async def next_of(client: SignalingClient, cls: type[E]) -> E:
    """The next event of type ``cls`` (events of other types before it are skipped)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await client.next_event()
            if isinstance(event, cls):
                return event


async def room_of(creator: SignalingClient, *joiners: SignalingClient, **kw: Any) -> str:
    info = await creator.create_room(**kw)
    for joiner in joiners:
        await joiner.join_room(info.room)
    return info.room


async def test_kick_reason_presence_and_no_way_back() -> None:
    async with lobby() as server, clients(server.url, 4) as (host, victim, other, spare):
        room = await room_of(host, victim, other)
        token = victim.token
        assert token is not None
        await host.kick(victim.peer_id, reason="cheating")
        assert await next_of(victim, Kicked) == Kicked(room=room, reason="cheating")
        left = PeerLeftMsg(room=room, peer_id=victim.peer_id, reason="kicked")
        assert await next_of(other, PeerLeftMsg) == left
        assert victim.room is None and victim.token is None
        with pytest.raises(LobbyError) as refused:
            await victim.join_room(room)
        assert refused.value.code == "banned"
        with pytest.raises(LobbyError) as again:
            await spare.rejoin(token)
        assert again.value.code == "banned"
        with pytest.raises(LobbyError) as not_owner:
            await other.kick(host.peer_id)
        assert not_owner.value.code == "not_owner"


async def test_lock_refuses_joins_and_updates_are_listed() -> None:
    async with lobby() as server, clients(server.url, 3) as (host, member, late):
        room = await room_of(host, member, metadata={"game": "pong"}, topology="star")
        await host.lock_room(True)
        assert await next_of(member, RoomUpdated) == RoomUpdated(
            room=room, metadata={"game": "pong"}, locked=True
        )
        with pytest.raises(LobbyError) as locked:
            await late.join_room(room)
        assert locked.value.code == "room_locked"
        await host.update_room({"game": "pong", "map": "arena"})
        (summary,) = await late.list_rooms(game="pong")
        assert summary.metadata == {"game": "pong", "map": "arena"}
        assert summary.locked and summary.topology == "star" and summary.players == 2
        with pytest.raises(LobbyError) as not_owner:
            await member.lock_room(False)
        assert not_owner.value.code == "not_owner"
        await host.lock_room(False)
        assert (await late.join_room(room)).host == host.peer_id


async def test_quick_match_with_nine_concurrent_players_for_size_four() -> None:
    async with lobby() as server, clients(server.url, 9) as players:
        tasks = [asyncio.create_task(p.quick_match("arena", 4, topology="star")) for p in players]
        async with asyncio.timeout(TIMEOUT):
            while sum(t.done() for t in tasks) < 8:
                pending = [t for t in tasks if not t.done()]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        done = [t for t in tasks if t.done()]
        (waiting,) = [t for t in tasks if not t.done()]
        infos = [t.result() for t in done]
        rooms: dict[str, list[Any]] = {}
        for info in infos:
            rooms.setdefault(info.room, []).append(info)
        assert sorted(len(v) for v in rooms.values()) == [4, 4]
        for members in rooms.values():
            ids = {i.peer_id for i in members}
            assert len(ids) == 4 and all(i.max_players == 4 for i in members)
            hosts = {i.host for i in members}
            assert len(hosts) == 1 and hosts <= ids
            assert all(i.topology == "star" for i in members)
            # Join order: each member was told exactly the ones seated before it.
            assert sorted(len(i.peers) for i in members) == [0, 1, 2, 3]
        assert server.health()["quick_match_waiting"] == 1
        ninth = players[tasks.index(waiting)]
        assert (await next_of(ninth, QuickMatchWaiting)).waiting == 1
        await ninth.cancel_quick_match()
        with pytest.raises(LobbyError) as cancelled:
            await waiting
        assert cancelled.value.code == "cancelled"
        assert server.health()["quick_match_waiting"] == 0


async def test_quick_match_timeout_cancels() -> None:
    async with lobby() as server, clients(server.url, 1) as (alone,):
        with pytest.raises(ConnectTimeout):
            await alone.quick_match("arena", 2, timeout=0.2)
        assert server.health()["quick_match_waiting"] == 0
        assert alone.room is None


async def test_dropped_websocket_rejoins_with_the_same_identity() -> None:
    async with lobby(reconnect_grace_s=5.0) as server, clients(server.url, 3) as (a, b, fresh):
        room = await room_of(a, b)
        old_id, token = b.peer_id, b.token
        assert token is not None
        await b.abort()  # no close frame: like a crash or a network loss
        assert await next_of(a, PeerReconnecting) == PeerReconnecting(room=room, peer_id=old_id)
        assert server.health()["reconnecting"] == 1
        info = await fresh.rejoin(token, room=room)
        assert info.peer_id == fresh.peer_id == old_id and info.token == token
        assert info.peers == (a.peer_id,) and info.host == a.peer_id
        assert await next_of(a, PeerReconnected) == PeerReconnected(room=room, peer_id=old_id)
        assert server.health()["reconnecting"] == 0
        await fresh.send_signal(a.peer_id, "bye", {})  # it speaks as the old id again
        signal = await a.next_event()
        assert getattr(signal, "sender", None) == old_id


async def test_grace_expiry_is_a_timeout_and_the_token_dies() -> None:
    async with lobby(reconnect_grace_s=0.2) as server, clients(server.url, 3) as (a, b, late):
        room = await room_of(a, b)
        token = b.token
        assert token is not None
        await b.abort()
        await next_of(a, PeerReconnecting)
        left = await next_of(a, PeerLeftMsg)
        assert left == PeerLeftMsg(room=room, peer_id=b.peer_id, reason="timeout")
        with pytest.raises(LobbyError) as expired:
            await late.rejoin(token)
        assert expired.value.code == "bad_token"


async def test_a_normal_close_leaves_at_once() -> None:
    async with lobby(reconnect_grace_s=30.0) as server, clients(server.url, 3) as (a, b, late):
        room = await room_of(a, b)
        token = b.token
        assert token is not None
        await b.close()
        left = await next_of(a, PeerLeftMsg)
        assert left == PeerLeftMsg(room=room, peer_id=b.peer_id, reason="disconnected")
        with pytest.raises(LobbyError) as refused:
            await late.rejoin(token)
        assert refused.value.code == "bad_token"


async def test_a_killed_host_is_replaced_after_host_grace() -> None:
    config = {"reconnect_grace_s": 5.0, "host_grace_s": 0.2}
    async with lobby(**config) as server, clients(server.url, 4) as (host, b, c, back):
        room = await room_of(host, b, c, topology="star")
        assert b.host == host.peer_id
        token = host.token
        assert token is not None
        await host.abort()
        await next_of(b, PeerReconnecting)
        changed = await next_of(b, HostChanged)
        assert changed == HostChanged(room=room, host=b.peer_id, previous=host.peer_id)
        assert (await next_of(c, HostChanged)) == changed
        assert b.host == c.host == b.peer_id  # the clients track it
        await b.kick(c.peer_id)  # the new host has the owner's rights
        # The old host comes back as an ordinary member.
        info = await back.rejoin(token)
        assert info.host == b.peer_id and info.peer_id == host.peer_id
        with pytest.raises(LobbyError) as not_owner:
            await back.lock_room()
        assert not_owner.value.code == "not_owner"


async def test_one_default_room_size() -> None:
    async with lobby() as server, clients(server.url, 1) as (a,):
        info = await a.create_room()
        assert info.max_players == DEFAULT_MAX_PLAYERS == server.config.default_max_players


async def test_presence_before_rejoin_is_not_lost() -> None:
    """Someone joins while b is away: b's rejoin lists it, and b is not listed twice."""
    async with lobby(reconnect_grace_s=5.0) as server, clients(server.url, 4) as (a, b, c, b2):
        room = await room_of(a, b)
        token = b.token
        assert token is not None
        await b.abort()
        await next_of(a, PeerReconnecting)
        joined = await c.join_room(room)
        assert joined.peers == (a.peer_id, b.peer_id) and joined.reconnecting == (b.peer_id,)
        await next_of(a, PeerJoinedMsg)
        info = await b2.rejoin(token)
        assert info.peers == (a.peer_id, c.peer_id) and info.reconnecting == ()
        await wait_until(lambda: server.health()["reconnecting"] == 0, "seat taken back")


async def test_wrong_and_foreign_tokens_are_refused() -> None:
    async with lobby(reconnect_grace_s=5.0) as server, clients(server.url, 4) as (a, b, c, d):
        await room_of(a, b)
        other = await room_of(c)
        token = b.token
        assert token is not None
        await b.abort()
        await next_of(a, PeerReconnecting)
        for bad_token, room in (("x" * 32, None), (token, other), (token[:-1] + "?", None)):
            with pytest.raises(LobbyError) as refused:
                await d.rejoin(bad_token, room=room)
            assert refused.value.code == "bad_token"
            assert d.room is None
        assert (await d.rejoin(token)).peer_id == b.peer_id  # the right one still works


async def test_a_rejoin_elsewhere_closes_the_old_connection_normally() -> None:
    async with lobby() as server, clients(server.url, 3) as (a, b, b_again):
        await room_of(a, b)
        token = b.token
        assert token is not None and b.close_code is None
        info = await b_again.rejoin(token)  # b's socket is still open: it is replaced
        assert info.peer_id == b.peer_id
        assert await next_of(a, PeerReconnected) == PeerReconnected(
            room=info.room, peer_id=b.peer_id
        )
        async with asyncio.timeout(TIMEOUT):
            async for _ in b:  # drains until the lobby's close ends the iteration
                pass
        assert b.closed and b.close_code == 1000


def test_grace_periods_from_the_command_line() -> None:
    from netcode.net.lobby_cli import _config_from_args, _parser, cli_main

    args = _parser().parse_args(["--reconnect-grace", "0.5", "--host-grace", "0.1"])
    config = _config_from_args(args)
    assert (config.reconnect_grace_s, config.host_grace_s) == (0.5, 0.1)
    defaults = _config_from_args(_parser().parse_args([]))
    assert (defaults.reconnect_grace_s, defaults.host_grace_s) == (30.0, 3.0)
    assert cli_main(["--reconnect-grace", "-1"]) == 2  # a clear usage error, no traceback
    assert cli_main(["--host-grace", "inf"]) == 2
