"""Match lifecycle in the pure lobby core, case by case: reconnection tokens, host
migration timing, kick/lock/update, kept seats and the transition table."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest

from netcode.config import LobbyConfig
from netcode.lobby import messages as m
from netcode.lobby.rooms import (
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    TRANSITIONS,
    CloseConnection,
    LobbyCore,
    Output,
)

GRACE = 5.0
HOST_GRACE = 1.0


def make_core(**overrides: Any) -> LobbyCore:
    settings: dict[str, Any] = {"reconnect_grace_s": GRACE, "host_grace_s": HOST_GRACE}
    settings.update(overrides)
    return LobbyCore(LobbyConfig(**settings), randbelow=random.Random(11).randrange)


def send(core: LobbyCore, conn: int, obj: Mapping[str, object], now: float = 0.0) -> Output:
    return core.receive(conn, json.dumps(obj), now)


def reply(out: Output, conn: int) -> Any:
    return next(msg for c, msg in out if c == conn)


def error_code(out: Output, conn: int) -> str:
    msg = reply(out, conn)
    assert isinstance(msg, m.ErrorMsg), msg
    return msg.code


def room_with(core: LobbyCore, *conns: int, **create: object) -> list[m.RoomJoined]:
    """conns[0] creates (and hosts) a room, the rest join; their room_joined replies."""
    for conn in conns:
        if core.state_of(conn) is None:
            core.connect(conn, 0.0)
    first = reply(send(core, conns[0], {"type": "create_room", **create}), conns[0])
    replies = [first]
    for conn in conns[1:]:
        replies.append(reply(send(core, conn, {"type": "join_room", "room": first.room}), conn))
    assert all(isinstance(r, m.RoomJoined) for r in replies)
    return replies


# --- reconnection tokens ---------------------------------------------------------------


def test_room_joined_carries_host_topology_and_a_token() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2, topology="star")
    assert a.host == b.host == a.peer_id and a.topology == b.topology == "star"
    assert a.token and b.token and a.token != b.token and len(a.token) == 32
    assert a.token_expires_s == GRACE and not a.locked and b.peers == (a.peer_id,)


def test_a_dropped_member_rejoins_with_its_id_seat_and_token() -> None:
    core = make_core()
    a, b, c = room_with(core, 1, 2, 3)
    out = core.disconnect(2, "disconnected", 1.0)
    assert sorted(out) == sorted(
        (x, m.PeerReconnecting(room=a.room, peer_id=b.peer_id)) for x in (1, 3)
    )
    assert core.stats().reconnecting == 1
    ((_, busy),) = send(core, 1, {"type": "signal", "to": b.peer_id, "kind": "bye", "data": {}})
    assert isinstance(busy, m.ErrorMsg) and busy.code == "peer_reconnecting"
    core.connect(9, 2.0)
    welcome_id = core.peer_id(9)
    out = send(core, 9, {"type": "rejoin", "token": b.token, "rid": 4}, 2.0)
    back = reply(out, 9)
    assert isinstance(back, m.RoomJoined) and back.rid == 4
    assert back.peer_id == b.peer_id != welcome_id and back.token == b.token
    assert back.peers == (a.peer_id, c.peer_id)  # its seat: still second in join order
    assert core.peer_id(9) == b.peer_id and core.room_of(9) == a.room
    assert sorted(x for x, msg in out if isinstance(msg, m.PeerReconnected)) == [1, 3]
    view = core.room_view(a.room)
    assert view is not None and view.members == (a.peer_id, b.peer_id, c.peer_id)
    assert core.next_deadline() is None and core.stats().reconnecting == 0


@pytest.mark.parametrize("case", ["garbage", "expired", "foreign_room", "left", "closed"])
def test_wrong_expired_foreign_and_revoked_tokens_are_refused(case: str) -> None:
    core = make_core()
    _a, b = room_with(core, 1, 2)
    other = room_with(core, 3)[0]
    core.connect(9, 0.0)
    token, room = b.token, None
    now = 1.0
    if case == "garbage":
        token = "A" * 32
    elif case == "expired":
        core.disconnect(2, "timeout", 0.0)
        now = GRACE  # exactly at the deadline: gone, even before tick() ran
    elif case == "foreign_room":
        core.disconnect(2, "disconnected", 0.0)
        room = other.room
    elif case == "left":
        send(core, 2, {"type": "leave_room"})
    else:
        core.disconnect(2, "closed", 0.0)
    obj: dict[str, object] = {"type": "rejoin", "token": token, "rid": 1}
    if room is not None:
        obj["room"] = room
    out = send(core, 9, obj, now)
    assert error_code(out, 9) == "bad_token"
    assert core.state_of(9) == "lobby" and core.room_of(9) is None


def test_a_rejoin_replaces_a_half_dead_websocket() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2)
    core.connect(9, 0.0)
    out = send(core, 9, {"type": "rejoin", "token": b.token, "room": a.room.lower()})
    assert isinstance(reply(out, 9), m.RoomJoined)
    assert (2, CloseConnection(CLOSE_NORMAL, "replaced by a newer connection")) in out
    assert core.state_of(2) is None
    assert (1, m.PeerReconnected(room=a.room, peer_id=b.peer_id)) in out
    assert core.disconnect(2, "kicked", 0.0) == []  # the old socket's end changes nothing


def test_a_kept_seat_holds_its_address_slot_until_it_expires() -> None:
    core = make_core(max_connections_per_ip=2)
    core.connect(1, 0.0, "10.0.0.1")
    core.connect(2, 0.0, "10.0.0.1")
    joined = reply(send(core, 1, {"type": "create_room"}), 1)
    core.disconnect(1, "disconnected", 0.0)
    core.disconnect(2, "closed", 0.0)
    assert core.address_slots() == {"10.0.0.1": 1}  # the kept seat
    core.connect(3, 0.1, "10.0.0.1")
    ((_, refused),) = core.connect(4, 0.1, "10.0.0.1")
    assert isinstance(refused, CloseConnection) and refused.code == CLOSE_POLICY_VIOLATION
    send(core, 3, {"type": "rejoin", "token": joined.token}, 0.2)  # slot handed back
    assert core.address_slots() == {"10.0.0.1": 1}
    core.disconnect(3, "disconnected", 0.3)
    core.tick(0.3 + GRACE)
    assert core.address_slots() == {} and core.rooms() == {}


def test_no_grace_means_the_old_behaviour() -> None:
    core = make_core(reconnect_grace_s=0.0)
    a, b = room_with(core, 1, 2)
    out = core.disconnect(2, "timeout", 0.0)
    assert out == [(1, m.PeerLeftMsg(room=a.room, peer_id=b.peer_id, reason="timeout"))]
    assert core.next_deadline() is None


# --- host migration --------------------------------------------------------------------


def test_a_dropped_host_is_replaced_after_host_grace_by_the_earliest_connected() -> None:
    core = make_core()
    a, _b, c = room_with(core, 1, 2, 3)
    core.disconnect(2, "disconnected", 0.0)  # b (second in join order) is away too
    core.disconnect(1, "disconnected", 0.5)
    assert core.next_deadline() == 0.5 + HOST_GRACE
    assert core.tick(0.5 + HOST_GRACE - 0.01) == []
    out = core.tick(0.5 + HOST_GRACE)
    assert out == [(3, m.HostChanged(room=a.room, host=c.peer_id, previous=a.peer_id))]
    core.connect(9, 2.0)
    back = reply(send(core, 9, {"type": "rejoin", "token": a.token}, 2.0), 9)
    assert isinstance(back, m.RoomJoined) and back.host == c.peer_id  # an ordinary member now
    kick = {"type": "kick", "peer": c.peer_id}
    assert error_code(send(core, 9, kick, 2.0), 9) == "not_owner"


def test_a_host_back_within_host_grace_stays_host() -> None:
    core = make_core()
    a, _ = room_with(core, 1, 2)
    core.disconnect(1, "disconnected", 0.0)
    core.connect(9, 0.5)
    send(core, 9, {"type": "rejoin", "token": a.token}, 0.5)
    assert core.next_deadline() is None and core.tick(10.0) == []
    view = core.room_view(a.room)
    assert view is not None and view.host == a.peer_id


def test_a_host_that_leaves_hands_over_at_once() -> None:
    core = make_core()
    a, b, _c = room_with(core, 1, 2, 3)
    out = send(core, 1, {"type": "leave_room"})
    changed = m.HostChanged(room=a.room, host=b.peer_id, previous=a.peer_id)
    assert sorted(x for x, msg in out if msg == changed) == [2, 3]


def test_with_nobody_connected_the_host_changes_when_someone_comes_back() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2)
    core.disconnect(1, "disconnected", 0.0)
    core.disconnect(2, "disconnected", 0.0)
    assert core.tick(HOST_GRACE) == []  # nobody to hand over to
    core.connect(9, 2.0)
    out = send(core, 9, {"type": "rejoin", "token": b.token}, 2.0)
    back = reply(out, 9)
    assert isinstance(back, m.RoomJoined)
    assert (9, m.HostChanged(room=a.room, host=b.peer_id, previous=a.peer_id)) in out


# --- kick, lock, update ------------------------------------------------------------------


def test_kick_tells_the_kicked_and_the_others_and_bans_the_identity() -> None:
    core = make_core()
    a, b, _c = room_with(core, 1, 2, 3)
    out = send(core, 1, {"type": "kick", "peer": b.peer_id, "reason": "afk", "rid": 5})
    assert out[0] == (1, m.Ok(rid=5))
    assert (2, m.Kicked(room=a.room, reason="afk")) in out
    left = m.PeerLeftMsg(room=a.room, peer_id=b.peer_id, reason="kicked")
    assert sorted(x for x, msg in out if msg == left) == [1, 3]
    assert core.state_of(2) == "lobby"
    assert error_code(send(core, 2, {"type": "join_room", "room": a.room}), 2) == "banned"
    core.connect(9, 0.0)
    assert error_code(send(core, 9, {"type": "rejoin", "token": b.token}), 9) == "banned"
    assert isinstance(reply(send(core, 9, {"type": "join_room", "room": a.room}), 9), m.RoomJoined)


def test_kick_refusals() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2)
    assert error_code(send(core, 2, {"type": "kick", "peer": a.peer_id}), 2) == "not_owner"
    assert error_code(send(core, 1, {"type": "kick", "peer": a.peer_id}), 1) == "bad_target"
    assert error_code(send(core, 1, {"type": "kick", "peer": "nobody"}), 1) == "peer_not_in_room"
    core.connect(3, 0.0)
    assert error_code(send(core, 3, {"type": "kick", "peer": b.peer_id}), 3) == "not_in_room"


def test_a_reconnecting_member_can_be_kicked() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2)
    core.disconnect(2, "disconnected", 0.0)
    out = send(core, 1, {"type": "kick", "peer": b.peer_id})
    assert out == [
        (1, m.Ok()),
        (1, m.PeerLeftMsg(room=a.room, peer_id=b.peer_id, reason="kicked")),
    ]
    assert core.next_deadline() is None and core.stats().reconnecting == 0


def test_lock_refuses_joins_not_rejoins_and_update_reaches_listers() -> None:
    core = make_core()
    a, b = room_with(core, 1, 2, metadata={"game": "pong"})
    out = send(core, 1, {"type": "lock_room", "locked": True, "rid": 2})
    update = m.RoomUpdated(room=a.room, metadata={"game": "pong"}, locked=True)
    assert out == [(1, m.Ok(rid=2)), (1, update), (2, update)]
    core.connect(3, 0.0)
    assert error_code(send(core, 3, {"type": "join_room", "room": a.room}), 3) == "room_locked"
    core.disconnect(2, "disconnected", 0.0)
    core.connect(4, 0.0)
    assert isinstance(reply(send(core, 4, {"type": "rejoin", "token": b.token}), 4), m.RoomJoined)
    send(core, 1, {"type": "update_room", "metadata": {"game": "pong", "map": "dust"}})
    ((_, listing),) = send(core, 3, {"type": "list_rooms"})
    assert isinstance(listing, m.RoomList)
    ((summary),) = listing.rooms
    assert summary.metadata == {"game": "pong", "map": "dust"} and summary.locked
    big = {"type": "update_room", "metadata": {"x": "y" * 5000}}
    assert error_code(send(core, 1, big), 1) == "metadata_too_large"


# --- the transition table ---------------------------------------------------------------


def test_every_state_comes_from_the_transition_table() -> None:
    """Each client event lands the connection in TRANSITIONS' value for it."""
    core = make_core()
    a, _ = room_with(core, 1, 2)
    core.connect(3, 0.0)
    steps: list[tuple[int, dict[str, object]]] = [
        (3, {"type": "list_rooms"}),
        (3, {"type": "quick_match", "game": "g", "size": 2}),
        (3, {"type": "list_rooms"}),
        (3, {"type": "cancel_quick_match"}),
        (3, {"type": "join_room", "room": a.room}),
        (3, {"type": "list_rooms"}),
        (1, {"type": "lock_room"}),
        (1, {"type": "update_room", "metadata": {}}),
        (3, {"type": "leave_room"}),
        (3, {"type": "create_room"}),
    ]
    for conn, obj in steps:
        before = core.state_of(conn)
        assert before is not None
        out = send(core, conn, obj)
        assert not any(isinstance(msg, m.ErrorMsg) for _, msg in out), (obj, out)
        assert core.state_of(conn) == TRANSITIONS[(before, str(obj["type"]))]
    assert {event for _, event in TRANSITIONS} >= {c.TYPE for c in m.CLIENT_TYPES}


