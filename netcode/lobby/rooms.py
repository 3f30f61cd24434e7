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
replaced). This module holds what a client message does; the registry it acts on
(connections, rooms, seats, tokens, reconnecting seats and their deadlines, host
migration, cluster snapshots, introspection) is :mod:`netcode.lobby._registry`.
Quick-match grouping is in :mod:`netcode.lobby.quickmatch`, rooms and seats in
:mod:`netcode.lobby.roomstate`, states and constants in :mod:`netcode.lobby.states`.

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

import itertools
from typing import Any

from ..errors import IllegalTransition, LobbyProtocolError
from ._registry import _Conn, _Refusal, _Registry, announce
from .budget import TokenBucket, address_key, frame_size, json_size, normalize_room_code
from .cluster import is_hashed
from .messages import (
    CancelQuickMatch,
    ClientMessage,
    CreateRoom,
    ErrorMsg,
    JoinRoom,
    Kick,
    Kicked,
    LeaveRoom,
    ListRooms,
    LockRoom,
    Ok,
    PeerReconnected,
    QuickMatch,
    QuickMatchWaiting,
    Rejoin,
    Rid,
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
from .quickmatch import QueueKey, Waiter
from .roomstate import Room, RoomView
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


# Bytes of a room_updated frame around its metadata (type, room code, locked).
_UPDATE_ENVELOPE = 64


class LobbyCore(_Registry):
    """The lobby: the registry of connections, rooms, seats and quick-match queues
    (:class:`netcode.lobby._registry._Registry`), driven by client messages through
    the transition table.

    ``randbelow`` is injectable so tests can make ids deterministic; production
    uses :func:`secrets.randbelow` so room codes and peer ids are unguessable.
    ``token_factory`` makes reconnection tokens (default
    ``secrets.token_urlsafe(24)``: 32 characters, 192 random bits).
    """

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

    def _leave(self, conn: _Conn, msg: LeaveRoom) -> Output:
        code = conn.room
        assert code is not None  # guaranteed by TRANSITIONS
        room = self._rooms[code]
        seat = room.seat(conn.peer_id)
        assert seat is not None
        out: Output = [(conn.conn_id, RoomLeft(room=code, rid=msg.rid))]
        out.extend(self._remove_seat(room, seat, "left"))
        return out

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

    def _rejoin(self, conn: _Conn, msg: Rejoin, now: float) -> Output:
        room, seat = self._seat_for_token(msg, now)
        out: Output = []
        if seat.conn is not None:  # the old websocket is still up (half-dead): replace it
            out.extend(self._forget(self._conns[seat.conn], CLOSE_NORMAL, REPLACED))
        else:
            self._unhold(seat)
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
        out.extend(announce(room, event, exclude=seat.peer_id))
        out.extend(self._migrate_if_overdue(room))
        return out

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
        return [(conn.conn_id, Ok(rid=msg.rid)), *announce(room, update)]

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
        if self._queues.completes(key):
            self._check_room_space()  # before the group leaves the queue
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
