"""Pure-core additions for several lobby nodes: snapshots, adoption, given peer ids,
reserved room codes, change tracking (netcode/lobby/cluster.py, LobbyCore)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.errors import DecodeError
from netcode.lobby.cluster import decode_snapshot, encode_snapshot, hash_token
from netcode.lobby.messages import ErrorMsg, PeerReconnected, RoomJoined, Welcome
from netcode.lobby.rooms import CloseConnection, LobbyCore


def send(core: LobbyCore, conn: int, now: float = 0.0, **msg: Any) -> list[Any]:
    return [item for _, item in core.receive(conn, json.dumps(msg), now)]


def room_with_two() -> tuple[LobbyCore, RoomJoined, RoomJoined]:
    core = LobbyCore()
    core.connect(1, 0.0)
    core.connect(2, 0.0)
    host = send(core, 1, type="create_room", rid=1)[0]
    guest = send(core, 2, type="join_room", room=host.room, rid=2)[0]
    return core, host, guest


def test_an_adopted_room_takes_its_members_back_by_token_only() -> None:
    old, host, guest = room_with_two()
    assert host.token is not None and guest.token is not None
    snap = decode_snapshot(encode_snapshot(old.snapshot(host.room)))  # type: ignore[arg-type]
    assert hash_token(host.token) in [s.token_hash for s in snap.seats]
    assert host.token not in encode_snapshot(snap).decode()  # never in clear
    new = LobbyCore()
    assert new.adopt(snap, 10.0) and not new.adopt(snap, 10.0)
    view = new.room_view(host.room)
    assert view is not None and set(view.reconnecting) == {host.peer_id, guest.peer_id}
    new.connect(7, 10.0)
    # The stored hash is no token: presenting it is refused.
    refused = send(new, 7, 10.0, type="rejoin", token=hash_token(host.token), room=host.room)
    assert isinstance(refused[0], ErrorMsg) and refused[0].code in ("bad_token", "bad_message")
    back = send(new, 7, 10.0, type="rejoin", token=host.token, room=host.room, rid=3)
    assert isinstance(back[0], RoomJoined) and back[0].peer_id == host.peer_id
    assert back[0].token == host.token  # the clear token again from now on
    new.connect(8, 10.0)
    again = new.receive(8, json.dumps({"type": "rejoin", "token": guest.token}), 10.0)
    assert any(isinstance(m, PeerReconnected) for _, m in again)


def test_adopted_seats_leave_when_their_grace_ends() -> None:
    old, host, _ = room_with_two()
    new = LobbyCore()
    new.adopt(old.snapshot(host.room), 0.0)  # type: ignore[arg-type]
    assert new.next_deadline() is not None
    new.tick(new.config.reconnect_grace_s + 1)
    assert new.room_view(host.room) is None  # nobody came back: the room is gone


def test_connect_with_a_given_peer_id_and_no_welcome() -> None:
    core = LobbyCore()
    assert core.connect(1, 0.0, peer_id="abcdefghjk", welcome=False) == []
    assert core.peer_id(1) == "abcdefghjk"
    out = core.connect(2, 0.0, peer_id="abcdefghjk")
    assert isinstance(out[0][1], CloseConnection) and out[0][1].code == 1013
    assert isinstance(core.connect(3, 0.0)[0][1], Welcome)


def test_room_codes_come_from_the_reserved_pool_and_changes_are_recorded() -> None:
    core = LobbyCore()
    pool = ["CODE23"]
    core.code_source = lambda: pool.pop() if pool else None
    core.dirty = set()
    core.connect(1, 0.0)
    core.connect(2, 0.0)
    assert send(core, 1, type="create_room", rid=1)[0].room == "CODE23"
    assert core.dirty == {"CODE23"}
    refused = send(core, 2, type="create_room", rid=2)[0]
    assert isinstance(refused, ErrorMsg) and refused.code == "unavailable"


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_malformed_snapshot_is_a_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # anything else escaping fails the test
        decode_snapshot(data)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"code": "bad code"},
        {"max_players": 0},
        {"topology": "ring"},
        {"host": "zzzzzzzzzz"},
        {"seats": [["abcdefghjk", "plain-token"]]},
    ],
)
def test_snapshots_breaking_the_rules_are_refused(change: dict[str, Any]) -> None:
    core, host, _ = room_with_two()
    good = json.loads(encode_snapshot(core.snapshot(host.room)))  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        decode_snapshot(json.dumps(good | change).encode())
