"""The lobby's pure core: connections, rooms, and every transition between them.

:class:`LobbyCore` is driven by the I/O layer (netcode/net/lobby_server.py)::

    out = core.connect(conn_id, now)          # -> welcome, or a close when full
    out = core.receive(conn_id, text, now)    # one websocket frame, untrusted
    out = core.disconnect(conn_id, reason, now)

Each call returns ``[(conn_id, outgoing), ...]`` where ``outgoing`` is a server
message to send or a :class:`CloseConnection` order. The core never touches a
socket, never reads a clock and never schedules anything, so every behaviour is
testable synchronously and with hypothesis.

All legal moves of a connection live in one table, :data:`TRANSITIONS`. An illegal
move raises :class:`netcode.errors.IllegalTransition` (naming role, state and
event) inside the core; :meth:`LobbyCore.handle` is the boundary that turns it,
and every other refusal, into an ``error`` message for the client.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ..config import LobbyConfig
from ..errors import IllegalTransition, LobbyProtocolError
from .messages import (
    ClientMessage,
    CreateRoom,
    ErrorMsg,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    PeerJoinedMsg,
    PeerLeftMsg,
    Rid,
    RoomJoined,
    RoomLeft,
    RoomList,
    RoomSummary,
    SendSignal,
    ServerMessage,
    SignalMsg,
    Welcome,
    parse_client,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TRY_AGAIN_LATER",
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
    "TokenBucket",
    "normalize_room_code",
]

# No 0/O, 1/I/L: a code read aloud or copied from a screen cannot be misread.
ROOM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PEER_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PEER_ID_LENGTH = 10

# RFC 6455 section 7.4.1 and the IANA registry.
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013

ConnId: TypeAlias = int
ConnState: TypeAlias = Literal["lobby", "in_room"]
DisconnectReason: TypeAlias = Literal["disconnected", "timeout", "kicked"]

ROLE = "lobby connection"

# (state, event) -> state after a successful move. Anything absent is illegal.
TRANSITIONS: dict[tuple[ConnState, str], ConnState] = {
    ("lobby", "create_room"): "in_room",
    ("lobby", "join_room"): "in_room",
    ("lobby", "list_rooms"): "lobby",
    ("in_room", "list_rooms"): "in_room",
    ("in_room", "leave_room"): "lobby",
    ("in_room", "signal"): "in_room",
}
# The wire error code for an illegal move, by the state it was attempted in.
_ILLEGAL_CODE: dict[ConnState, str] = {"lobby": "not_in_room", "in_room": "already_in_room"}
# Room list replies stay this far under the frame cap (envelope, rid).
_LIST_HEADROOM = 256


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """An order to the I/O layer: close this websocket with ``code`` and ``reason``.

    The core has already forgotten the connection when it emits this.
    """

    code: int
    reason: str


Outgoing: TypeAlias = ServerMessage | CloseConnection
Output: TypeAlias = list[tuple[ConnId, Outgoing]]


@dataclass(frozen=True, slots=True)
class LobbyStats:
    """Counts for /healthz and tests."""

    connections: int
    rooms: int
    peers_in_rooms: int


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    Pure: time is passed in. Used to cap messages per connection per second.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; False means over the limit."""
        elapsed = max(0.0, now - self._last)  # a clock going backwards refills nothing
        self._last = max(self._last, now)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


@dataclass(slots=True)
class _Conn:
    conn_id: ConnId
    peer_id: str
    bucket: TokenBucket
    room: str | None = None
    errors: int = 0

    @property
    def state(self) -> ConnState:
        return "lobby" if self.room is None else "in_room"


@dataclass(slots=True)
class _Room:
    code: str
    max_players: int
    private: bool
    metadata: dict[str, Any]
    created: float
    members: list[ConnId] = field(default_factory=list)  # join order


