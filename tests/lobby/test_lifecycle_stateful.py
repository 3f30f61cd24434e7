"""Hypothesis state machine over the match lifecycle of the pure lobby core.

A small independent model of rooms (seats in join order, connected or not, host,
lock, bans, live tokens) is updated from what each step *should* do, and the core
must agree with it after every step: room ownership (only the host kicks, locks,
updates; everyone else gets not_owner), kick and lock (kicked peers get the
reason and cannot come back with that identity; locked rooms refuse joins but not
rejoins), reconnection tokens (wrong, expired, foreign and revoked ones refused;
a valid one gives back the same peer id and seat) and host choice on migration
(the earliest-joined connected member, after host_grace_s or at once when the
host's seat is freed). Time is a fake clock; deadlines run through tick().
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from netcode.config import LobbyConfig
from netcode.lobby import messages as m
from netcode.lobby.rooms import CloseConnection, LobbyCore, Output

CONNS = st.integers(0, 5)
GRACE = 1.0
HOST_GRACE = 0.3


@dataclass
class MSeat:
    peer: str
    token: str
    conn: int | None
    dropped: float | None = None


@dataclass
class MRoom:
    code: str
    max_players: int
    seats: list[MSeat] = field(default_factory=list)
    host: str = ""
    host_overdue: bool = False  # the host is away past host_grace with nobody to take over
    locked: bool = False
    banned: set[str] = field(default_factory=set)  # tokens and peer ids

    def seat_of(self, peer: str) -> MSeat | None:
        return next((s for s in self.seats if s.peer == peer), None)

    def connected(self) -> list[MSeat]:
        return [s for s in self.seats if s.conn is not None]


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = LobbyConfig(
            max_players_limit=4,
            default_max_players=3,
            max_connections=8,
            max_errors_before_close=1_000,
            rate_limit_per_s=1e9,
            reconnect_grace_s=GRACE,
            host_grace_s=HOST_GRACE,
        )
        self.core = LobbyCore(config, randbelow=random.Random(1).randrange)
        self.now = 0.0
        self.rooms: dict[str, MRoom] = {}
        self.tokens: list[str] = ["not-a-token"]  # every token ever seen, for rejoin draws
        self.banned: dict[str, str] = {}  # kicked token -> room code

    # --- model helpers ---------------------------------------------------------------

    def room_of_conn(self, conn: int) -> tuple[MRoom, MSeat] | None:
        for room in self.rooms.values():
            for seat in room.seats:
                if seat.conn == conn:
                    return room, seat
        return None

    def live(self, token: str) -> tuple[MRoom, MSeat] | None:
        for room in self.rooms.values():
            for seat in room.seats:
                if seat.token == token:
                    return room, seat
        return None

    def free_seat(self, room: MRoom, seat: MSeat) -> None:
        """A seat leaves for good: the model's host rule on the way out."""
        room.seats.remove(seat)
        if not room.seats:
            del self.rooms[room.code]
            return
        if room.host == seat.peer:
            self.elect(room)

    def elect(self, room: MRoom) -> None:
        connected = room.connected()
        new = connected[0] if connected else room.seats[0]
        room.host = new.peer
        room.host_overdue = new.conn is None

    def draw_token(self, source: str, pick: int) -> str:
        """A token of a kept (reconnecting) seat, of a kicked member, or any seen."""
        kept = [s.token for r in self.rooms.values() for s in r.seats if s.conn is None]
        pool = {"kept": kept, "banned": sorted(self.banned), "any": self.tokens}[source]
        pool = pool or self.tokens
        return pool[pick % len(pool)]

    def pick_conn(self, index: int, state: str) -> int:
        """A connection in ``state`` if there is one (so moves mostly make sense)."""
        fitting = [c for c in range(6) if self.core.state_of(c) == state]
        return fitting[index % len(fitting)] if fitting else index

    def member(self, index: int, as_host: bool) -> tuple[MRoom, MSeat] | None:
        """A connected member: the host of some room, or a non-host."""
        seats = [
            (room, seat)
            for room in self.rooms.values()
            for seat in room.connected()
            if (seat.peer == room.host) == as_host
        ]
        return seats[index % len(seats)] if seats else None

    def hand_over_if_overdue(self, room: MRoom) -> None:
        """Someone is connected again: a host long gone hands over now."""
        host = room.seat_of(room.host)
        assert host is not None
        if host.conn is not None:
            room.host_overdue = False
        elif room.host_overdue:
            self.elect(room)

    def send(self, conn: int, obj: dict[str, object]) -> Output:
        out = self.core.receive(conn, json.dumps(obj), self.now)
        for _, msg in out:
            if not isinstance(msg, CloseConnection):  # whatever the core says, a client reads
                assert m.parse(m.serialize(msg), origin="server") == msg
        return out

    def reply(self, out: Output, conn: int) -> object:
        return next(msg for c, msg in out if c == conn)

    def joined(self, reply: object, conn: int) -> m.RoomJoined:
        assert isinstance(reply, m.RoomJoined), reply
        assert reply.token is not None and reply.token_expires_s == GRACE
        self.tokens.append(reply.token)
        assert reply.peer_id == self.core.peer_id(conn)
        return reply

    # --- rules -----------------------------------------------------------------------

    @initialize()
    def everyone_connects(self) -> None:
        for conn in range(6):
            self.core.connect(conn, self.now, f"10.0.0.{conn % 2}")

    @rule(conn=CONNS)
    def connect(self, conn: int) -> None:
        if self.core.state_of(conn) is None:
            self.core.connect(conn, self.now, f"10.0.0.{conn % 2}")

    @precondition(lambda self: len(self.rooms) < 2)
    @rule(who=CONNS, topology=st.sampled_from(["mesh", "star"]), size=st.integers(1, 4))
    def create(self, who: int, topology: str, size: int) -> None:
        conn = self.pick_conn(who, "lobby")
        state = self.core.state_of(conn)
        out = self.send(conn, {"type": "create_room", "max_players": size, "topology": topology})
        if state != "lobby":
            assert state is None or isinstance(self.reply(out, conn), m.ErrorMsg)
            return
        reply = self.joined(self.reply(out, conn), conn)
        assert reply.host == reply.peer_id and reply.topology == topology and reply.peers == ()
        room = MRoom(reply.room, size, host=reply.peer_id)
        room.seats.append(MSeat(reply.peer_id, str(reply.token), conn))
        self.rooms[reply.room] = room

    @rule(pick=st.integers(0, 5), index=st.integers(0, 10))
    def join(self, pick: int, index: int) -> None:
        conn = self.pick_conn(pick, "lobby")
        state = self.core.state_of(conn)
        codes = sorted(self.rooms) or ["NOROOM"]
        code = codes[index % len(codes)]
        room = self.rooms.get(code)
        out = self.send(conn, {"type": "join_room", "room": code})
        if state != "lobby":
            return
        reply = self.reply(out, conn)
        peer = self.core.peer_id(conn)
        if room is None:
            expected = "room_not_found"
        elif peer in room.banned:
            expected = "banned"
        elif room.locked:
            expected = "room_locked"
        elif len(room.seats) >= room.max_players:
            expected = "room_full"
        else:
            joined = self.joined(reply, conn)
            assert joined.peers == tuple(s.peer for s in room.seats)
            assert joined.reconnecting == tuple(s.peer for s in room.seats if s.conn is None)
            assert joined.host == room.host
            room.seats.append(MSeat(joined.peer_id, str(joined.token), conn))
            self.hand_over_if_overdue(room)
            return
        assert isinstance(reply, m.ErrorMsg) and reply.code == expected, (reply, expected)

    @rule(conn=CONNS)
    def leave(self, conn: int) -> None:
        where = self.room_of_conn(conn)
        out = self.send(conn, {"type": "leave_room"})
        if where is not None:
            room, seat = where
            assert isinstance(self.reply(out, conn), m.RoomLeft)
            self.free_seat(room, seat)

    @rule(conn=CONNS, how=st.sampled_from(["closed", "disconnected", "disconnected", "kicked"]))
    def socket_ends(self, conn: int, how: str) -> None:
        where = self.room_of_conn(conn)
        out = self.core.disconnect(conn, how, self.now)  # type: ignore[arg-type]
        assert self.core.state_of(conn) is None
        if where is None:
            return
        room, seat = where
        if how in ("disconnected", "timeout"):
            seat.conn, seat.dropped = None, self.now
            expected = {
                (s.conn, m.PeerReconnecting(room=room.code, peer_id=seat.peer))
                for s in room.connected()
            }
            assert set(out) == expected
        else:
            self.free_seat(room, seat)

    @rule(
        who=CONNS,
        source=st.sampled_from(["kept", "kept", "banned", "any"]),
        pick=st.integers(0, 50),
        give_room=st.sampled_from([None, None, "own", "other"]),
    )
    def rejoin(self, who: int, source: str, pick: int, give_room: str | None) -> None:
        conn = self.pick_conn(who, "lobby")
        token = self.draw_token(source, pick)
        state = self.core.state_of(conn)
        target = self.live(token)
        room_arg = None
        if give_room == "own" and target is not None:
            room_arg = target[0].code.lower()
        elif give_room == "other":
            room_arg = "ZZZZZZ"
        obj: dict[str, object] = {"type": "rejoin", "token": token}
        if room_arg is not None:
            obj["room"] = room_arg
        out = self.send(conn, obj)
        if state != "lobby":
            return
        reply = self.reply(out, conn)
        if target is None or room_arg == "ZZZZZZ":
            kicked_from = self.banned.get(token)
            banned = kicked_from in self.rooms and room_arg in (None, kicked_from)
            expected = "banned" if banned else "bad_token"
            assert isinstance(reply, m.ErrorMsg) and reply.code == expected, (reply, expected)
            return
        room, seat = target
        joined = self.joined(reply, conn)
        # Same peer id, same seat (join position), same token.
        assert joined.peer_id == seat.peer and joined.token == token
        assert joined.peers == tuple(s.peer for s in room.seats if s is not seat)
        old = seat.conn
        others = {s.conn for s in room.connected() if s is not seat}
        seat.conn, seat.dropped = conn, None
        reconnected = {c for c, msg in out if isinstance(msg, m.PeerReconnected)}
        assert reconnected == others
        if old is not None:  # a still-open old websocket is replaced and closed
            assert any(c == old and isinstance(msg, CloseConnection) for c, msg in out)
            assert self.core.state_of(old) is None
        self.hand_over_if_overdue(room)

    @rule(
        who=st.integers(0, 5),
        as_host=st.booleans(),
        pick=st.integers(0, 5),
        reason=st.text(max_size=10),
    )
    def kick(self, who: int, as_host: bool, pick: int, reason: str) -> None:
        where = self.member(who, as_host)
        if where is None:
            return
        room, me = where
        assert me.conn is not None
        conn = me.conn
        others = [s for s in room.seats if s is not me]
        target = me if pick == 0 or not others else others[pick % len(others)]
        out = self.send(conn, {"type": "kick", "peer": target.peer, "reason": reason})
        reply = self.reply(out, conn)
        if room.host != me.peer:
            assert isinstance(reply, m.ErrorMsg) and reply.code == "not_owner"
            return
        if target is me:
            assert isinstance(reply, m.ErrorMsg) and reply.code == "bad_target"
            return
        assert isinstance(reply, m.Ok)
        if target.conn is not None:
            assert (target.conn, m.Kicked(room=room.code, reason=reason)) in out
            assert self.core.state_of(target.conn) == "lobby"
        left = m.PeerLeftMsg(room=room.code, peer_id=target.peer, reason="kicked")
        assert {c for c, msg in out if msg == left} == {
            s.conn for s in room.connected() if s is not target
        }
        room.banned |= {target.token, target.peer}
        self.banned[target.token] = room.code
        self.free_seat(room, target)

    @rule(
        who=st.integers(0, 5), as_host=st.booleans(), locked=st.booleans(), game=st.text(max_size=5)
    )
    def owner_updates(self, who: int, as_host: bool, locked: bool, game: str) -> None:
        where = self.member(who, as_host)
        if where is None:
            return
        room, me = where
        assert me.conn is not None
        conn = me.conn
        out = self.send(conn, {"type": "lock_room", "locked": locked})
        out += self.send(conn, {"type": "update_room", "metadata": {"game": game}})
        replies = [msg for c, msg in out if c == conn and isinstance(msg, m.Ok | m.ErrorMsg)]
        if room.host != me.peer:
            assert all(isinstance(r, m.ErrorMsg) and r.code == "not_owner" for r in replies)
            return
        assert replies == [m.Ok(), m.Ok()]
        room.locked = locked
        update = m.RoomUpdated(room=room.code, metadata={"game": game}, locked=locked)
        assert {c for c, msg in out if msg == update} == {s.conn for s in room.connected()}
        view = self.core.room_view(room.code)
        assert view is not None and view.metadata == {"game": game}

    @rule(dt=st.sampled_from([0.05, 0.2, HOST_GRACE, GRACE]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        deadline = self.core.next_deadline()
        out = self.core.tick(self.now)
        if deadline is None or deadline > self.now:
            assert out == []
        for room in list(self.rooms.values()):
            for seat in list(room.seats):  # grace over: the seat is freed
                if seat.dropped is not None and seat.dropped + GRACE <= self.now:
                    self.free_seat(room, seat)
                    if room.code not in self.rooms:
                        break
        for room in self.rooms.values():
            host = room.seat_of(room.host)
            assert host is not None
            overdue = host.dropped is not None and host.dropped + HOST_GRACE <= self.now
            if overdue and not room.host_overdue:
                if room.connected():
                    self.elect(room)
                else:
                    room.host_overdue = True
        for _, msg in out:
            if isinstance(msg, m.PeerLeftMsg):
                assert msg.reason == "timeout"

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def core_matches_model(self) -> None:
        assert set(self.core.rooms()) == set(self.rooms)
        seen: set[str] = set()
        for code, room in self.rooms.items():
            view = self.core.room_view(code)
            assert view is not None
            assert view.members == tuple(s.peer for s in room.seats)
            assert view.reconnecting == tuple(s.peer for s in room.seats if s.conn is None)
            assert view.host == room.host and view.host in view.members
            assert view.locked == room.locked
            assert 1 <= len(view.members) <= view.max_players
            assert not seen & set(view.members), "a peer in two rooms"
            seen |= set(view.members)
            for seat in room.seats:
                if seat.conn is not None:
                    assert self.core.room_of(seat.conn) == code
                    assert self.core.peer_id(seat.conn) == seat.peer
                    assert self.core.state_of(seat.conn) == "in_room"

    @invariant()
    def kept_seats_hold_their_address_slot(self) -> None:
        held = sum(1 for r in self.rooms.values() for s in r.seats if s.conn is None)
        slots = self.core.address_slots()
        assert sum(slots.values()) == len(self.core.connections()) + held
        assert self.core.stats().reconnecting == held

    @invariant()
    def the_host_is_connected_unless_in_grace(self) -> None:
        for room in self.rooms.values():
            host = room.seat_of(room.host)
            assert host is not None
            if host.conn is None and room.connected():
                assert host.dropped is not None and not room.host_overdue
                assert self.now < host.dropped + HOST_GRACE

    @invariant()
    def a_deadline_exactly_while_a_seat_is_kept(self) -> None:
        deadline = self.core.next_deadline()
        held = [s for r in self.rooms.values() for s in r.seats if s.conn is None]
        assert (deadline is None) == (not held)
        assert deadline is None or deadline > self.now  # tick() ran everything due


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(stateful_step_count=80)