def test_room_updates_to_a_clogged_member_fail_for_the_host() -> None:
    """Like signals: the host's flood is refused (peer_busy), the slow member stays."""
    core = make_core(max_outbound_bytes=200_000)
    a, _ = room_with(core, 1, 2)
    core.report_backlog(2, 99_990, 3)
    update = {"type": "update_room", "metadata": {"x": "y" * 100}}
    assert error_code(send(core, 1, update), 1) == "peer_busy"
    assert error_code(send(core, 1, {"type": "lock_room"}), 1) == "peer_busy"
    view = core.room_view(a.room)
    assert view is not None and view.metadata == {} and not view.locked
    assert core.state_of(2) == "in_room"
    core.report_backlog(2, 0, 0)
    assert isinstance(reply(send(core, 1, update), 1), m.Ok)


def test_drop_and_rejoin_churn_keeps_the_deadline_heap_bounded() -> None:
    """Counted, not timed: 2,000 drop/rejoin cycles of the host inside one grace period."""
    core = make_core(max_connections_per_ip=None)
    a, _ = room_with(core, 1, 2)
    conn = 1
    for i in range(2_000):
        core.disconnect(conn, "disconnected", i * 1e-4)
        conn = 100 + i
        core.connect(conn, i * 1e-4)
        back = reply(send(core, conn, {"type": "rejoin", "token": a.token}, i * 1e-4), conn)
        assert isinstance(back, m.RoomJoined)
        assert core.pending_deadlines() <= 4 * 1 + 64 + 2
    assert core.next_deadline() is None and core.pending_deadlines() == 0
