"""The lobby server end to end: real websockets on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

from netcode.config import LobbyConfig
from netcode.errors import AuthError, ConfigError, ConnectionClosed, RoomFull, RoomNotFound
from netcode.lobby.messages import PeerJoinedMsg, PeerLeftMsg, PeerReconnecting, SignalMsg
from netcode.net.lobby_server import client_address, serve_lobby
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
from tests.lobby.strategies import (
    RID,
    SURROGATE_SLOTS,
    Slot,
    plant,
    surrogate_cases,
    valid_client_base,
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
        spoof: dict[str, object] = {"type": "signal", "to": a.peer_id, "kind": "offer"}
        spoof["from"] = "someone-else"
        await ws.send(json.dumps(spoof))
        assert (await recv_json(ws))["code"] == "forbidden_field"
        spoof["from"] = None  # null means absent: accepted
        await ws.send(json.dumps({**spoof, "data": {}, "kind": "bye"}))
        assert await next_event(a) == SignalMsg(sender=welcome["peer_id"], kind="bye", data={})


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
    """A crashed client keeps its seat for the (short, here) grace period, then goes."""
    async with lobby(reconnect_grace_s=0.2) as server, clients(server.url, 2) as (a, b):
        room = (await a.create_room()).room
        async with raw_client(server.url) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            joined = await recv_json(ws)
            assert isinstance(await next_event(a), PeerJoinedMsg)
            ws.transport.abort()  # no close frame: like a crashed client
            peer = joined["peer_id"]
            assert await next_event(a) == PeerReconnecting(room=room, peer_id=peer)
            left = await next_event(a)
            assert left == PeerLeftMsg(room=room, peer_id=peer, reason="timeout")
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
                ('{"type":"signal","to":"x","kind":"offer","data":{}}', "not_in_room"),
                ('{"type":"signal","to":"x","kind":"offer"}', "bad_message"),  # no data
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
    # No refill: the test must not depend on how fast the four frames travel.
    config = {"max_errors_before_close": 3, "error_refill_per_s": 0.0}
    async with lobby(**config) as server, raw_client(server.url) as ws:
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
    config = {"rate_limit_per_s": 5.0, "rate_limit_burst": 10.0}
    async with lobby(**config) as server, raw_client(server.url) as ws:
        await recv_json(ws)
        for _ in range(50):
            await ws.send('{"type":"list_rooms"}')
        replies = 0
        with pytest.raises(WsConnectionClosed):
            while True:
                await recv_json(ws)
                replies += 1
        assert ws.close_code == 1008 and ws.close_reason == "rate limit exceeded"
        assert 10 <= replies < 50  # the burst, plus what refilled meanwhile


async def test_a_client_that_stalled_catches_up_with_a_burst() -> None:
    """Hundreds of messages queued during a stall arrive at once: all answered."""
    async with lobby() as server, raw_client(server.url) as ws:
        await recv_json(ws)
        await ws.send('{"type":"list_rooms"}')  # a warm-up round trip
        assert (await recv_json(ws))["type"] == "room_list"
        for rid in range(600):  # 3 s of the sustained 200/s, at once
            await ws.send(json.dumps({"type": "list_rooms", "rid": rid}))
        rids = [(await recv_json(ws))["rid"] for _ in range(600)]
        assert rids == list(range(600))
        assert server.health()["connections"] == 1


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
        keepalive = health["keepalive"]
        assert set(keepalive) == {"pings", "timeouts"} and keepalive["timeouts"] == 0
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
    # No reconnect grace: the keepalive failure itself is what ends the membership.
    async with (
        lobby(ping_interval_s=0.2, ping_timeout_s=1.0 * TIMESCALE, reconnect_grace_s=0.0) as server,
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
    # All 60 come from 127.0.0.1: lift the per-address cap (32 by default).
    async with lobby(max_connections_per_ip=None) as server, clients(server.url, 60) as everyone:
        groups = [everyone[i : i + 4] for i in range(0, 60, 4)]
        infos = await asyncio.gather(*(g[0].create_room(max_players=4) for g in groups))
        await asyncio.gather(
            *(c.join_room(info.room) for g, info in zip(groups, infos, strict=True) for c in g[1:])
        )
        assert server.health() | {"uptime_s": 0, "keepalive": None} == {
            "status": "ok",
            "v": 1,
            "rooms": 15,
            "connections": 60,
            "peers_in_rooms": 60,
            "reconnecting": 0,
            "quick_match_waiting": 0,
            "uptime_s": 0,
            "keepalive": None,
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


async def test_a_client_that_stops_reading_its_own_replies_is_dropped() -> None:
    """Only the server's own replies can fill a queue to its hard cap (relays stop
    at half): a client that asks and never reads is closed, the others stay."""
    # No keepalive during the test (the non-reader would time out instead); a short
    # close timeout (min(2 s, ping_timeout)) for the close frame that cannot get out.
    config = {"rate_limit_per_s": 1e6, "rate_limit_burst": 1e6, "ping_interval_s": 60.0}
    config["ping_timeout_s"] = 1.0
    async with lobby(**config) as server, clients(server.url, 16) as (a, *hosts):
        pad = {"pad": "x" * 3_900}  # 15 rooms: each room_list reply is ~60 KB
        await asyncio.gather(*(h.create_room(metadata=pad) for h in hosts))
        room = (await a.create_room()).room
        async with raw_client(server.url) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            joined = await recv_json(ws)
            assert isinstance(await next_event(a), PeerJoinedMsg)
            # A small receive window, so kernel buffers hold megabytes, not tens of them.
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ws.transport.pause_reading()
            left = None
            with contextlib.suppress(WsConnectionClosed):
                async with asyncio.timeout(TIMEOUT * 3):
                    while left is None:
                        await ws.send('{"type":"list_rooms"}')
                        events = [e for e in a.poll_events() if isinstance(e, PeerLeftMsg)]
                        left = events[0] if events else None
                        await asyncio.sleep(0)  # a send that does not block never yields
            final = left or await next_event(a)
            assert final == PeerLeftMsg(room=room, peer_id=joined["peer_id"], reason="kicked")
            ws.transport.abort()
        assert (await a.list_rooms())[0].players == 1
        assert server.health()["connections"] == 16


async def _flood(ws: ClientConnection, frame: str, errors: list[str]) -> None:
    """Send ``frame`` until the server closes ``ws``; collect the error codes."""

    async def read() -> None:
        with contextlib.suppress(WsConnectionClosed):
            async for text in ws:
                errors.append(json.loads(text).get("code", ""))

    reader = asyncio.create_task(read())
    try:
        with contextlib.suppress(WsConnectionClosed):
            async with asyncio.timeout(TIMEOUT * 3):
                while True:
                    await ws.send(frame)
                    await asyncio.sleep(0)  # let the server (same loop) read it
        async with asyncio.timeout(TIMEOUT):
            await reader
    finally:
        reader.cancel()


async def _joined_raw(ws: ClientConnection, room: str) -> str:
    peer_id = (await recv_json(ws))["peer_id"]
    await ws.send(json.dumps({"type": "join_room", "room": room}))
    assert (await recv_json(ws))["type"] == "room_joined"
    return str(peer_id)


async def _drain_until_left(victim: SignalingClient, flooder: str) -> int:
    """Events until the flooder's peer_left (reason kicked); returns the signals seen."""
    signals = 0
    while True:
        event = await next_event(victim)
        if isinstance(event, PeerLeftMsg) and event.peer_id == flooder:
            assert event.reason == "kicked"
            return signals
        signals += isinstance(event, SignalMsg)


