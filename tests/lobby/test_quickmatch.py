"""Quick match in the pure lobby core: grouping, concurrency, cancel, limits.

A hypothesis state machine checks the grouping invariants under any interleaving
of requests, cancels, disconnects and leaves: no player in two rooms (or waiting
and seated at once), no room over its size, nobody waiting while ``size`` players
wait for the same (game, size, topology), and each group seated in arrival order
with the first arrival as host.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from netcode.config import LobbyConfig
from netcode.lobby import messages as m
from netcode.lobby.quickmatch import QuickMatchQueues, Waiter
from netcode.lobby.rooms import LobbyCore, Output

N = 12


def make_core(**overrides: object) -> LobbyCore:
    config = LobbyConfig(max_errors_before_close=1_000, **overrides)  # type: ignore[arg-type]
    return LobbyCore(config, randbelow=random.Random(5).randrange)


def send(core: LobbyCore, conn: int, obj: Mapping[str, object], now: float = 0.0) -> Output:
    return core.receive(conn, json.dumps(obj), now)


def quick(game: str = "arena", size: int = 4, rid: int = 1, **extra: object) -> dict[str, object]:
    return {"type": "quick_match", "game": game, "size": size, "rid": rid, **extra}


def test_nine_arrivals_for_size_four_make_two_full_rooms_and_one_waiting() -> None:
    core = make_core()
    for conn in range(9):
        core.connect(conn, 0.0)
    outs = [send(core, conn, quick(rid=100 + conn)) for conn in range(9)]
    rooms = core.rooms()
    assert sorted(len(members) for members in rooms.values()) == [4, 4]
    assert sorted(rooms.values()) == [(0, 1, 2, 3), (4, 5, 6, 7)]  # arrival order
    assert core.waiting() == {("arena", 4, "mesh"): (8,)}
    assert core.state_of(8) == "waiting"
    # The 4th arrival completed the first group: every member got room_joined with
    # its own rid, the peers seated before it, and the first arrival as host.
    joined = {c: msg for c, msg in outs[3] if isinstance(msg, m.RoomJoined)}
    assert sorted(joined) == [0, 1, 2, 3]
    for conn, msg in joined.items():
        assert msg.rid == 100 + conn and msg.host == core.peer_id(0)
        assert msg.peers == tuple(core.peer_id(c) for c in range(conn))
        assert msg.max_players == 4 and msg.private and msg.metadata == {"game": "arena"}
    # The earlier arrivals were told how many wait, with their request's rid first.
    assert outs[0] == [(0, m.QuickMatchWaiting(game="arena", size=4, waiting=1, rid=100))]
    assert (0, m.QuickMatchWaiting(game="arena", size=4, waiting=2)) in outs[1]
    assert outs[8] == [(8, m.QuickMatchWaiting(game="arena", size=4, waiting=1, rid=108))]


def test_queues_are_per_game_size_and_topology() -> None:
    core = make_core()
    for conn in range(4):
        core.connect(conn, 0.0)
    send(core, 0, quick(size=2))
    send(core, 1, quick(size=3))
    send(core, 2, quick(game="other", size=2))
    send(core, 3, quick(size=2, topology="star"))
    assert core.rooms() == {} and len(core.waiting()) == 4
    core.connect(4, 0.0)
    out = send(core, 4, quick(size=2, topology="star", metadata={"mode": "ffa"}))
    ((code, members),) = core.rooms().items()
    assert members == (3, 4)
    view = core.room_view(code)
    assert view is not None and view.topology == "star" and view.host == core.peer_id(3)
    assert view.metadata == {"game": "arena"}  # the first arrival's metadata, plus game
    assert {c for c, msg in out if isinstance(msg, m.RoomJoined)} == {3, 4}


def test_cancel_and_disconnect_leave_the_queue() -> None:
    core = make_core()
    for conn in range(3):
        core.connect(conn, 0.0)
    send(core, 0, quick(size=3))
    send(core, 1, quick(size=3))
    out = send(core, 0, {"type": "cancel_quick_match", "rid": 9})
    assert out == [
        (0, m.Ok(rid=9)),
        (1, m.QuickMatchWaiting(game="arena", size=3, waiting=1)),
    ]
    assert core.state_of(0) == "lobby"
    again = send(core, 0, {"type": "cancel_quick_match", "rid": 10})
    assert again[0][1] == m.ErrorMsg(code="not_waiting", message=again[0][1].message, rid=10)  # type: ignore[union-attr]
    assert core.disconnect(1, "disconnected", 1.0) == []  # alone in its queue: nobody to tell
    assert core.waiting() == {} and core.stats().quick_match_waiting == 0


def test_a_waiting_player_can_only_list_rooms_or_cancel() -> None:
    core = make_core()
    core.connect(0, 0.0)
    send(core, 0, quick())
    for obj in (
        {"type": "create_room"},
        {"type": "join_room", "room": "ABCDEF"},
        quick(),
        {"type": "leave_room"},
        {"type": "rejoin", "token": "x"},
    ):
        ((_, reply),) = send(core, 0, obj)
        assert isinstance(reply, m.ErrorMsg) and reply.code == "in_quick_match", obj
    ((_, listing),) = send(core, 0, {"type": "list_rooms"})
    assert isinstance(listing, m.RoomList)


def test_quick_match_limits() -> None:
    core = make_core(max_players_limit=4, default_max_players=4, max_rooms=1, max_metadata_bytes=16)
    for conn in range(5):
        core.connect(conn, 0.0)
    ((_, too_big),) = send(core, 0, quick(size=5))
    assert isinstance(too_big, m.ErrorMsg) and too_big.code == "bad_max_players"
    ((_, meta),) = send(core, 0, quick(size=2, metadata={"x": "y" * 20}))
    assert isinstance(meta, m.ErrorMsg) and meta.code == "metadata_too_large"
    send(core, 0, {"type": "create_room"})  # the one room the lobby may hold
    send(core, 1, quick(size=2))
    ((_, full),) = send(core, 2, quick(size=2))
    assert isinstance(full, m.ErrorMsg) and full.code == "too_many_rooms"
    assert core.waiting() == {("arena", 2, "mesh"): (1,)} and core.state_of(2) == "lobby"


def test_queues_alone() -> None:
    queues = QuickMatchQueues()
    assert queues.add(("g", 2, "mesh"), Waiter(1)) is None
    assert 1 in queues and len(queues) == 1
    group = queues.add(("g", 2, "mesh"), Waiter(2))
    assert group is not None and [w.conn for w in group] == [1, 2]
    assert len(queues) == 0 and queues.remove(1) is None


class QuickMatchMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = make_core(max_players_limit=4, default_max_players=4)
        self.now = 0.0
        self.rids = 0

    @initialize()
    def everyone_connects(self) -> None:
        for conn in range(N):
            self.core.connect(conn, self.now)

    @rule(
        conn=st.integers(0, N - 1),
        game=st.sampled_from(["a", "b"]),
        size=st.integers(2, 4),
        topology=st.sampled_from(["mesh", "star"]),
    )
    def request(self, conn: int, game: str, size: int, topology: str) -> None:
        state = self.core.state_of(conn)
        key = (game, size, topology)
        before = self.core.waiting().get(key, ())
        self.rids += 1
        out = send(self.core, conn, quick(game, size, self.rids, topology=topology))
        if state != "lobby":
            assert state is None or isinstance(out[0][1], m.ErrorMsg)
            return
        if len(before) + 1 < size:
            assert self.core.waiting()[key] == (*before, conn)
            assert (
                conn,
                m.QuickMatchWaiting(
                    game=game, size=size, waiting=len(before) + 1, topology=topology, rid=self.rids
                ),
            ) in out
            return
        group = (*before, conn)  # complete: seated in arrival order, first one hosts
        assert key not in self.core.waiting()
        joined = [(c, msg) for c, msg in out if isinstance(msg, m.RoomJoined)]
        assert [c for c, _ in joined] == list(group)
        code = joined[0][1].room
        assert self.core.rooms()[code] == group
        for i, (c, msg) in enumerate(joined):
            assert msg.room == code and msg.host == self.core.peer_id(group[0])
            assert msg.peers == tuple(self.core.peer_id(x) for x in group[:i])
            assert msg.topology == topology and self.core.state_of(c) == "in_room"

    @rule(conn=st.integers(0, N - 1))
    def cancel(self, conn: int) -> None:
        state = self.core.state_of(conn)
        out = send(self.core, conn, {"type": "cancel_quick_match"})
        if state == "waiting":
            assert isinstance(out[0][1], m.Ok) and self.core.state_of(conn) == "lobby"
        elif state is not None:
            assert isinstance(out[0][1], m.ErrorMsg) and out[0][1].code == "not_waiting"

    @rule(conn=st.integers(0, N - 1))
    def leave(self, conn: int) -> None:
        send(self.core, conn, {"type": "leave_room"})

    @rule(conn=st.integers(0, N - 1), how=st.sampled_from(["closed", "disconnected"]))
    def reconnect(self, conn: int, how: str) -> None:
        """The socket ends (a kept seat expires later) and a new one takes the id."""
        self.core.disconnect(conn, how, self.now)  # type: ignore[arg-type]
        self.now += 40.0
        self.core.tick(self.now)
        self.core.connect(conn, self.now)

    @invariant()
    def grouping_is_sound(self) -> None:
        waiting = self.core.waiting()
        queued = [c for conns in waiting.values() for c in conns]
        assert len(queued) == len(set(queued)), "a player in two queues"
        for (_, size, _), conns in waiting.items():
            assert 1 <= len(conns) < size, "nobody waits while a group could form"
        seated = [c for members in self.core.rooms().values() for c in members]
        assert len(seated) == len(set(seated)), "a player in two rooms"
        assert not set(seated) & set(queued), "waiting and seated at once"
        for code, members in self.core.rooms().items():
            assert len(members) <= self.core.room_capacity(code)
        for conn in range(N):
            assert (self.core.state_of(conn) == "waiting") == (conn in queued)


TestQuickMatchMachine = QuickMatchMachine.TestCase
TestQuickMatchMachine.settings = settings(stateful_step_count=60)
