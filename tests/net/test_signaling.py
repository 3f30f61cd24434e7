"""SignalingClient against fake lobbies that misbehave on purpose, and the real one."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from netcode.errors import (
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    LobbyError,
    LobbyProtocolError,
)
from netcode.lobby.messages import PeerJoinedMsg, RoomSummary, SignalMsg
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT, clients, lobby

WELCOME = json.dumps({"type": "welcome", "v": 1, "peer_id": "me", "ice_servers": []})
Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def fake_lobby(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_connect_timeout_when_nothing_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept TCP, never answer the HTTP upgrade
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectTimeout):
            await SignalingClient.connect(f"ws://127.0.0.1:{port}", timeout=0.3)
    finally:
        server.close()


async def test_connect_timeout_when_no_welcome() -> None:
    async def mute(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with fake_lobby(mute) as url:
        with pytest.raises(ConnectTimeout):
            await SignalingClient.connect(url, timeout=0.3)


async def test_connection_refused_and_bad_url() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionClosed):
        await SignalingClient.connect(f"ws://127.0.0.1:{port}", timeout=TIMEOUT)
    with pytest.raises(ConfigError):
        await SignalingClient.connect("http://example.invalid/", timeout=TIMEOUT)
    with pytest.raises(ConfigError):
        await SignalingClient.connect(8765, timeout=TIMEOUT)  # type: ignore[arg-type]


async def test_pending_request_fails_when_lobby_goes_away() -> None:
    async def hang_up_on_request(ws: ServerConnection) -> None:
        await ws.send(WELCOME)
        await ws.recv()
        await ws.close(1011, "boom")

    async with fake_lobby(hang_up_on_request) as url:
        client = await SignalingClient.connect(url, timeout=TIMEOUT)
        try:
            with pytest.raises(ConnectionClosed, match="1011"):
                await client.create_room()
            with pytest.raises(ConnectionClosed):
                await client.next_event()
            with pytest.raises(ConnectionClosed):
                await client.send_signal("x", "bye")
        finally:
            await client.close()


async def test_request_without_answer_times_out() -> None:
    async def ignore(ws: ServerConnection) -> None:
        await ws.send(WELCOME)
        async for _ in ws:
            pass

    async with fake_lobby(ignore) as url, await SignalingClient.connect(url, timeout=0.3) as client:
        with pytest.raises(ConnectTimeout):
            await client.list_rooms()


async def test_events_are_drained_before_closed_and_unknown_types_skipped() -> None:
    async def chatty(ws: ServerConnection) -> None:
        await ws.send(WELCOME)
        await ws.send(json.dumps({"type": "from_the_future", "x": 1}))
        await ws.send(json.dumps({"type": "peer_joined", "room": "R", "peer_id": "p1"}))
        await ws.send(json.dumps({"type": "peer_joined", "room": "R", "peer_id": "p2"}))
        await ws.close()

    async with (
        fake_lobby(chatty) as url,
        await SignalingClient.connect(url, timeout=TIMEOUT) as client,
    ):
        seen = []
        async with asyncio.timeout(TIMEOUT):
            async for event in client:  # ends cleanly when the lobby closes
                seen.append(event)
        assert seen == [PeerJoinedMsg("R", "p1"), PeerJoinedMsg("R", "p2")]
        assert client.closed and client.poll_events() == []


async def test_rejects_a_lobby_that_does_not_welcome() -> None:
    async def rude(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "error", "code": "nope", "message": ""}))
        await ws.wait_closed()

    async with fake_lobby(rude) as url:
        with pytest.raises(LobbyProtocolError):
            await SignalingClient.connect(url, timeout=TIMEOUT)


async def test_client_side_validation_and_error_mapping() -> None:
    async with (
        lobby(max_players_limit=4, default_max_players=2) as server,
        clients(server.url, 2) as (a, b),
    ):
        with pytest.raises(ConfigError):
            await a.create_room(max_players=0)  # refused before it reaches the wire
        with pytest.raises(LobbyError) as info:
            await a.create_room(max_players=10)
        assert info.value.code == "bad_max_players"
        with pytest.raises(LobbyError) as info:
            await a.leave_room()
        assert info.value.code == "not_in_room"
        room = (await a.create_room(max_players=2)).room
        await b.join_room(room)
        assert await b.list_rooms() == [RoomSummary(room=room, players=2, max_players=2)]
        await b.send_signal("no-such-peer", "offer", {})
        await b.list_rooms()  # a round trip: the signal's error has arrived by now
        assert b.last_error is not None and b.last_error.code == "peer_not_in_room"


async def test_poll_events_and_welcome_fields() -> None:
    async with lobby() as server, clients(server.url, 2) as (a, b):
        assert a.peer_id != b.peer_id and a.ice_servers == () and a.max_message_bytes == 65_536
        room = (await a.create_room()).room
        assert a.poll_events() == []
        await b.join_room(room)
        await a.list_rooms()  # b's join was processed before this reply was queued
        assert a.poll_events() == [PeerJoinedMsg(room=room, peer_id=b.peer_id)]


async def test_send_signal_data_defaults_to_an_empty_object() -> None:
    """The protocol requires signal data; None is sent as {} (and a value that is
    not valid Unicode is refused before it reaches the wire)."""
    async with lobby() as server, clients(server.url, 2) as (a, b):
        room = (await a.create_room()).room
        await b.join_room(room)
        await b.send_signal(a.peer_id, "bye")
        async with asyncio.timeout(TIMEOUT):
            event = await a.next_event()
            while not isinstance(event, SignalMsg):
                event = await a.next_event()
        assert event == SignalMsg(sender=b.peer_id, kind="bye", data={})
        with pytest.raises(ConfigError, match="surrogate"):
            await b.send_signal(a.peer_id, "bye", {"x": "\ud800"})
        assert b.last_error is None


# --- match lifecycle (issue 11) -----------------------------------------------------


async def test_lifecycle_events_are_typed_and_tracked() -> None:
    """host_changed / room_updated / kicked arrive as events and update the client."""
    joined = {
        "type": "room_joined",
        "rid": 1,
        "room": "ABCDEF",
        "peer_id": "me",
        "peers": ["h"],
        "max_players": 4,
        "host": "h",
        "token": "t" * 32,
        "token_expires_s": 30.0,
        "topology": "star",
    }
    script: list[dict[str, object]] = [
        {"type": "host_changed", "room": "ABCDEF", "host": "me", "previous": "h"},
        {"type": "room_updated", "room": "ABCDEF", "metadata": {"m": 1}, "locked": True},
        {"type": "peer_reconnecting", "room": "ABCDEF", "peer_id": "h"},
        {"type": "kicked", "room": "ABCDEF", "reason": "bye"},
    ]

    async def lobby_side(ws: ServerConnection) -> None:
        await ws.send(WELCOME)
        await ws.recv()  # join_room
        await ws.send(json.dumps(joined))
        await ws.recv()  # the client's go-ahead, once it has checked the join
        for frame in script:
            await ws.send(json.dumps(frame))
        await ws.wait_closed()

    async with fake_lobby(lobby_side) as url:
        client = await SignalingClient.connect(url, timeout=TIMEOUT)
        async with client:
            info = await client.join_room("abcdef")
            assert (info.host, info.topology, info.token) == ("h", "star", "t" * 32)
            assert (client.host, client.topology, client.token) == ("h", "star", "t" * 32)
            await client.send_signal("h", "bye")
            async with asyncio.timeout(TIMEOUT):
                events = [await client.next_event() for _ in script]
            assert [e.TYPE for e in events] == [f["type"] for f in script]
            # After the kick the client is out of the room and its token is gone.
            assert client.room is None and client.host is None and client.token is None


async def test_lifecycle_arguments_are_checked_locally() -> None:
    async with lobby() as server, clients(server.url, 1) as (a,):
        for call in (
            a.quick_match("arena", 1),
            a.quick_match("", 2),
            a.quick_match("arena", 2, topology="ring"),
            a.create_room(topology="ring"),
            a.rejoin(""),
            a.kick("x" * 65),
        ):
            with pytest.raises(ConfigError):
                await call


async def test_a_pending_quick_match_ends_when_the_lobby_goes() -> None:
    async with lobby() as server, clients(server.url, 1) as (a,):
        task = asyncio.create_task(a.quick_match("arena", 2))
        async with asyncio.timeout(TIMEOUT):
            while server.health()["quick_match_waiting"] == 0:  # noqa: ASYNC110 - server state
                await asyncio.sleep(0.005)
        with pytest.raises(LobbyError) as twice:
            await a.quick_match("arena", 2)
        assert twice.value.code == "in_quick_match"
        await server.close()
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(TIMEOUT):
                await task
