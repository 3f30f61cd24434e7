"""The pure lobby core, driven synchronously: no sockets, time passed in."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import LobbyConfig
from netcode.errors import IllegalTransition
from netcode.lobby import messages as m
from netcode.lobby.rooms import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    ROOM_CODE_ALPHABET,
    TRANSITIONS,
    CloseConnection,
    LobbyCore,
    Output,
    TokenBucket,
)


def make_core(**overrides: object) -> LobbyCore:
    return LobbyCore(LobbyConfig(**overrides), randbelow=random.Random(7).randrange)  # type: ignore[arg-type]


def only(out: Output, conn: int) -> list[object]:
    return [msg for c, msg in out if c == conn]


def send(core: LobbyCore, conn: int, obj: Mapping[str, object], now: float = 0.0) -> Output:
    return core.receive(conn, json.dumps(obj), now)


def joined(core: LobbyCore, *conns: int, max_players: int = 4) -> str:
    """conns[0] creates a room, the rest join it; returns the room code."""
    out = send(core, conns[0], {"type": "create_room", "max_players": max_players})
    reply = only(out, conns[0])[0]
    assert isinstance(reply, m.RoomJoined)
    for conn in conns[1:]:
        assert isinstance(
            only(send(core, conn, {"type": "join_room", "room": reply.room}), conn)[0], m.RoomJoined
        )
    return reply.room


@pytest.fixture
def core() -> LobbyCore:
    c = make_core()
    for conn in range(1, 6):
        c.connect(conn, 0.0)
    return c


def test_connect_welcomes_with_a_fresh_peer_id() -> None:
    core = make_core(max_message_bytes=4096)
    ((conn, welcome),) = core.connect(1, 0.0)
    ((_, other),) = core.connect(2, 0.0)
    assert conn == 1 and isinstance(welcome, m.Welcome) and isinstance(other, m.Welcome)
    assert welcome.peer_id != other.peer_id
    assert welcome.max_message_bytes == 4096 and welcome.v == 1
    with pytest.raises(ValueError):
        core.connect(1, 0.0)


def test_create_room_code_shape_and_snapshot(core: LobbyCore) -> None:
    out = send(core, 1, {"type": "create_room", "rid": 5, "metadata": {"game": "pong"}})
    ((conn, reply),) = out
    assert conn == 1 and isinstance(reply, m.RoomJoined)
    assert len(reply.room) == 6 and set(reply.room) <= set(ROOM_CODE_ALPHABET)
    assert not set(reply.room) & set("0O1IL")
    assert reply.rid == 5 and reply.peers == () and reply.max_players == 8
    assert reply.peer_id == core.peer_id(1) and reply.metadata == {"game": "pong"}


def test_join_announces_and_snapshots_in_join_order(core: LobbyCore) -> None:
    code = joined(core, 1, 2)
    out = send(core, 3, {"type": "join_room", "room": code.lower(), "rid": "r"})
    reply = only(out, 3)[0]
    assert isinstance(reply, m.RoomJoined) and reply.rid == "r"
    assert reply.peers == (core.peer_id(1), core.peer_id(2))
    event = m.PeerJoinedMsg(room=code, peer_id=str(core.peer_id(3)))
    assert only(out, 1) == [event] and only(out, 2) == [event]


def test_room_full_is_strict(core: LobbyCore) -> None:
    code = joined(core, 1, 2, max_players=2)
    ((conn, err),) = send(core, 3, {"type": "join_room", "room": code, "rid": 1})
    assert conn == 3 and isinstance(err, m.ErrorMsg)
    assert (err.code, err.rid) == ("room_full", 1)
    assert core.rooms()[code] == (1, 2)


def test_unknown_room(core: LobbyCore) -> None:
    ((_, err),) = send(core, 1, {"type": "join_room", "room": "NOPE99"})
    assert isinstance(err, m.ErrorMsg) and err.code == "room_not_found"
    assert core.state_of(1) == "lobby"


def test_leave_announces_and_empty_room_is_removed(core: LobbyCore) -> None:
    code = joined(core, 1, 2)
    out = send(core, 2, {"type": "leave_room", "rid": 9})
    assert only(out, 2) == [m.RoomLeft(room=code, rid=9)]
    assert only(out, 1) == [m.PeerLeftMsg(room=code, peer_id=str(core.peer_id(2)), reason="left")]
    assert send(core, 1, {"type": "leave_room"}) == [(1, m.RoomLeft(room=code))]
    assert core.rooms() == {}


def test_disconnect_cleans_up_and_is_idempotent(core: LobbyCore) -> None:
    code = joined(core, 1, 2)
    peer2 = core.peer_id(2)
    out = core.disconnect(2, "timeout", 1.0)
    # The seat is kept for the grace period, then given up.
    assert out == [(1, m.PeerReconnecting(room=code, peer_id=str(peer2)))]
    assert core.disconnect(2, "disconnected", 1.0) == []
    assert send(core, 2, {"type": "list_rooms"}) == []  # unknown connection: dropped
    assert core.next_deadline() == 1.0 + core.config.reconnect_grace_s
    assert core.tick(core.config.reconnect_grace_s) == []  # not yet
    out = core.tick(1.0 + core.config.reconnect_grace_s)
    assert out == [(1, m.PeerLeftMsg(room=code, peer_id=str(peer2), reason="timeout"))]
    assert core.next_deadline() is None
    core.disconnect(1, "closed", 40.0)  # a normal close means leaving: no grace
    assert core.rooms() == {} and core.stats().connections == 3


def test_signal_is_stamped_and_stays_in_the_room(core: LobbyCore) -> None:
    joined(core, 1, 2)
    joined(core, 3, 4)
    data = {"sdp": "v=0", "type": "offer"}
    out = send(core, 1, {"type": "signal", "to": core.peer_id(2), "kind": "offer", "data": data})
    assert out == [(2, m.SignalMsg(sender=str(core.peer_id(1)), kind="offer", data=data))]
    # Another room's peer and an unknown peer look the same: not in your room.
    for target in (core.peer_id(3), "nobody"):
        bye: dict[str, object] = {
            "type": "signal",
            "to": target,
            "kind": "bye",
            "data": {},
            "rid": 3,
        }
        ((conn, err),) = send(core, 1, bye)
        assert conn == 1 and isinstance(err, m.ErrorMsg)
        assert (err.code, err.rid) == ("peer_not_in_room", 3)
    ((_, err),) = send(core, 1, {"type": "signal", "to": core.peer_id(1), "kind": "bye", "data": 0})
    assert isinstance(err, m.ErrorMsg) and err.code == "bad_target"


def test_spoofed_sender_is_refused(core: LobbyCore) -> None:
    joined(core, 1, 2)
    msg = {"type": "signal", "to": core.peer_id(2), "kind": "offer", "from": core.peer_id(3)}
    ((conn, err),) = send(core, 1, msg)
    assert conn == 1 and isinstance(err, m.ErrorMsg) and err.code == "forbidden_field"


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"type": "signal", "to": "x", "kind": "offer", "data": {}}, "not_in_room"),
        ({"type": "leave_room"}, "not_in_room"),
    ],
)
def test_out_of_state_in_lobby(core: LobbyCore, msg: Mapping[str, object], code: str) -> None:
    ((_, err),) = send(core, 1, msg)
    assert isinstance(err, m.ErrorMsg) and err.code == code


def test_out_of_state_in_room(core: LobbyCore) -> None:
    code = joined(core, 1)
    for msg in ({"type": "create_room"}, {"type": "join_room", "room": code}):
        ((_, err),) = send(core, 1, msg)
        assert isinstance(err, m.ErrorMsg) and err.code == "already_in_room"
        assert "in_room" in err.message and msg["type"] in err.message


def test_illegal_transition_names_role_state_event(core: LobbyCore) -> None:
    assert ("lobby", "signal") not in TRANSITIONS
    with pytest.raises(IllegalTransition) as info:
        core._transition(core._conns[1], m.LeaveRoom(), 0.0, 0)
    assert (info.value.role, info.value.state, info.value.event) == (
        "lobby connection",
        "lobby",
        "leave_room",
    )


def test_private_rooms_are_not_listed_and_game_filter(core: LobbyCore) -> None:
    send(core, 1, {"type": "create_room", "private": True})
    send(core, 2, {"type": "create_room", "metadata": {"game": "pong"}})
    send(core, 3, {"type": "create_room", "metadata": {"game": "tanks"}})
    ((_, listing),) = send(core, 4, {"type": "list_rooms", "rid": 1})
    assert isinstance(listing, m.RoomList) and listing.rid == 1
    assert sorted(str(r.metadata.get("game")) for r in listing.rooms) == ["pong", "tanks"]
    ((_, pong),) = send(core, 4, {"type": "list_rooms", "game": "pong"})
    assert isinstance(pong, m.RoomList) and [r.room for r in pong.rooms] == [core.room_of(2)]
    assert pong.rooms[0].players == 1


def test_room_list_fits_in_one_frame() -> None:
    core = make_core(max_message_bytes=2048, max_connections=100)
    for conn in range(60):
        core.connect(conn, 0.0)
        send(core, conn, {"type": "create_room", "metadata": {"pad": "x" * 50}})
    core.connect(999, 0.0)
    ((_, listing),) = send(core, 999, {"type": "list_rooms"})
    assert isinstance(listing, m.RoomList) and 0 < len(listing.rooms) < 60
    assert len(m.serialize(listing).encode()) <= 2048


def test_limits_on_rooms_players_and_metadata() -> None:
    core = make_core(max_rooms=1, max_players_limit=4, default_max_players=2, max_metadata_bytes=64)
    for conn in (1, 2, 3):
        core.connect(conn, 0.0)
    ((_, err),) = send(core, 1, {"type": "create_room", "max_players": 5})
    assert isinstance(err, m.ErrorMsg) and err.code == "bad_max_players"
    ((_, err),) = send(core, 1, {"type": "create_room", "metadata": {"k": "v" * 100}})
    assert isinstance(err, m.ErrorMsg) and err.code == "metadata_too_large"
    ((_, ok),) = send(core, 1, {"type": "create_room"})
    assert isinstance(ok, m.RoomJoined) and ok.max_players == 2
    ((_, err),) = send(core, 2, {"type": "create_room"})
    assert isinstance(err, m.ErrorMsg) and err.code == "too_many_rooms"


def test_max_connections_closes_with_1013() -> None:
    core = make_core(max_connections=2)
    core.connect(1, 0.0)
    core.connect(2, 0.0)
    assert core.connect(3, 0.0) == [(3, CloseConnection(CLOSE_TRY_AGAIN_LATER, "lobby full"))]
    assert core.stats().connections == 2
    core.disconnect(1, "disconnected", 0.0)
    assert isinstance(core.connect(3, 0.0)[0][1], m.Welcome)


def test_too_many_errors_closes_with_1008_and_cleans_up() -> None:
    core = make_core(max_errors_before_close=3)
    core.connect(1, 0.0)
    core.connect(2, 0.0)
    code = joined(core, 1, 2)
    for _ in range(3):
        ((_, err),) = core.receive(2, "garbage", 0.0)
        assert isinstance(err, m.ErrorMsg) and err.code == "bad_json"
    out = core.receive(2, b"\x00binary", 0.0)
    assert isinstance(only(out, 2)[0], m.ErrorMsg)
    assert only(out, 2)[-1] == CloseConnection(CLOSE_POLICY_VIOLATION, "too many invalid messages")
    assert [(e.reason, e.room) for e in only(out, 1) if isinstance(e, m.PeerLeftMsg)] == [
        ("kicked", code)
    ]
    assert core.state_of(2) is None and core.rooms()[code] == (1,)


def test_rate_limit_closes_with_1008_past_the_burst() -> None:
    core = make_core(rate_limit_per_s=10.0, rate_limit_burst=30.0)
    core.connect(1, 0.0)
    listing = json.dumps({"type": "list_rooms"})
    results = [core.receive(1, listing, 0.0) for _ in range(31)]
    assert all(isinstance(r[0][1], m.RoomList) for r in results[:30])
    assert results[30] == [(1, CloseConnection(CLOSE_POLICY_VIOLATION, "rate limit exceeded"))]
    assert core.stats().connections == 0


def test_rate_limit_refills_over_time() -> None:
    core = make_core(rate_limit_per_s=10.0)
    core.connect(1, 0.0)
    listing = json.dumps({"type": "list_rooms"})
    for i in range(100):  # 10/s sustained for 10 s is fine
        assert isinstance(core.receive(1, listing, i * 0.1)[0][1], m.RoomList)


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert not bucket.take(0.0)  # the clock going backwards refills nothing
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)  # capped at burst


def test_errors_do_not_leak_rooms_or_connections(core: LobbyCore) -> None:
    code = joined(core, 1, 2)
    for junk in ("", "[]", '{"type":"signal"}', '{"type":"create_room","metadata":7}', b"\xff"):
        core.receive(1, junk, 0.0)
    assert core.rooms() == {code: (1, 2)} and core.stats().connections == 5


@given(
    rate=st.floats(0.5, 1000.0),
    steps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200),
)
def test_token_bucket_never_exceeds_burst_plus_rate(rate: float, steps: list[float]) -> None:
    burst = max(1.0, rate)
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, taken = 0.0, 0
    for step in steps:
        now += step
        taken += bucket.take(now)
        assert taken <= burst + rate * now + 1e-6
    # And it is not stingy: right after a full refill a whole burst is available.
    now += burst / rate + 1.0
    assert sum(bucket.take(now) for _ in range(int(burst))) == int(burst)