class _Refusal(Exception):
    """A legal move that cannot be done now (room full, unknown room...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_room_code(code: str) -> str:
    """Room codes are case-insensitive and tolerate surrounding blanks."""
    return code.strip().upper()


def _json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class LobbyCore:
    """Registry of connections and rooms plus the transition table.

    ``randbelow`` is injectable so tests can make ids deterministic; production
    uses :func:`secrets.randbelow` so room codes and peer ids are unguessable.
    """

    def __init__(
        self,
        config: LobbyConfig | None = None,
        *,
        randbelow: Callable[[int], int] = secrets.randbelow,
    ) -> None:
        self.config = config if config is not None else LobbyConfig()
        self._randbelow = randbelow
        self._conns: dict[ConnId, _Conn] = {}
        self._by_peer: dict[str, ConnId] = {}
        self._rooms: dict[str, _Room] = {}

    # --- introspection (healthz, tests, invariants) ----------------------------------

    def stats(self) -> LobbyStats:
        in_rooms = sum(len(r.members) for r in self._rooms.values())
        return LobbyStats(len(self._conns), len(self._rooms), in_rooms)

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
        """Room code -> members in join order."""
        return {code: tuple(r.members) for code, r in self._rooms.items()}

    def room_capacity(self, code: str) -> int:
        return self._rooms[code].max_players

    def connections(self) -> tuple[ConnId, ...]:
        return tuple(self._conns)

    # --- driving the core ------------------------------------------------------------

    def connect(self, conn_id: ConnId, now: float) -> Output:
        """A websocket completed its handshake: register it and welcome it."""
        if conn_id in self._conns:
            raise ValueError(f"connection {conn_id!r} is already registered")
        if len(self._conns) >= self.config.max_connections:
            return [(conn_id, CloseConnection(CLOSE_TRY_AGAIN_LATER, "lobby full"))]
        peer_id = self._new_id(PEER_ID_ALPHABET, PEER_ID_LENGTH, self._by_peer)
        rate = self.config.rate_limit_per_s
        bucket = TokenBucket(rate, max(1.0, rate), now)
        self._conns[conn_id] = _Conn(conn_id, peer_id, bucket)
        self._by_peer[peer_id] = conn_id
        welcome = Welcome(
            peer_id=peer_id,
            ice_servers=self.config.ice_servers,
            max_message_bytes=self.config.max_message_bytes,
        )
        return [(conn_id, welcome)]

    def receive(self, conn_id: ConnId, data: str | bytes, now: float) -> Output:
        """One frame from the socket: rate-limit, parse, then :meth:`handle`.

        Frames from a connection the core no longer knows (closed by the core, the
        close still in flight) are dropped.
        """
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        if not conn.bucket.take(now):
            return self._kick(conn, "rate limit exceeded", now)
        try:
            message = parse_client(data, max_bytes=self.config.max_message_bytes)
        except LobbyProtocolError as exc:
            return self._error(conn, exc.code, str(exc), exc.rid, now)
        return self.handle(conn_id, message, now)

    def handle(self, conn_id: ConnId, message: ClientMessage, now: float) -> Output:
        """Apply one parsed client message. Refusals become ``error`` messages here."""
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        try:
            return self._transition(conn, message, now)
        except IllegalTransition as exc:
            code = _ILLEGAL_CODE[conn.state]
            return self._error(conn, code, str(exc), message.rid, now)
        except _Refusal as exc:
            return self._error(conn, exc.code, exc.message, message.rid, now)

    def disconnect(self, conn_id: ConnId, reason: DisconnectReason, now: float) -> Output:
        """The socket is gone. Idempotent: unknown connections are ignored."""
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return []
        del self._by_peer[conn.peer_id]
        return self._remove_from_room(conn, reason)

    # --- transitions -----------------------------------------------------------------

    def _transition(self, conn: _Conn, message: ClientMessage, now: float) -> Output:
        state = conn.state
        if (state, message.TYPE) not in TRANSITIONS:
            raise IllegalTransition(role=ROLE, state=state, event=message.TYPE)
        if isinstance(message, CreateRoom):
            return self._create(conn, message, now)
        if isinstance(message, JoinRoom):
            return self._join(conn, message)
        if isinstance(message, LeaveRoom):
            return self._leave(conn, message)
        if isinstance(message, ListRooms):
            return [(conn.conn_id, self._room_list(message))]
        return self._signal(conn, message)

    def _create(self, conn: _Conn, msg: CreateRoom, now: float) -> Output:
        cfg = self.config
        max_players = cfg.default_max_players if msg.max_players is None else msg.max_players
        if not 1 <= max_players <= cfg.max_players_limit:
            raise _Refusal("bad_max_players", f"max_players must be in 1..{cfg.max_players_limit}")
        if _json_size(msg.metadata) > cfg.max_metadata_bytes:
            raise _Refusal("metadata_too_large", f"metadata over {cfg.max_metadata_bytes} bytes")
        if len(self._rooms) >= cfg.max_rooms:
            raise _Refusal("too_many_rooms", "the lobby has no room for another room")
        code = self._new_id(ROOM_CODE_ALPHABET, cfg.room_code_length, self._rooms)
        room = _Room(code, max_players, msg.private, dict(msg.metadata), now)
        self._rooms[code] = room
        return self._enter(conn, room, msg.rid)

    def _join(self, conn: _Conn, msg: JoinRoom) -> Output:
        room = self._rooms.get(normalize_room_code(msg.room))
        if room is None:
            raise _Refusal("room_not_found", f"no room {msg.room!r}")
        if len(room.members) >= room.max_players:
            raise _Refusal("room_full", f"room {room.code} has {room.max_players} players")
        return self._enter(conn, room, msg.rid)

    def _enter(self, conn: _Conn, room: _Room, rid: Rid | None) -> Output:
        others = list(room.members)
        room.members.append(conn.conn_id)
        conn.room = room.code
        joined = RoomJoined(
            room=room.code,
            peer_id=conn.peer_id,
            peers=tuple(self._conns[c].peer_id for c in others),
            max_players=room.max_players,
            private=room.private,
            metadata=room.metadata,
            rid=rid,
        )
        out: Output = [(conn.conn_id, joined)]
        event = PeerJoinedMsg(room=room.code, peer_id=conn.peer_id)
        out.extend((c, event) for c in others)
        return out

    def _leave(self, conn: _Conn, msg: LeaveRoom) -> Output:
        code = conn.room
        assert code is not None  # guaranteed by TRANSITIONS
        out: Output = [(conn.conn_id, RoomLeft(room=code, rid=msg.rid))]
        out.extend(self._remove_from_room(conn, "left"))
        return out

    def _remove_from_room(self, conn: _Conn, reason: str) -> Output:
        """Take ``conn`` out of its room, announce it, drop the room if now empty."""
        if conn.room is None:
            return []
        room = self._rooms[conn.room]
        conn.room = None
        room.members.remove(conn.conn_id)
        if not room.members:
            del self._rooms[room.code]
            return []
        event = PeerLeftMsg(room=room.code, peer_id=conn.peer_id, reason=reason)
        return [(c, event) for c in room.members]

    def _signal(self, conn: _Conn, msg: SendSignal) -> Output:
        target_id = self._by_peer.get(msg.to)
        target = None if target_id is None else self._conns[target_id]
        # One code for "unknown" and "elsewhere": peer ids of other rooms don't leak.
        if target is None or target.room != conn.room:
            raise _Refusal("peer_not_in_room", f"no peer {msg.to!r} in your room")
        if target is conn:
            raise _Refusal("bad_target", "cannot signal yourself")
        relayed = SignalMsg(sender=conn.peer_id, kind=msg.kind, data=msg.data)
        return [(target.conn_id, relayed)]

    def _room_list(self, msg: ListRooms) -> RoomList:
        budget = self.config.max_message_bytes - _LIST_HEADROOM
        rooms: list[RoomSummary] = []
        for room in self._rooms.values():
            if room.private or (msg.game is not None and room.metadata.get("game") != msg.game):
                continue
            summary = RoomSummary(
                room=room.code,
                players=len(room.members),
                max_players=room.max_players,
                metadata=room.metadata,
            )
            budget -= _json_size(summary.to_wire()) + 1
            if budget < 0:
                break
            rooms.append(summary)
        return RoomList(rooms=tuple(rooms), rid=msg.rid)

    # --- errors and abuse ------------------------------------------------------------

    def _error(self, conn: _Conn, code: str, message: str, rid: Rid | None, now: float) -> Output:
        """Answer with an error; past the error budget, close with 1008."""
        conn.errors += 1
        out: Output = [(conn.conn_id, ErrorMsg(code=code, message=message[:1024], rid=rid))]
        if conn.errors > self.config.max_errors_before_close:
            out.extend(self._kick(conn, "too many invalid messages", now))
        return out

    def _kick(self, conn: _Conn, why: str, now: float) -> Output:
        out = self.disconnect(conn.conn_id, "kicked", now)
        out.append((conn.conn_id, CloseConnection(CLOSE_POLICY_VIOLATION, why)))
        return out

    def _new_id(self, alphabet: str, length: int, taken: dict[str, Any]) -> str:
        """A fresh random id not in ``taken`` (collisions are astronomically rare)."""
        for _ in range(1_000):
            new = "".join(alphabet[self._randbelow(len(alphabet))] for _ in range(length))
            if new not in taken:
                return new
        raise RuntimeError("id space exhausted: is randbelow random?")