async def test_a_byte_flooder_is_closed_and_its_victim_stays() -> None:
    """One member pushes 60 KB signals at another as fast as it can: the flooder
    is closed for its byte budget; the victim, not even reading, is kept."""
    async with (
        lobby(ping_interval_s=60.0) as server,
        clients(server.url, 2) as (victim, observer),
        raw_client(server.url) as ws,
    ):
        room = (await victim.create_room()).room
        await observer.join_room(room)
        flooder = await _joined_raw(ws, room)
        victim._ws.transport.pause_reading()  # the worst case: a victim that is slow
        data = {"sdp": "x" * 60_000}
        errors: list[str] = []
        await _flood(
            ws,
            json.dumps({"type": "signal", "to": victim.peer_id, "kind": "offer", "data": data}),
            errors,
        )
        assert ws.close_code == 1008 and ws.close_reason == "byte rate limit exceeded"
        victim._ws.transport.resume_reading()
        assert await _drain_until_left(victim, flooder) >= 1  # some got through first
        assert await _drain_until_left(observer, flooder) == 0
        assert [r.players for r in await victim.list_rooms()] == [2]
        await victim.send_signal(observer.peer_id, "bye")
        assert await next_event(observer) == SignalMsg(sender=victim.peer_id, kind="bye", data={})


