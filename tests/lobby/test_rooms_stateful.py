"""Hypothesis state machine over the pure lobby core with several connections.

Invariants: no room over capacity, no peer in two rooms, no message crosses rooms,
leave/disconnect always clean up, empty rooms are removed, no client address holds
more connections than its cap, relays to a clogged recipient are refused (the
sender told), and the core's answer to every request matches a tiny model of what
should happen.
"""

from __future__ import annotations

import json
import random

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from netcode.config import LobbyConfig
from netcode.lobby import messages as m
from netcode.lobby.rooms import MAX_OUTBOUND_MESSAGES, CloseConnection, LobbyCore, Output

CONNS = st.integers(0, 5)
KINDS = st.sampled_from(sorted(m.SIGNAL_KINDS))
ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2", None])
PER_IP = 2
OUTBOUND = 4096


class LobbyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = LobbyConfig(
            max_players_limit=4,
            default_max_players=3,
            max_rooms=3,
            max_connections=5,
            max_errors_before_close=6,
            rate_limit_per_s=1e9,
            max_connections_per_ip=PER_IP,
            max_message_bytes=1024,
            byte_rate_burst=1024,
            byte_rate_limit_per_s=1e9,
            max_outbound_bytes=OUTBOUND,
            # This machine models the original lobby: a lost socket leaves at once.
            # Seats kept for reconnecting members: test_lifecycle_stateful.py.
            reconnect_grace_s=0.0,
        )
        self.core = LobbyCore(config, randbelow=random.Random(0).randrange)
        self.now = 0.0
        self.known_codes: list[str] = ["NOROOM"]
        self.address: dict[int, str | None] = {}  # the model's view of each address
        self.backlog: dict[int, tuple[int, int]] = {}

    # --- helpers ---------------------------------------------------------------------

    def send(self, conn: int, obj: dict[str, object]) -> Output:
        self.now += 0.01
        before = self.core.rooms()
        sender_room = self.core.room_of(conn)
        out = self.core.receive(conn, json.dumps(obj), self.now)
        self.forget_closed()
        self.check_routing(conn, sender_room, before, out)
        return out

    def check_routing(
        self, sender: int, sender_room: str | None, before: dict[str, tuple[int, ...]], out: Output
    ) -> None:
        after = self.core.rooms()
        for conn, msg in out:
            if not isinstance(msg, CloseConnection):  # whatever the core says, a client can read
                assert m.parse(m.serialize(msg), origin="server") == msg
            if isinstance(msg, m.SignalMsg):
                assert sender_room is not None and self.core.room_of(conn) == sender_room
                assert msg.sender == self.core.peer_id(sender) and conn != sender
            elif isinstance(msg, m.PeerJoinedMsg | m.PeerLeftMsg):
                members = set(before.get(msg.room, ())) | set(after.get(msg.room, ()))
                assert conn in members and conn != sender
            elif isinstance(msg, m.RoomJoined | m.RoomLeft | m.ErrorMsg | m.RoomList):
                assert conn == sender  # replies go to the requester only
            elif isinstance(msg, CloseConnection):
                assert conn == sender and self.core.state_of(conn) is None

    def code_for(self, index: int, lower: bool) -> str:
        """Mostly a live room (so joins and room_full happen), sometimes a dead code."""
        live = sorted(self.core.rooms())
        codes = live if live and index < 16 else self.known_codes
        code = codes[index % len(codes)]
        return code.lower() if lower else code

    # --- rules -----------------------------------------------------------------------

    def forget_closed(self) -> None:
        for conn in list(self.address):
            if self.core.state_of(conn) is None:
                del self.address[conn]
                self.backlog.pop(conn, None)

    def same_host(self, a: str | None, b: str | None) -> bool:
        """/64 for IPv6: the two documentation addresses share one."""
        return a is not None and b is not None and a.split(":")[0] == b.split(":")[0]

    @rule(conn=CONNS, address=ADDRESSES)
    def connect(self, conn: int, address: str | None) -> None:
        if self.core.state_of(conn) is not None:
            return
        full = self.core.stats().connections >= self.core.config.max_connections
        same = sum(self.same_host(a, address) for a in self.address.values())
        over_ip = address is not None and same >= PER_IP
        ((target, msg),) = self.core.connect(conn, self.now, address)
        assert target == conn
        assert isinstance(msg, CloseConnection) == (full or over_ip)
        if over_ip:
            assert isinstance(msg, CloseConnection) and msg.code == 1008
        assert (self.core.state_of(conn) is None) == (full or over_ip)
        if not (full or over_ip):
            self.address[conn] = address

    @rule(conn=CONNS, reason=st.sampled_from(["disconnected", "timeout", "kicked"]))
    def disconnect(self, conn: int, reason: str) -> None:
        room = self.core.room_of(conn)
        others = [c for c in self.core.rooms().get(room or "", ()) if c != conn]
        out = self.core.disconnect(conn, reason, self.now)  # type: ignore[arg-type]
        self.forget_closed()
        assert self.core.state_of(conn) is None
        left = [e for _, e in out if isinstance(e, m.PeerLeftMsg)]
        assert len(left) == len(others) and all(e.reason == reason for e in left)
        # A host that leaves hands over to the earliest-joined member left.
        changed = [(c, e) for c, e in out if isinstance(e, m.HostChanged)]
        assert all(e.host == self.core.peer_id(others[0]) for _, e in changed)
        assert sorted(c for c, _ in changed) == (sorted(others) if changed else [])

    @rule(conn=CONNS, max_players=st.none() | st.integers(0, 6), private=st.booleans())
    def create(self, conn: int, max_players: int | None, private: bool) -> None:
        state = self.core.state_of(conn)
        obj: dict[str, object] = {"type": "create_room", "private": private}
        if max_players is not None:
            obj["max_players"] = max_players
        rooms_before = self.core.stats().rooms
        out = self.send(conn, obj)
        if state is None:
            assert out == []
            return
        reply = out[0][1]
        ok = (
            state == "lobby"
            and (max_players is None or 1 <= max_players <= 4)
            and rooms_before < self.core.config.max_rooms
        )
        assert isinstance(reply, m.RoomJoined) == ok, reply
        if isinstance(reply, m.RoomJoined):
            self.known_codes.append(reply.room)
            assert reply.peers == () and self.core.room_of(conn) == reply.room

    @rule(conn=CONNS, index=st.integers(0, 20), lower=st.booleans())
    def join(self, conn: int, index: int, lower: bool) -> None:
        state = self.core.state_of(conn)
        code = self.code_for(index, lower)
        room = self.core.rooms().get(code.upper())
        out = self.send(conn, {"type": "join_room", "room": code})
        if state is None:
            assert out == []
            return
        reply = out[0][1]
        if state == "in_room":
            assert isinstance(reply, m.ErrorMsg) and reply.code == "already_in_room"
        elif room is None:
            assert isinstance(reply, m.ErrorMsg) and reply.code == "room_not_found"
        elif len(room) >= self.core.room_capacity(code.upper()):
            assert isinstance(reply, m.ErrorMsg) and reply.code == "room_full"
        else:
            assert isinstance(reply, m.RoomJoined)
            assert reply.peers == tuple(self.core.peer_id(c) for c in room)
            assert sorted(c for c, _ in out[1:]) == sorted(room)

    @rule(conn=CONNS)
    def leave(self, conn: int) -> None:
        state = self.core.state_of(conn)
        out = self.send(conn, {"type": "leave_room"})
        if state is not None:
            reply = out[0][1]
            assert isinstance(reply, m.RoomLeft) == (state == "in_room")
        assert self.core.room_of(conn) is None

    @rule(conn=CONNS, nbytes=st.integers(0, OUTBOUND), messages=st.integers(0, 600))
    def backlog_reported(self, conn: int, nbytes: int, messages: int) -> None:
        self.core.report_backlog(conn, nbytes, messages)
        if self.core.state_of(conn) is not None:
            self.backlog[conn] = (nbytes, messages)

    @rule(conn=CONNS, dest=CONNS, kind=KINDS, data=st.none() | st.integers() | st.text())
    def signal(self, conn: int, dest: int, kind: str, data: int | str | None) -> None:
        to = self.core.peer_id(dest) or "gone"
        room = self.core.room_of(conn)
        same = room is not None and room == self.core.room_of(dest) and conn != dest
        obj: dict[str, object] = {"type": "signal", "to": to, "kind": kind, "data": data}
        queued, messages = self.backlog.get(dest, (0, 0))
        size = len(json.dumps(obj).encode())
        clogged = queued + size > OUTBOUND // 2 or messages >= MAX_OUTBOUND_MESSAGES // 2
        ok = same and data is not None and size <= 1024
        out = self.send(conn, obj)
        delivered = [c for c, msg in out if isinstance(msg, m.SignalMsg)]
        assert delivered == ([dest] if ok and not clogged else [])
        if ok and clogged:
            reply = out[0][1]
            assert isinstance(reply, m.ErrorMsg) and reply.code == "peer_busy"
            assert self.core.state_of(dest) is not None  # the recipient is never blamed

    @rule(conn=CONNS)
    def list_rooms(self, conn: int) -> None:
        out = self.send(conn, {"type": "list_rooms"})
        for _, msg in out:
            if isinstance(msg, m.RoomList):
                rooms = self.core.rooms()
                for summary in msg.rooms:
                    assert summary.players == len(rooms[summary.room])

    @rule(conn=CONNS, junk=st.text(max_size=30) | st.binary(max_size=10))
    def garbage(self, conn: int, junk: str | bytes) -> None:
        self.now += 0.01
        sender_room = self.core.room_of(conn)
        before = self.core.rooms()
        out = self.core.receive(conn, junk, self.now)
        self.forget_closed()
        self.check_routing(conn, sender_room, before, out)

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def rooms_are_consistent(self) -> None:
        seen: set[int] = set()
        for code, members in self.core.rooms().items():
            assert members, "empty rooms are removed"
            assert len(members) <= self.core.room_capacity(code)
            for conn in members:
                assert conn not in seen, "a peer in two rooms"
                seen.add(conn)
                assert self.core.room_of(conn) == code
        connected = set(self.core.connections())
        assert seen <= connected
        for conn in connected - seen:
            assert self.core.room_of(conn) is None
        stats = self.core.stats()
        assert stats.peers_in_rooms == len(seen) and stats.connections == len(connected)
        assert set(self.address) == connected
        for address in set(self.address.values()) - {None}:
            assert sum(self.same_host(a, address) for a in self.address.values()) <= PER_IP


TestLobbyMachine = LobbyMachine.TestCase
