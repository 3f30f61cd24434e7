"""The lobby core's registry: connections, rooms, seats, tokens and seat deadlines.

:class:`_Registry` holds the state of :class:`netcode.lobby.rooms.LobbyCore` and
the operations that keep its indexes consistent with each other (a seat's token
in ``_tokens``, a reconnecting seat in ``_held`` with its address slot and its
deadlines, bans in ``_banned``): seating and unseating members, holding a seat
through a dropped connection, host migration, the timers, the snapshots several
lobby nodes exchange, and the read-only introspection. What a client *message*
does (the transition table, the handlers, the abuse budgets) is in
:mod:`netcode.lobby.rooms`, which builds :class:`LobbyCore` on this class.

Private to :mod:`netcode.lobby`: import the public names from
:mod:`netcode.lobby.rooms`.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..config import LobbyConfig
from .budget import TokenBucket, normalize_room_code
from .cluster import RoomSnapshot, export_room, hash_token, is_hashed, room_from_snapshot
from .messages import (
    HostChanged,
    PeerJoinedMsg,
    PeerLeftMsg,
    PeerReconnecting,
    Rejoin,
    Rid,
    RoomJoined,
    RoomSummary,
    ServerMessage,
)
from .quickmatch import QueueKey, QuickMatchQueues
from .roomstate import Room, RoomView, Seat, choose_host
from .states import ROOM_CODE_ALPHABET, CloseConnection, ConnId, ConnState, LobbyStats, Output

# Private to netcode.lobby (see the module docstring).
__all__ = ["_Conn", "_Refusal", "_Registry", "announce"]


@dataclass(slots=True)
class _Conn:
    conn_id: ConnId
    peer_id: str
    address: str | None  # address_key() of the client, for the per-address cap
    messages: TokenBucket
    bytes: TokenBucket
    errors: TokenBucket
    room: str | None = None
    # Set from TRANSITIONS only (see LobbyCore._move).
    state: ConnState = "lobby"
    # Reported by the I/O layer: what it still holds unsent for this connection.
    backlog_bytes: int = 0
    backlog_messages: int = 0


class _Refusal(Exception):
    """A legal move that cannot be done now (room full, unknown room...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Registry:
    """Connections, rooms, seats, tokens, bans and deadlines, kept consistent."""

    def __init__(
        self,
        config: LobbyConfig | None = None,
        *,
        randbelow: Callable[[int], int] = secrets.randbelow,
        token_factory: Callable[[], str] | None = None,
    ) -> None:
        self.config = config if config is not None else LobbyConfig()
        self._randbelow = randbelow
        self._token_factory = token_factory or (lambda: secrets.token_urlsafe(24))
        self._conns: dict[ConnId, _Conn] = {}
        self._by_peer: dict[str, ConnId] = {}
        self._rooms: dict[str, Room] = {}
        self._per_address: dict[str, int] = {}  # address_key -> open connections + held seats
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (room code, peer id)
        self._held: dict[str, str] = {}  # peer id of a reconnecting seat -> room code
        # (when, peer id) of every grace and host-grace deadline set; an entry whose
        # seat moved on is skipped when it comes up (lazy deletion keeps it O(log n)).
        self._deadlines: list[tuple[float, str]] = []
        self._banned: dict[str, str] = {}  # banned token or peer id -> room code
        self._queues = QuickMatchQueues()
        self._adopted = False  # any seat imported from a snapshot (hashed tokens)
        # Several nodes (netcode/net/lobby_cluster.py): rooms changed since the adapter
        # last drained this (None: nobody snapshots, nothing recorded); where new room
        # codes come from (codes reserved cluster-wide; None from it: "unavailable");
        # public rooms of other nodes to add to room_list.
        self.dirty: set[str] | None = None
        self.code_source: Callable[[], str | None] | None = None
        self.extra_rooms: Callable[[], Iterable[RoomSummary]] | None = None

    # --- introspection (healthz, tests, invariants) ----------------------------------

    def stats(self) -> LobbyStats:
        in_rooms = sum(len(r.connected()) for r in self._rooms.values())
        return LobbyStats(
            len(self._conns), len(self._rooms), in_rooms, len(self._held), len(self._queues)
        )

    def peer_id(self, conn_id: ConnId) -> str | None:
        conn = self._conns.get(conn_id)
        return None if conn is None else conn.peer_id

    def address_of(self, conn_id: ConnId) -> str | None:
        """The connection's address key (its per-address cap unit), as given at connect."""
        conn = self._conns.get(conn_id)
        return None if conn is None else conn.address

    def room_of(self, conn_id: ConnId) -> str | None:
        conn = self._conns.get(conn_id)
        return None if conn is None else conn.room

    def state_of(self, conn_id: ConnId) -> ConnState | None:
        conn = self._conns.get(conn_id)
        return None if conn is None else conn.state

    def rooms(self) -> dict[str, tuple[ConnId, ...]]:
        """Room code -> connected members in join order (reconnecting seats left out)."""
        return {code: tuple(r.connected()) for code, r in self._rooms.items()}

    def room_view(self, code: str) -> RoomView | None:
        room = self._rooms.get(code)
        if room is None:
            return None
        return RoomView(
            code=room.code,
            host=room.host,
            topology=room.topology,
            locked=room.locked,
            max_players=room.max_players,
            metadata=dict(room.metadata),
            members=tuple(s.peer_id for s in room.seats),
            reconnecting=tuple(s.peer_id for s in room.seats if not s.connected),
        )

    def room_capacity(self, code: str) -> int:
        return self._rooms[code].max_players

    def connections(self) -> tuple[ConnId, ...]:
        return tuple(self._conns)

    def pending_deadlines(self) -> int:
        """Deadline entries held, stale ones included (bounded: tests count it)."""
        return len(self._deadlines)

    def waiting(self) -> dict[QueueKey, tuple[ConnId, ...]]:
        """Quick-match queues: (game, size, topology) -> connections in arrival order."""
        return self._queues.waiting()

    def address_slots(self) -> dict[str, int]:
        """Per-address count: open connections plus reconnecting seats."""
        return dict(self._per_address)

    def public_rooms(self, game: str | None = None) -> Iterator[RoomSummary]:
        """Summaries of this core's public rooms (of ``game`` if given)."""
        for room in self._rooms.values():
            if room.private or (game is not None and room.metadata.get("game") != game):
                continue
            yield RoomSummary(
                room=room.code,
                players=len(room.seats),
                max_players=room.max_players,
                metadata=room.metadata,
                topology=room.topology,
                locked=room.locked,
            )

    # --- several nodes (snapshots in netcode/lobby/cluster.py) --------------------------

    def snapshot(self, code: str) -> RoomSnapshot | None:
        """What another node needs to adopt room ``code`` (None: no such room)."""
        room = self._rooms.get(code)
        return None if room is None else export_room(room)

    def adopt(self, snapshot: RoomSnapshot, now: float) -> bool:
        """Import a room whose node died: every member is reconnecting (grace and
        host grace from now), their tokens work here. False if the code is taken."""
        if snapshot.code in self._rooms:
            return False
        room = room_from_snapshot(snapshot, now)
        self._rooms[room.code] = room
        self._adopted = True
        for seat in room.seats:
            self._tokens[seat.token] = (room.code, seat.peer_id)
            self._keep(room, seat, now)
        for identity in room.banned:
            self._banned[identity] = room.code
        self._touch(room.code)
        return True

    def evict(self, code: str, close_code: int, why: str) -> Output:
        """Forget room ``code`` (another node homes it now): its members are closed
        with ``close_code`` so they rejoin it there."""
        room = self._rooms.get(code)
        if room is None:
            return []
        members = [self._conns[c] for c in room.connected()]
        self._drop_room(room)
        out: Output = []
        for conn in members:
            out.extend(self._forget(conn, close_code, why))
        return out

    def _touch(self, code: str) -> None:
        if self.dirty is not None:
            self.dirty.add(code)

    # --- timers ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work (a seat's grace ends, a host is overdue)."""
        while self._deadlines and not self._due(*self._deadlines[0]):
            heapq.heappop(self._deadlines)  # stale: the seat came back or left
        return self._deadlines[0][0] if self._deadlines else None

    def tick(self, now: float) -> Output:
        """Apply every deadline that has passed: a reconnecting seat whose grace
        ended leaves (``peer_left`` reason ``timeout``); a host gone longer than
        ``host_grace_s`` is replaced (``host_changed``)."""
        out: Output = []
        while self._deadlines and self._deadlines[0][0] <= now:
            when, peer_id = heapq.heappop(self._deadlines)
            if not self._due(when, peer_id):
                continue
            room = self._rooms[self._held[peer_id]]
            seat = room.seat(peer_id)
            assert seat is not None  # _held only names seats that exist
            if seat.expires == when:
                out.extend(self._remove_seat(room, seat, "timeout"))
            else:
                seat.host_deadline = None  # overdue from now on
                out.extend(self._migrate_if_overdue(room))
        return out

    def _due(self, when: float, peer_id: str) -> bool:
        """Is this heap entry still a deadline of a kept seat?"""
        code = self._held.get(peer_id)
        seat = None if code is None else self._rooms[code].seat(peer_id)
        return seat is not None and when in (seat.expires, seat.host_deadline)

    # --- rooms and seats -------------------------------------------------------------

    def _check_room_space(self) -> None:
        if len(self._rooms) >= self.config.max_rooms:
            raise _Refusal("too_many_rooms", "the lobby has no room for another room")

    def _new_room(
        self, max_players: int, private: bool, metadata: dict[str, Any], topology: str, now: float
    ) -> Room:
        self._check_room_space()
        code = self._new_code()
        room = Room(code, max_players, private, dict(metadata), now, topology=topology)
        self._rooms[code] = room
        return room

    def _new_code(self) -> str:
        if self.code_source is None:
            return self._new_id(
                ROOM_CODE_ALPHABET, self.config.room_code_length, self._rooms.__contains__
            )
        code = self.code_source()  # reserved cluster-wide by the adapter
        if code is None or code in self._rooms:
            raise _Refusal("unavailable", "no room code available now: try again")
        return code

    def _enter(self, conn: _Conn, room: Room, rid: Rid | None) -> Output:
        """Seat ``conn`` last in ``room`` (its first member becomes the host)."""
        token = self._new_token()
        room.seats.append(Seat(conn.peer_id, token, conn.conn_id))
        self._tokens[token] = (room.code, conn.peer_id)
        if not room.host:
            room.host = conn.peer_id
        conn.room = room.code
        self._touch(room.code)
        out: Output = [(conn.conn_id, self._joined(room, conn.peer_id, token, rid))]
        joined = PeerJoinedMsg(room=room.code, peer_id=conn.peer_id)
        out.extend(announce(room, joined, exclude=conn.peer_id))
        out.extend(self._migrate_if_overdue(room))  # a host long gone hands over now
        return out

    def _joined(self, room: Room, peer_id: str, token: str, rid: Rid | None) -> RoomJoined:
        others = [s for s in room.seats if s.peer_id != peer_id]
        return RoomJoined(
            room=room.code,
            peer_id=peer_id,
            peers=tuple(s.peer_id for s in others),
            max_players=room.max_players,
            private=room.private,
            metadata=room.metadata,
            rid=rid,
            topology=room.topology,
            host=room.host,
            token=token,
            token_expires_s=self.config.reconnect_grace_s,
            locked=room.locked,
            reconnecting=tuple(s.peer_id for s in others if not s.connected),
        )

    def _remove_seat(self, room: Room, seat: Seat, reason: str) -> Output:
        """Take ``seat`` out of ``room`` for good (token revoked), announce it, pick a
        new host if it was the host, drop the room if now empty."""
        room.seats.remove(seat)
        self._tokens.pop(seat.token, None)
        self._touch(room.code)
        if seat.conn is not None:
            member = self._conns.get(seat.conn)  # None: disconnect() forgot it already
            if member is not None:
                member.room = None
        else:
            self._unhold(seat)
        if not room.seats:
            self._drop_room(room)
            return []
        out = announce(room, PeerLeftMsg(room=room.code, peer_id=seat.peer_id, reason=reason))
        if room.host == seat.peer_id:
            out.extend(self._migrate(room))
        return out

    def _drop_room(self, room: Room) -> None:
        del self._rooms[room.code]
        for identity in room.banned:
            self._banned.pop(identity, None)
        for seat in room.seats:  # only reconnecting seats can be left here
            self._tokens.pop(seat.token, None)
            self._unhold(seat)
        room.seats.clear()

    def _ban(self, room: Room, identity: str) -> None:
        self._banned[identity] = room.code
        for forgotten in room.ban(identity, self.config.max_banned_per_room):
            self._banned.pop(forgotten, None)

    # --- reconnecting seats and host migration ---------------------------------------

    def _hold_seat(self, room: Room, seat: Seat, address: str | None, now: float) -> Output:
        """Keep a dropped member's seat (and its address slot) for the grace period."""
        seat.conn = None
        seat.address = address
        self._keep(room, seat, now)
        self._touch(room.code)
        if len(self._deadlines) > 4 * len(self._held) + 64:
            # Drop/rejoin churn leaves stale entries behind: compact, amortized O(1).
            self._deadlines = [entry for entry in self._deadlines if self._due(*entry)]
            heapq.heapify(self._deadlines)
        return announce(room, PeerReconnecting(room=room.code, peer_id=seat.peer_id))

    def _keep(self, room: Room, seat: Seat, now: float) -> None:
        """Mark ``seat`` reconnecting: its grace (and, for the host, host grace) from now."""
        cfg = self.config
        seat.expires = now + cfg.reconnect_grace_s
        heapq.heappush(self._deadlines, (seat.expires, seat.peer_id))
        if room.host == seat.peer_id:
            seat.host_deadline = now + cfg.host_grace_s
            heapq.heappush(self._deadlines, (seat.host_deadline, seat.peer_id))
        self._held[seat.peer_id] = room.code

    def _unhold(self, seat: Seat) -> None:
        """A reconnecting seat is taken back or gone: free its address slot."""
        if self._held.pop(seat.peer_id, None) is not None:
            self._release_address(seat.address)

    def _seat_for_token(self, msg: Rejoin, now: float) -> tuple[Room, Seat]:
        """The seat a valid token names; refuses unknown, expired, foreign, revoked."""
        # A hashed form is never a token: knowing a snapshot is not knowing the token.
        entry = None if is_hashed(msg.token) else self._tokens.get(msg.token)
        if entry is None and self._adopted:
            entry = self._tokens.get(hash_token(msg.token))  # a seat from a snapshot
        room = None if entry is None else self._rooms.get(entry[0])
        seat = None if room is None or entry is None else room.seat(entry[1])
        wanted = None if msg.room is None else normalize_room_code(msg.room)
        if room is None or seat is None or (wanted is not None and wanted != room.code):
            kicked_from = self._banned.get(msg.token)
            if kicked_from is not None and wanted in (None, kicked_from):
                raise _Refusal("banned", f"you were kicked from room {kicked_from}")
            raise _bad_token()
        if seat.expires is not None and seat.expires <= now:  # tick() not run yet
            raise _bad_token()
        return room, seat

    def _migrate_if_overdue(self, room: Room) -> Output:
        """Replace a reconnecting host whose host grace is over, if anyone is here."""
        host = room.seat(room.host)
        if host is None or host.connected or host.host_deadline is not None:
            return []
        if not room.connected():
            return []  # nobody to hand it to; re-checked when someone rejoins
        return self._migrate(room)

    def _migrate(self, room: Room) -> Output:
        previous = room.host
        new = choose_host(room.seats)
        if new is None or new.peer_id == previous:
            return []
        room.host = new.peer_id
        self._touch(room.code)
        if not new.connected:
            new.host_deadline = None  # chosen while away: already overdue
        return announce(room, HostChanged(room=room.code, host=new.peer_id, previous=previous))

    # --- connections, ids, tokens, address slots -------------------------------------

    def _forget(self, conn: _Conn, code: int, why: str) -> Output:
        """Drop a connection whose seat another connection took over (no room effects)."""
        del self._conns[conn.conn_id]
        del self._by_peer[conn.peer_id]
        self._release_address(conn.address)
        return [(conn.conn_id, CloseConnection(code, why))]

    def _peer_taken(self, peer_id: str) -> bool:
        return peer_id in self._by_peer or peer_id in self._held

    def _new_token(self) -> str:
        for _ in range(1_000):
            token = self._token_factory()
            if token not in self._tokens:
                return token
        raise RuntimeError("token space exhausted: is token_factory random?")

    def _hold_address(self, key: str | None) -> None:
        if key is not None:
            self._per_address[key] = self._per_address.get(key, 0) + 1

    def _release_address(self, key: str | None) -> None:
        if key is None:
            return
        left = self._per_address.pop(key) - 1
        if left:
            self._per_address[key] = left

    def _new_id(self, alphabet: str, length: int, taken: Callable[[str], bool]) -> str:
        """A fresh random id ``taken`` refuses (collisions are astronomically rare)."""
        for _ in range(1_000):
            new = "".join(alphabet[self._randbelow(len(alphabet))] for _ in range(length))
            if not taken(new):
                return new
        raise RuntimeError("id space exhausted: is randbelow random?")


def announce(room: Room, event: ServerMessage, exclude: str | None = None) -> Output:
    """``event`` to every connected member of ``room`` (but peer ``exclude``)."""
    return [(c, event) for c in room.connected(exclude=exclude)]


def _bad_token() -> _Refusal:
    # The same answer whatever is wrong with the token.
    return _Refusal("bad_token", "unknown, expired or revoked reconnection token")