async def test_signals_to_a_clogged_peer_get_peer_busy_and_the_sender_pays() -> None:
    """Byte budgets lifted: the recipient's queue fills; the sender gets peer_busy,
    then is closed for its error budget; the recipient is never dropped."""
    config = {
        "ping_interval_s": 60.0,
        "rate_limit_per_s": 1e6,
        "rate_limit_burst": 1e6,
        "byte_rate_limit_per_s": 1e12,
        "byte_rate_burst": 2**40,
        "max_errors_before_close": 5,
        "error_refill_per_s": 0.0,
    }
    async with (
        lobby(**config) as server,
        clients(server.url, 1) as (victim,),
        raw_client(server.url) as ws,
    ):
        room = (await victim.create_room()).room
        flooder = await _joined_raw(ws, room)
        assert isinstance(await next_event(victim), PeerJoinedMsg)
        victim._ws.transport.pause_reading()
        data = {"sdp": "x" * 60_000}
        errors: list[str] = []
        await _flood(
            ws,
            json.dumps({"type": "signal", "to": victim.peer_id, "kind": "offer", "data": data}),
            errors,
        )
        assert errors == ["peer_busy"] * 6
        assert ws.close_code == 1008 and ws.close_reason == "too many invalid messages"
        victim._ws.transport.resume_reading()
        assert await _drain_until_left(victim, flooder) >= 8  # 512 KiB were relayed
        assert [r.players for r in await victim.list_rooms()] == [1]
        assert server.health()["connections"] == 1


async def test_connections_per_address_are_capped() -> None:
    async with lobby(max_connections_per_ip=3) as server, clients(server.url, 3) as three:
        with pytest.raises(ConnectionClosed, match="1008"):
            await SignalingClient.connect(server.url, timeout=TIMEOUT)
        async with raw_client(server.url) as ws:
            with pytest.raises(WsConnectionClosed):
                await recv_json(ws)
            assert ws.close_reason == "too many connections from your address"
        # The three already in keep working, and a freed slot can be taken again.
        room = (await three[0].create_room()).room
        await three[1].join_room(room)
        await three[2].close()
        await wait_until(lambda: server.health()["connections"] == 2, "slot freed")
        async with await SignalingClient.connect(server.url, timeout=TIMEOUT) as again:
            assert (await again.join_room(room)).peers == (three[0].peer_id, three[1].peer_id)


