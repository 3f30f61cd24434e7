"""The lobby's pure core: connections, rooms, and every transition between them.

:class:`LobbyCore` is driven by the I/O layer (netcode/net/lobby_server.py)::

    out = core.connect(conn_id, now, address)  # -> welcome, or a close when full
    out = core.receive(conn_id, text, now)     # one websocket frame, untrusted
    core.report_backlog(conn_id, nbytes, nmessages)  # what the I/O layer holds unsent
    out = core.disconnect(conn_id, reason, now)

Each call returns ``[(conn_id, outgoing), ...]`` where ``outgoing`` is a server
message to send or a :class:`CloseConnection` order. The core never touches a
socket, never reads a clock and never schedules anything, so every behaviour is
testable synchronously and with hypothesis. The I/O layer also reports how much
it still holds unsent for each connection (:meth:`LobbyCore.report_backlog`), so
the core can refuse relays to a clogged recipient and blame the sender.

Timers are deadlines the core reports: the I/O layer calls
:meth:`LobbyCore.tick` once :meth:`LobbyCore.next_deadline` has passed (seats
whose reconnect grace ran out leave; a host gone past ``host_grace_s`` is
replaced). Quick-match grouping is in :mod:`netcode.lobby.quickmatch`, rooms and
seats in :mod:`netcode.lobby.roomstate`, states and constants in
:mod:`netcode.lobby.states`.

Abuse budgets, all per connection and all token buckets (time passed in): messages
and bytes received, and refused messages (the error budget). Per client address:
a cap on simultaneous connections.

All legal moves of a connection live in one table, :data:`TRANSITIONS`, whose
values are the state the connection is in after the move (the core sets it from
the table, nowhere else). Two events are internal, caused by another
connection: ``matched`` (a quick-match group completed) and ``kicked`` (by the
room owner). An illegal move raises :class:`netcode.errors.IllegalTransition`
(naming role, state and event) inside the core; :meth:`LobbyCore.handle` is the
boundary that turns it, and every other refusal, into an ``error`` message.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..config import LobbyConfig
from ..errors import IllegalTransition, LobbyProtocolError
from .budget import TokenBucket, address_key, frame_size, json_size, normalize_room_code
from .cluster import RoomSnapshot, export_room, hash_token, is_hashed, room_from_snapshot
from .messages import (
    CancelQuickMatch,
    ClientMessage,
    CreateRoom,
    ErrorMsg,
    HostChanged,
    JoinRoom,
    Kick,
    Kicked,
    LeaveRoom,
    ListRooms,
    LockRoom,
    Ok,
    PeerJoinedMsg,
    PeerLeftMsg,
    PeerReconnected,
    PeerReconnecting,
    QuickMatch,
    QuickMatchWaiting,
    Rejoin,
    Rid,
    RoomJoined,
    RoomLeft,
    RoomList,
    RoomSummary,
    RoomUpdated,
    SendSignal,
    SignalMsg,
    UpdateRoom,
    Welcome,
    parse_client,
)
from .quickmatch import QueueKey, QuickMatchQueues, Waiter
from .roomstate import Room, RoomView, Seat, choose_host
from .states import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    ILLEGAL_CODE,
    LIST_HEADROOM,
    MAX_OUTBOUND_MESSAGES,
    NOT_WAITING,
    PEER_ID_ALPHABET,
    PEER_ID_LENGTH,
    REPLACED,
    ROLE,
    ROOM_CODE_ALPHABET,
    TRANSITIONS,
    CloseConnection,
    ConnId,
    ConnState,
    DisconnectReason,
    LobbyStats,
    Outgoing,
    Output,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TRY_AGAIN_LATER",
    "MAX_OUTBOUND_MESSAGES",
    "PEER_ID_ALPHABET",
    "ROOM_CODE_ALPHABET",
    "TRANSITIONS",
    "CloseConnection",
    "ConnId",
    "ConnState",
    "DisconnectReason",
    "LobbyCore",
    "LobbyStats",
    "Outgoing",
    "Output",
    "QueueKey",
    "RoomView",
    "TokenBucket",
    "address_key",
    "normalize_room_code",
]


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


# Bytes of a room_updated frame around its metadata (type, room code, locked).
_UPDATE_ENVELOPE = 64


class _Refusal(Exception):
    """A legal move that cannot be done now (room full, unknown room...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LobbyCore:
    """Registry of connections, rooms, seats and quick-match queues, plus the
    transition table.

    ``randbelow`` is injectable so tests can make ids deterministic; production
    uses :func:`secrets.randbelow` so room codes and peer ids are unguessable.
    ``token_factory`` makes reconnection tokens (default
    ``secrets.token_urlsafe(24)``: 32 characters, 192 random bits).
    """

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
            seat.expires = now + self.config.reconnect_grace_s
            heapq.heappush(self._deadlines, (seat.expires, seat.peer_id))
            if seat.peer_id == room.host:
                seat.host_deadline = now + self.config.host_grace_s
                heapq.heappush(self._deadlines, (seat.host_deadline, seat.peer_id))
            self._held[seat.peer_id] = room.code
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

    # --- driving the core ------------------------------------------------------------

    def connect(
        self,
        conn_id: ConnId,
        now: float,
        address: str | None = None,
        *,
        peer_id: str | None = None,
        welcome: bool = True,
    ) -> Output:
        """A websocket completed its handshake: register it and welcome it.

        ``address`` is the client's IP address (None: not counted per address).
        Refused with a close: over the per-address cap (1008, checked first so a
        flooding host learns it is the problem) or over the global cap (1013).
        Seats kept for reconnecting members count like connections in both caps,
        so dropping websockets on purpose cannot hold more than the caps allow.
        ``peer_id``: the id another lobby node already gave this connection (it is
        proxied here; refused with 1013 if taken) and ``welcome=False``: that node
        sent the welcome already.
        """
        if conn_id in self._conns:
            raise ValueError(f"connection {conn_id!r} is already registered")
        cfg = self.config
        key = None if address is None else address_key(address)
        per_ip = cfg.max_connections_per_ip
        if key is not None and per_ip is not None and self._per_address.get(key, 0) >= per_ip:
            why = "too many connections from your address"
            return [(conn_id, CloseConnection(CLOSE_POLICY_VIOLATION, why))]
        if len(self._conns) + len(self._held) >= cfg.max_connections:
            return [(conn_id, CloseConnection(CLOSE_TRY_AGAIN_LATER, "lobby full"))]
        if peer_id is None:
            peer_id = self._new_id(PEER_ID_ALPHABET, PEER_ID_LENGTH, self._peer_taken)
        elif self._peer_taken(peer_id):
            return [(conn_id, CloseConnection(CLOSE_TRY_AGAIN_LATER, "peer id taken"))]
        self._conns[conn_id] = _Conn(
            conn_id,
            peer_id,
            key,
            messages=TokenBucket(cfg.rate_limit_per_s, cfg.rate_limit_burst, now),
            bytes=TokenBucket(cfg.byte_rate_limit_per_s, cfg.byte_rate_burst, now),
            errors=TokenBucket(cfg.error_refill_per_s, cfg.max_errors_before_close, now),
        )
        self._by_peer[peer_id] = conn_id
        self._hold_address(key)
        if not welcome:
            return []
        greeting = Welcome(
            peer_id=peer_id, ice_servers=cfg.ice_servers, max_message_bytes=cfg.max_message_bytes
        )
        return [(conn_id, greeting)]

    def receive(self, conn_id: ConnId, data: str | bytes, now: float) -> Output:
        """One frame from the socket: rate-limit (messages, then bytes), parse, then
        :meth:`handle`.

        Frames from a connection the core no longer knows (closed by the core, the
        close still in flight) are dropped.
        """
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        size = frame_size(data)
        if not conn.messages.take(now):
            return self._kick(conn, "rate limit exceeded", now)
        if not conn.bytes.take(now, size):
            return self._kick(conn, "byte rate limit exceeded", now)
        try:
            message = parse_client(data, max_bytes=self.config.max_message_bytes)
        except LobbyProtocolError as exc:
            return self._error(conn, exc.code, str(exc), exc.rid, now)
        return self.handle(conn_id, message, now, size=size)

    def handle(
        self, conn_id: ConnId, message: ClientMessage, now: float, *, size: int = 0
    ) -> Output:
        """Apply one parsed client message. Refusals become ``error`` messages here.

        ``size``: bytes of the frame it came in, about what relaying it will queue.
        """
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        try:
            return self._transition(conn, message, now, size)
        except IllegalTransition as exc:
            code = ILLEGAL_CODE[conn.state]
            if message.TYPE == "cancel_quick_match":
                code = NOT_WAITING
            return self._error(conn, code, str(exc), message.rid, now)
        except _Refusal as exc:
            return self._error(conn, exc.code, exc.message, message.rid, now)

    def disconnect(self, conn_id: ConnId, reason: DisconnectReason, now: float) -> Output:
        """The socket is gone. Idempotent: unknown connections are ignored.

        A room member whose socket died (``disconnected`` / ``timeout``) keeps its
        seat for ``reconnect_grace_s``: the others get ``peer_reconnecting``.
        """
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return []
        del self._by_peer[conn.peer_id]
        out = self._leave_queue(conn_id)
        room = None if conn.room is None else self._rooms[conn.room]
        seat = None if room is None else room.seat(conn.peer_id)
        if room is None or seat is None:
            self._release_address(conn.address)
            return out
        grace = self.config.reconnect_grace_s
        if reason in ("disconnected", "timeout") and grace > 0:
            out.extend(self._hold_seat(room, seat, conn.address, now))
            return out
        self._release_address(conn.address)
        out.extend(self._remove_seat(room, seat, "disconnected" if reason == "closed" else reason))
        return out

    def report_backlog(self, conn_id: ConnId, queued_bytes: int, queued_messages: int) -> None:
        """The I/O layer holds this much unsent for ``conn_id`` (call on every change).

        Relays to a connection with half of ``max_outbound_bytes`` or of
        :data:`MAX_OUTBOUND_MESSAGES` queued are refused with ``peer_busy``: the
        sender is told and charged, the slow recipient is left alone.
        """
        conn = self._conns.get(conn_id)
        if conn is not None:
            conn.backlog_bytes, conn.backlog_messages = queued_bytes, queued_messages

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

    # --- transitions -----------------------------------------------------------------

    def _move(self, conn: _Conn, event: str) -> None:
        """Apply one move of TRANSITIONS (the only place a state is set)."""
        after = TRANSITIONS.get((conn.state, event))
        if after is None:
            raise IllegalTransition(role=ROLE, state=conn.state, event=event)
        conn.state = after

    def _transition(self, conn: _Conn, message: ClientMessage, now: float, size: int) -> Output:
        before = conn.state
        self._move(conn, message.TYPE)  # refused moves raise before any side effect
        try:
            return self._apply(conn, message, now, size)
        except _Refusal:
            conn.state = before  # handlers check everything before they change anything
            raise

    def _apply(self, conn: _Conn, message: ClientMessage, now: float, size: int) -> Output:
        if isinstance(message, CreateRoom):
            return self._create(conn, message, now)
        if isinstance(message, JoinRoom):
            return self._join(conn, message)
        if isinstance(message, LeaveRoom):
            return self._leave(conn, message)
        if isinstance(message, ListRooms):
            return [(conn.conn_id, self._room_list(message))]
        if isinstance(message, SendSignal):
            return self._signal(conn, message, size)
        if isinstance(message, Rejoin):
            return self._rejoin(conn, message, now)
        if isinstance(message, QuickMatch):
            return self._quick_match(conn, message, now)
        if isinstance(message, CancelQuickMatch):
            return [(conn.conn_id, Ok(rid=message.rid)), *self._leave_queue(conn.conn_id)]
        return self._owner_control(conn, message)

    def _create(self, conn: _Conn, msg: CreateRoom, now: float) -> Output:
        cfg = self.config
        max_players = cfg.default_max_players if msg.max_players is None else msg.max_players
        if not 1 <= max_players <= cfg.max_players_limit:
            raise _Refusal("bad_max_players", f"max_players must be in 1..{cfg.max_players_limit}")
        self._check_metadata(msg.metadata)
        room = self._new_room(max_players, msg.private, msg.metadata, msg.topology, now)
        return self._enter(conn, room, msg.rid)

    def _new_room(
        self, max_players: int, private: bool, metadata: dict[str, Any], topology: str, now: float
    ) -> Room:
        if len(self._rooms) >= self.config.max_rooms:
            raise _Refusal("too_many_rooms", "the lobby has no room for another room")
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

    def _check_metadata(self, metadata: dict[str, Any]) -> None:
        limit = self.config.max_metadata_bytes
        if json_size(metadata) > limit:
            raise _Refusal("metadata_too_large", f"metadata over {limit} bytes")

    def _join(self, conn: _Conn, msg: JoinRoom) -> Output:
        room = self._rooms.get(normalize_room_code(msg.room))
        if room is None:
            raise _Refusal("room_not_found", f"no room {msg.room!r}")
        if conn.peer_id in room.banned:
            raise _Refusal("banned", f"you were kicked from room {room.code}")
        if room.locked:
            raise _Refusal("room_locked", f"room {room.code} is locked: no new players")
        if len(room.seats) >= room.max_players:
            raise _Refusal("room_full", f"room {room.code} has {room.max_players} players")
        return self._enter(conn, room, msg.rid)

    def _enter(self, conn: _Conn, room: Room, rid: Rid | None) -> Output:
        """Seat ``conn`` last in ``room`` (its first member becomes the host)."""
        others = room.connected()
        token = self._new_token()
        room.seats.append(Seat(conn.peer_id, token, conn.conn_id))
        self._tokens[token] = (room.code, conn.peer_id)
        if not room.host:
            room.host = conn.peer_id
        conn.room = room.code
        self._touch(room.code)
        out: Output = [(conn.conn_id, self._joined(room, conn.peer_id, token, rid))]
        event = PeerJoinedMsg(room=room.code, peer_id=conn.peer_id)
        out.extend((c, event) for c in others)
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

    def _leave(self, conn: _Conn, msg: LeaveRoom) -> Output:
        code = conn.room
        assert code is not None  # guaranteed by TRANSITIONS
        room = self._rooms[code]
        seat = room.seat(conn.peer_id)
        assert seat is not None
        out: Output = [(conn.conn_id, RoomLeft(room=code, rid=msg.rid))]
        out.extend(self._remove_seat(room, seat, "left"))
        return out

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
        elif self._held.pop(seat.peer_id, None) is not None:
            self._release_address(seat.address)
        if not room.seats:
            self._drop_room(room)
            return []
        event = PeerLeftMsg(room=room.code, peer_id=seat.peer_id, reason=reason)
        out: Output = [(c, event) for c in room.connected()]
        if room.host == seat.peer_id:
            out.extend(self._migrate(room))
        return out

    def _drop_room(self, room: Room) -> None:
        del self._rooms[room.code]
        for identity in room.banned:
            self._banned.pop(identity, None)
        for seat in room.seats:  # only reconnecting seats can be left here
            self._tokens.pop(seat.token, None)
            if self._held.pop(seat.peer_id, None) is not None:
                self._release_address(seat.address)
        room.seats.clear()

    def _signal(self, conn: _Conn, msg: SendSignal, size: int) -> Output:
        target_id = self._by_peer.get(msg.to)
        target = None if target_id is None else self._conns[target_id]
        # One code for "unknown" and "elsewhere": peer ids of other rooms don't leak.
        if target is None or target.room != conn.room:
            room = self._rooms[conn.room] if conn.room is not None else None
            seat = None if room is None else room.seat(msg.to)
            if seat is not None and not seat.connected:
                raise _Refusal("peer_reconnecting", f"peer {msg.to!r} is reconnecting")
            raise _Refusal("peer_not_in_room", f"no peer {msg.to!r} in your room")
        if target is conn:
            raise _Refusal("bad_target", "cannot signal yourself")
        if self._clogged(target, size):
            # The sender pays (an error, charged to its budget), not the recipient.
            raise _Refusal("peer_busy", f"peer {msg.to!r} is not keeping up; signal dropped")
        relayed = SignalMsg(sender=conn.peer_id, kind=msg.kind, data=msg.data)
        return [(target.conn_id, relayed)]

    def _clogged(self, target: _Conn, size: int) -> bool:
        relay_bytes = self.config.max_outbound_bytes // 2
        return (
            target.backlog_bytes + size > relay_bytes
            or target.backlog_messages >= MAX_OUTBOUND_MESSAGES // 2
        )

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

    def _room_list(self, msg: ListRooms) -> RoomList:
        budget = self.config.max_message_bytes - LIST_HEADROOM
        rooms: list[RoomSummary] = []
        extra = () if self.extra_rooms is None else self.extra_rooms()  # other nodes'
        for summary in itertools.chain(self.public_rooms(msg.game), extra):
            if msg.game is not None and summary.metadata.get("game") != msg.game:
                continue
            budget -= json_size(summary.to_wire()) + 1
            if budget < 0:
                break
            rooms.append(summary)
        return RoomList(rooms=tuple(rooms), rid=msg.rid)

    # --- reconnect -------------------------------------------------------------------

    def _hold_seat(self, room: Room, seat: Seat, address: str | None, now: float) -> Output:
        """Keep a dropped member's seat (and its address slot) for the grace period."""
        cfg = self.config
        seat.conn = None
        seat.address = address
        seat.expires = now + cfg.reconnect_grace_s
        heapq.heappush(self._deadlines, (seat.expires, seat.peer_id))
        if room.host == seat.peer_id:
            seat.host_deadline = now + cfg.host_grace_s
            heapq.heappush(self._deadlines, (seat.host_deadline, seat.peer_id))
        self._held[seat.peer_id] = room.code
        self._touch(room.code)
        if len(self._deadlines) > 4 * len(self._held) + 64:
            # Drop/rejoin churn leaves stale entries behind: compact, amortized O(1).
            self._deadlines = [entry for entry in self._deadlines if self._due(*entry)]
            heapq.heapify(self._deadlines)
        event = PeerReconnecting(room=room.code, peer_id=seat.peer_id)
        return [(c, event) for c in room.connected()]

    def _rejoin(self, conn: _Conn, msg: Rejoin, now: float) -> Output:
        room, seat = self._seat_for_token(conn, msg, now)
        out: Output = []
        if seat.conn is not None:  # the old websocket is still up (half-dead): replace it
            out.extend(self._forget(self._conns[seat.conn], CLOSE_NORMAL, REPLACED))
        elif self._held.pop(seat.peer_id, None) is not None:
            self._release_address(seat.address)
        seat.address = seat.expires = seat.host_deadline = None
        # The connection takes over the seat's identity; its welcome id is dropped.
        del self._by_peer[conn.peer_id]
        conn.peer_id = seat.peer_id
        self._by_peer[conn.peer_id] = conn.conn_id
        seat.conn, conn.room = conn.conn_id, room.code
        if is_hashed(seat.token):  # an adopted seat: keep the token in clear from now on
            del self._tokens[seat.token]
            seat.token = msg.token
            self._tokens[seat.token] = (room.code, seat.peer_id)
        self._touch(room.code)
        out.append((conn.conn_id, self._joined(room, seat.peer_id, seat.token, msg.rid)))
        event = PeerReconnected(room=room.code, peer_id=seat.peer_id)
        out.extend((c, event) for c in room.connected(exclude=seat.peer_id))
        out.extend(self._migrate_if_overdue(room))
        return out

    def _seat_for_token(self, conn: _Conn, msg: Rejoin, now: float) -> tuple[Room, Seat]:
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
            raise _Refusal("bad_token", "unknown, expired or revoked reconnection token")
        if seat.expires is not None and seat.expires <= now:  # tick() not run yet
            raise _Refusal("bad_token", "unknown, expired or revoked reconnection token")
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
        event = HostChanged(room=room.code, host=new.peer_id, previous=previous)
        return [(c, event) for c in room.connected()]

    # --- owner controls --------------------------------------------------------------

    def _owner_control(self, conn: _Conn, msg: ClientMessage) -> Output:
        assert conn.room is not None  # guaranteed by TRANSITIONS
        room = self._rooms[conn.room]
        if room.host != conn.peer_id:
            raise _Refusal("not_owner", f"only the room's host ({room.host}) may do {msg.TYPE}")
        if isinstance(msg, Kick):
            return self._kick_member(conn, room, msg)
        metadata = msg.metadata if isinstance(msg, UpdateRoom) else room.metadata
        self._check_metadata(metadata)
        # The update goes to every member: as with signals, a member that is not
        # keeping up makes the host's request fail, it is never closed for it.
        size = json_size(metadata) + _UPDATE_ENVELOPE
        if any(self._clogged(self._conns[c], size) for c in room.connected()):
            raise _Refusal("peer_busy", "a member is not keeping up; room update dropped")
        if isinstance(msg, LockRoom):
            room.locked = msg.locked
        else:
            room.metadata = dict(metadata)
        self._touch(room.code)
        update = RoomUpdated(room=room.code, metadata=room.metadata, locked=room.locked)
        out: Output = [(conn.conn_id, Ok(rid=msg.rid))]
        out.extend((c, update) for c in room.connected())
        return out

    def _kick_member(self, conn: _Conn, room: Room, msg: Kick) -> Output:
        seat = room.seat(msg.peer)
        if seat is None:
            raise _Refusal("peer_not_in_room", f"no peer {msg.peer!r} in your room")
        if seat.peer_id == conn.peer_id:
            raise _Refusal("bad_target", "cannot kick yourself (leave_room instead)")
        for identity in (seat.token, seat.peer_id):
            self._ban(room, identity)
        out: Output = [(conn.conn_id, Ok(rid=msg.rid))]
        if seat.conn is not None:
            target = self._conns[seat.conn]
            self._move(target, "kicked")
            out.append((target.conn_id, Kicked(room=room.code, reason=msg.reason)))
        out.extend(self._remove_seat(room, seat, "kicked"))
        return out

    # --- quick match -----------------------------------------------------------------

    def _quick_match(self, conn: _Conn, msg: QuickMatch, now: float) -> Output:
        limit = self.config.max_players_limit
        if msg.size > limit:
            raise _Refusal("bad_max_players", f"size must be in 2..{limit}")
        self._check_metadata(msg.metadata)
        key: QueueKey = (msg.game, msg.size, msg.topology)
        if self._queues.completes(key) and len(self._rooms) >= self.config.max_rooms:
            raise _Refusal("too_many_rooms", "the lobby has no room for another room")
        group = self._queues.add(key, Waiter(conn.conn_id, msg.rid, msg.metadata))
        if group is None:
            return self._waiting_update(key, conn.conn_id, msg.rid)
        first = group[0]
        metadata = {**first.metadata, "game": msg.game}
        room = self._new_room(msg.size, True, metadata, msg.topology, now)
        out: Output = []
        for waiter in group:  # arrival order is join order; the first one hosts
            member = self._conns[waiter.conn]
            self._move(member, "matched")
            out.extend(self._enter(member, room, waiter.rid))
        return out

    def _waiting_update(self, key: QueueKey, requester: ConnId, rid: Rid | None) -> Output:
        """Tell everyone in the queue how many wait now (the requester with its rid)."""
        game, size, topology = key
        queue = self._queues.queue(key)
        out: Output = []
        for waiter in queue:
            mine = rid if waiter.conn == requester else None
            msg = QuickMatchWaiting(
                game=game, size=size, waiting=len(queue), topology=topology, rid=mine
            )
            out.append((waiter.conn, msg))
        return out

    def _leave_queue(self, conn_id: ConnId) -> Output:
        removed = self._queues.remove(conn_id)
        if removed is None:
            return []
        key, remaining = removed
        return self._waiting_update(key, -1, None) if remaining else []

    # --- errors and abuse ------------------------------------------------------------

    def _error(self, conn: _Conn, code: str, message: str, rid: Rid | None, now: float) -> Output:
        """Answer with an error; with the error budget spent, also close with 1008."""
        out: Output = [(conn.conn_id, ErrorMsg(code=code, message=message[:1024], rid=rid))]
        if not conn.errors.take(now):
            out.extend(self._kick(conn, "too many invalid messages", now))
        return out

    def _kick(self, conn: _Conn, why: str, now: float) -> Output:
        out = self.disconnect(conn.conn_id, "kicked", now)
        out.append((conn.conn_id, CloseConnection(CLOSE_POLICY_VIOLATION, why)))
        return out

    def _forget(self, conn: _Conn, code: int, why: str) -> Output:
        """Drop a connection whose seat another connection took over (no room effects)."""
        del self._conns[conn.conn_id]
        del self._by_peer[conn.peer_id]
        self._release_address(conn.address)
        return [(conn.conn_id, CloseConnection(code, why))]

    # --- ids, tokens, address slots --------------------------------------------------

    def _ban(self, room: Room, identity: str) -> None:
        self._banned[identity] = room.code
        for forgotten in room.ban(identity, self.config.max_banned_per_room):
            self._banned.pop(forgotten, None)

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
