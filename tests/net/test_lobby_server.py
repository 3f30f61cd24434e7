"""The lobby server end to end: real websockets on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from netcode.config import LobbyConfig
from netcode.errors import AuthError, ConfigError, ConnectionClosed, RoomFull, RoomNotFound
from netcode.lobby.messages import PeerJoinedMsg, PeerLeftMsg, SignalMsg
from netcode.net.lobby_server import serve_lobby
from netcode.net.signaling import SignalingClient
from tests.conftest import TIMESCALE
from tests.lobby.netutil import (
    TIMEOUT,
    clients,
    http_get,
    lobby,
    raw_client,
    recv_json,
    wait_until,
)


async def next_event(client: SignalingClient) -> object:
    async with asyncio.timeout(TIMEOUT):
        return await client.next_event()


async def test_create_join_presence_signal_leave() -> None:
    async with lobby() as server, clients(server.url, 3) as (a, b, c):
        info = await a.create_room(max_players=4, metadata={"game": "pong"})
        assert a.room == info.room and info.peers == () and info.max_players == 4
        joined_b = await b.join_room(info.room.lower())
        assert joined_b.peers == (a.peer_id,) and joined_b.metadata == {"game": "pong"}
        assert await next_event(a) == PeerJoinedMsg(room=info.room, peer_id=b.peer_id)
        joined_c = await c.join_room(info.room)
        assert joined_c.peers == (a.peer_id, b.peer_id)
        for member in (a, b):
            assert await next_event(member) == PeerJoinedMsg(room=info.room, peer_id=c.peer_id)

        offer = {"type": "offer", "sdp": "v=0\r\n..."}
        await a.send_signal(c.peer_id, "offer", offer)
        assert await next_event(c) == SignalMsg(sender=a.peer_id, kind="offer", data=offer)
        await c.send_signal(a.peer_id, "answer", {"type": "answer", "sdp": "v=0"})
        got = await next_event(a)
        assert isinstance(got, SignalMsg) and got.sender == c.peer_id and got.kind == "answer"

        await b.leave_room()
        assert b.room is None
        for member in (a, c):
            assert await next_event(member) == PeerLeftMsg(
                room=info.room, peer_id=b.peer_id, reason="left"
            )
        assert server.health()["peers_in_rooms"] == 2


async def test_signals_never_cross_rooms() -> None:
    async with lobby() as server, clients(server.url, 3) as (a, b, outsider):
        room = (await a.create_room()).room
        await b.join_room(room)
        await outsider.create_room()
        await outsider.send_signal(a.peer_id, "offer", {"sdp": "evil"})
        # A round trip on each connection orders the server's work: had the signal
        # been relayed, it would be queued to `a` before a's own reply.
        await outsider.list_rooms()
        assert outsider.last_error is not None and outsider.last_error.code == "peer_not_in_room"
        await a.list_rooms()
        assert [e for e in a.poll_events() if isinstance(e, SignalMsg)] == []


async def test_client_cannot_spoof_the_sender() -> None:
    async with lobby() as server, clients(server.url, 1) as (a,), raw_client(server.url) as ws:
        welcome = await recv_json(ws)
        room = (await a.create_room()).room
        await ws.send(json.dumps({"type": "join_room", "room": room, "rid": 1}))
        assert (await recv_json(ws))["type"] == "room_joined"
        assert isinstance(await next_event(a), PeerJoinedMsg)
        spoof = {"type": "signal", "to": a.peer_id, "kind": "offer", "from": "someone-else"}
        await ws.send(json.dumps(spoof))
        assert (await recv_json(ws))["code"] == "forbidden_field"
        await ws.send(json.dumps({"type": "signal", "to": a.peer_id, "kind": "bye"}))
        assert await next_event(a) == SignalMsg(sender=welcome["peer_id"], kind="bye")


async def test_concurrent_joins_never_overfill_a_room() -> None:
    async with lobby() as server, clients(server.url, 21) as (host, *racers):
        room = (await host.create_room(max_players=4)).room
        results = await asyncio.gather(*(r.join_room(room) for r in racers), return_exceptions=True)
        winners = [
            r for r, res in zip(racers, results, strict=True) if not isinstance(res, BaseException)
        ]
        losers = [res for res in results if isinstance(res, BaseException)]
        assert len(winners) == 3  # the host holds the 4th seat
        assert all(isinstance(e, RoomFull) and e.code == "room_full" for e in losers)
        assert {w.room for w in winners} == {room}
        assert server.health()["peers_in_rooms"] == 4


async def test_join_unknown_room_and_private_rooms() -> None:
    async with lobby() as server, clients(server.url, 3) as (a, b, c):
        with pytest.raises(RoomNotFound):
            await a.join_room("ZZZZZZ")
        secret = (await a.create_room(private=True)).room
        public = (await b.create_room(metadata={"game": "tanks"})).room
        listed = await c.list_rooms()
        assert [r.room for r in listed] == [public]
        assert listed[0].players == 1 and listed[0].metadata == {"game": "tanks"}
        assert await c.list_rooms(game="pong") == []
        assert (await c.join_room(secret)).peers == (a.peer_id,)  # private: joinable by code


async def test_abrupt_disconnect_is_cleaned_up() -> None:
    async with lobby() as server, clients(server.url, 2) as (a, b):
        room = (await a.create_room()).room
        async with raw_client(server.url) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            joined = await recv_json(ws)
            assert isinstance(await next_event(a), PeerJoinedMsg)
            ws.transport.abort()  # no close frame: like a crashed client
            left = await next_event(a)
            assert left == PeerLeftMsg(room=room, peer_id=joined["peer_id"], reason="disconnected")
        await b.create_room()
        assert server.health()["rooms"] == 2
        b._ws.transport.abort()
        await wait_until(lambda: server.health()["rooms"] == 1, "b's room removed")
        await a.close()
        await wait_until(lambda: server.health()["connections"] == 0, "all gone")
        status, _, body = await http_get(server.host, server.port, "/healthz")
        assert status == 200 and json.loads(body)["rooms"] == 0


async def test_garbage_gets_errors_and_others_keep_working() -> None:
    async with lobby(max_message_bytes=4096) as server, clients(server.url, 2) as (a, b):
        room = (await a.create_room()).room
        await b.join_room(room)
        assert isinstance(await next_event(a), PeerJoinedMsg)
        async with raw_client(server.url) as ws:
            await recv_json(ws)
            cases: list[tuple[str | bytes, str]] = [
                (b"\x00\xffjunk", "binary_frame"),
                ("{this is not json", "bad_json"),
                ('{"type":"join_room","room":42,"rid":7}', "bad_message"),
                ('{"type":"create_room","max_players":"four"}', "bad_message"),
                ('{"type":"self_destruct"}', "unknown_type"),
                ('{"type":"join_room","v":99,"room":"X"}', "unsupported_version"),
                ('{"type":"signal","to":"x","kind":"offer"}', "not_in_room"),
                ("[" * 2000 + "]" * 2000, "bad_json"),
            ]
            for frame, code in cases:
                await ws.send(frame)
                reply = await recv_json(ws)
                assert (reply["type"], reply["code"]) == ("error", code), frame
            assert reply_rid_echoed(await _send_and_recv(ws, '{"type":"leave_room","rid":"q"}'))
            # Still usable after all that:
            await ws.send(json.dumps({"type": "list_rooms", "rid": 1}))
            assert (await recv_json(ws))["type"] == "room_list"
            # The other clients never noticed.
            await a.send_signal(b.peer_id, "candidate", {"candidate": "c"})
            assert isinstance(await next_event(b), SignalMsg)

            # An oversized frame: websockets closes with 1009 (message too big).
            await ws.send("x" * 5000)
            with pytest.raises(WsConnectionClosed):
                await recv_json(ws)
            assert ws.close_code == 1009
        await b.send_signal(a.peer_id, "bye")
        assert isinstance(await next_event(a), SignalMsg)


async def _send_and_recv(ws: object, text: str) -> dict[str, object]:
    await ws.send(text)  # type: ignore[attr-defined]
    return await recv_json(ws)  # type: ignore[arg-type]


def reply_rid_echoed(reply: dict[str, object]) -> bool:
    return reply == {
        "type": "error",
        "code": "not_in_room",
        "message": reply["message"],
        "rid": "q",
    }


async def test_too_many_errors_closes_with_1008() -> None:
    async with lobby(max_errors_before_close=3) as server, raw_client(server.url) as ws:
        await recv_json(ws)
        for _ in range(4):
            await ws.send("nope")
        codes = []
        with pytest.raises(WsConnectionClosed):
            while True:
                codes.append((await recv_json(ws))["code"])
        assert codes == ["bad_json"] * 4
        assert ws.close_code == 1008 and ws.close_reason == "too many invalid messages"
        await wait_until(lambda: server.health()["connections"] == 0, "kicked conn gone")


async def test_rate_limit_closes_with_1008() -> None:
    async with lobby(rate_limit_per_s=5.0) as server, raw_client(server.url) as ws:
        await recv_json(ws)
        for _ in range(50):
            await ws.send('{"type":"list_rooms"}')
        with pytest.raises(WsConnectionClosed):
            while True:
                await recv_json(ws)
        assert ws.close_code == 1008 and ws.close_reason == "rate limit exceeded"


async def test_token_auth() -> None:
    async with lobby(token="s3cret") as server:
        with pytest.raises(AuthError):
            await SignalingClient.connect(server.url, timeout=TIMEOUT)
        with pytest.raises(AuthError):
            await SignalingClient.connect(server.url, token="wrong", timeout=TIMEOUT)
        async with await SignalingClient.connect(server.url, token="s3cret", timeout=TIMEOUT) as ok:
            assert ok.peer_id
            assert (await ok.create_room()).room
        async with raw_client(
            server.url, additional_headers={"Authorization": "Bearer s3cret"}
        ) as ws:
            assert (await recv_json(ws))["type"] == "welcome"
        status, _, _ = await http_get(server.host, server.port, "/healthz")
        assert status == 200  # health checks need no token


async def test_healthz_and_plain_http() -> None:
    async with lobby() as server, clients(server.url, 2) as (a, _b):
        await a.create_room()
        status, headers, body = await http_get(server.host, server.port, "/healthz")
        assert status == 200 and headers["content-type"] == "application/json"
        health = json.loads(body)
        assert (health["status"], health["rooms"], health["connections"]) == ("ok", 1, 2)
        assert health["uptime_s"] >= 0
        assert (await http_get(server.host, server.port, "/nope"))[0] == 404
        status, headers, _ = await http_get(server.host, server.port, "/")
        assert status == 426 and headers["upgrade"].lower() == "websocket"


async def test_max_connections_closes_with_1013() -> None:
    async with lobby(max_connections=2) as server, clients(server.url, 2):
        with pytest.raises(ConnectionClosed, match="1013"):
            await SignalingClient.connect(server.url, timeout=TIMEOUT)
        assert server.health()["connections"] == 2


async def test_shutdown_closes_every_client_with_1001() -> None:
    async with lobby() as server, clients(server.url, 2) as (a, b):
        await a.create_room()
        await server.close()
        for client in (a, b):
            with pytest.raises(ConnectionClosed, match="1001"):
                await next_event(client)
            assert client.closed
        with pytest.raises(ConnectionClosed):
            await a.list_rooms()


async def test_dead_client_is_timed_out_by_keepalive() -> None:
    async with (
        lobby(ping_interval_s=0.2, ping_timeout_s=1.0 * TIMESCALE) as server,
        clients(server.url, 1) as (a,),
    ):
        room = (await a.create_room()).room
        async with raw_client(server.url, ping_interval=None) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            joined = await recv_json(ws)
            assert isinstance(await next_event(a), PeerJoinedMsg)
            ws.transport.pause_reading()  # alive TCP, but pings go unanswered
            left = await next_event(a)
            assert left == PeerLeftMsg(room=room, peer_id=joined["peer_id"], reason="timeout")
            ws.transport.abort()


async def test_many_clients_in_many_rooms() -> None:
    """60 clients in 15 rooms of 4; every room sees exactly its own traffic."""
    async with lobby() as server, clients(server.url, 60) as everyone:
        groups = [everyone[i : i + 4] for i in range(0, 60, 4)]
        infos = await asyncio.gather(*(g[0].create_room(max_players=4) for g in groups))
        await asyncio.gather(
            *(c.join_room(info.room) for g, info in zip(groups, infos, strict=True) for c in g[1:])
        )
        assert server.health() | {"uptime_s": 0} == {
            "status": "ok",
            "v": 1,
            "rooms": 15,
            "connections": 60,
            "peers_in_rooms": 60,
            "uptime_s": 0,
        }
        for group in groups:  # the last joiner greets the host of its room
            await group[3].send_signal(group[0].peer_id, "offer", {"n": group[3].peer_id})
        for group in groups:
            while True:
                event = await next_event(group[0])
                if isinstance(event, SignalMsg):
                    break
                assert isinstance(event, PeerJoinedMsg) and event.peer_id in {
                    c.peer_id for c in group
                }
            assert event.sender == group[3].peer_id and event.data == {"n": group[3].peer_id}


async def test_a_client_that_stops_reading_is_dropped() -> None:
    """Relays to a non-reader are buffered only up to a bound, then it is closed."""
    config = {"rate_limit_per_s": 100_000.0, "ping_timeout_s": 1.0}
    async with lobby(**config) as server, clients(server.url, 1) as (a,):
        room = (await a.create_room()).room
        async with raw_client(server.url) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            joined = await recv_json(ws)
            assert isinstance(await next_event(a), PeerJoinedMsg)
            ws.transport.pause_reading()
            blob = "x" * 60_000
            left = None
            async with asyncio.timeout(TIMEOUT * 3):
                while left is None:  # ~60 KB per signal until the server gives up on ws
                    await a.send_signal(joined["peer_id"], "offer", {"sdp": blob})
                    events = [e for e in a.poll_events() if isinstance(e, PeerLeftMsg)]
                    left = events[0] if events else None
                    await asyncio.sleep(0)  # let the reader task run
            assert left == PeerLeftMsg(room=room, peer_id=joined["peer_id"], reason="kicked")
            ws.transport.abort()
        health = server.health()
        assert (health["rooms"], health["peers_in_rooms"]) == (1, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70_000},
        {"port": -1},
        {"port": "8765"},
        {"host": 127},
        {"config": {"max_rooms": 5}},
    ],
)
async def test_serve_lobby_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    """A ConfigError before anything binds, not an OverflowError from bind()."""
    with pytest.raises(ConfigError):
        await serve_lobby(**kwargs)  # type: ignore[arg-type]
    async with await serve_lobby(config=LobbyConfig(max_rooms=5)) as server:
        assert server.port > 0