async def test_trusted_proxy_forwarded_addresses_are_capped_per_client() -> None:
    config = {"max_connections_per_ip": 1, "trusted_proxies": ("127.0.0.0/8",)}
    async with lobby(**config) as server:

        def via_proxy(client: str) -> Any:
            # What nginx sends: anything the client claimed, then the address it saw.
            headers = {"X-Forwarded-For": f"6.6.6.6, {client}"}
            return raw_client(server.url, additional_headers=headers)

        async with via_proxy("203.0.113.1") as one, via_proxy("203.0.113.2") as two:
            assert (await recv_json(one))["type"] == "welcome"
            assert (await recv_json(two))["type"] == "welcome"
            async with via_proxy("203.0.113.1") as again:
                with pytest.raises(WsConnectionClosed):
                    await recv_json(again)
                assert again.close_code == 1008
            # Two header lines are one list: the last entry of the last line counts.
            split = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "203.0.113.1")]
            async with raw_client(server.url, additional_headers=split) as third:
                with pytest.raises(WsConnectionClosed):
                    await recv_json(third)
                assert third.close_code == 1008
            assert server.health()["connections"] == 2


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("198.51.100.1", "203.0.113.1", "198.51.100.1"),  # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "203.0.113.1", "203.0.113.1"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.1", "203.0.113.1"),  # the client wrote 6.6.6.6
        ("127.0.0.1", "203.0.113.1, 10.0.0.2", "203.0.113.1"),  # two trusted proxies
        ("127.0.0.1", "garbage", "127.0.0.1"),  # unreadable: counts as the proxy
        ("127.0.0.1", "10.0.0.2", "127.0.0.1"),  # only proxies: the nearest one
        (None, "203.0.113.1", None),
    ],
)
def test_client_address(peer: str | None, header: str | None, expected: str | None) -> None:
    assert client_address(peer, header, ("127.0.0.1", "10.0.0.0/8")) == expected


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


# --- lone surrogates: the sender gets bad_message, nobody is disconnected ---------------


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


async def _surrogate_round(
    member: SignalingClient, ws: ClientConnection, cases: list[tuple[str, Slot, str]]
) -> None:
    """``ws`` (in ``member``'s room) sends each hostile frame; then both still work."""
    for kind, slot, hostile in cases:
        frame = json.dumps(plant(valid_client_base(kind, to=member.peer_id), slot, hostile))
        await ws.send(frame)
        reply = await recv_json(ws)
        assert (reply["type"], reply["code"]) == ("error", "bad_message"), (slot, reply)
        assert reply.get("rid") == (None if slot == ("rid",) else RID)
    # Both ends are still connected and relaying, in both directions.
    me = {"type": "signal", "to": member.peer_id, "kind": "bye", "data": {"ok": "\u00e9"}}
    await ws.send(json.dumps(me))
    got = await next_event(member)
    assert isinstance(got, SignalMsg) and got.data == {"ok": "\u00e9"}
    await member.send_signal(got.sender, "bye", {"back": 1})
    relayed = await recv_json(ws)
    assert (relayed["type"], relayed["data"]) == ("signal", {"back": 1})


async def _surrogate_scenario(cases: list[tuple[str, Slot, str]]) -> None:
    # An error budget for every case: this tests the replies, not the budget.
    config = {"max_errors_before_close": max(20, len(cases))}
    async with lobby(**config) as server, clients(server.url, 1) as (member,):
        room = (await member.create_room()).room
        async with raw_client(server.url) as ws:
            await _joined_raw(ws, room)
            assert isinstance(await next_event(member), PeerJoinedMsg)
            await _surrogate_round(member, ws, cases)
            assert server.health()["connections"] == 2


async def test_a_lone_surrogate_in_every_string_field(caplog: pytest.LogCaptureFixture) -> None:
    """The issue's cases (signal.data drops the recipient, rid the sender, metadata
    1011) and every other string slot of every client message, on real sockets."""
    caplog.set_level(logging.WARNING)
    cases = [(kind, slot, "a\ud800b") for kind, slots in SURROGATE_SLOTS.items() for slot in slots]
    assert ("signal", ("data", "c"), "a\ud800b") in cases
    assert ("create_room", ("metadata", "game"), "a\ud800b") in cases
    await _surrogate_scenario(cases)
    _no_errors_logged(caplog)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(surrogate_cases, min_size=1, max_size=4))
def test_surrogate_fuzz_on_real_sockets(
    caplog: pytest.LogCaptureFixture, cases: list[tuple[str, Slot, str]]
) -> None:
    """Hypothesis picks the message types, the fields and the hostile strings; a
    fresh lobby per example, on 127.0.0.1."""
    caplog.set_level(logging.WARNING)
    asyncio.run(_surrogate_scenario(cases))
    _no_errors_logged(caplog)
