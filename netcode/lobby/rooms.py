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

Abuse budgets, all per connection and all token buckets (time passed in): messages
and bytes received, and refused messages (the error budget). Per client address:
a cap on simultaneous connections.

All legal moves of a connection live in one table, :data:`TRANSITIONS`. An illegal
move raises :class:`netcode.errors.IllegalTransition` (naming role, state and
event) inside the core; :meth:`LobbyCore.handle` is the boundary that turns it,
and every other refusal, into an ``error`` message for the client.
"""

from __future__ import annotations

import ipaddress
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
    "TokenBucket",
    "address_key",
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

# A connection with this many messages queued unsent is not reading (the I/O layer
# closes it); relays to it are refused with peer_busy from half of it on.
MAX_OUTBOUND_MESSAGES = 1_024

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

    Pure: time is passed in. Caps messages and bytes per connection, and is the
    error budget (``burst`` refusals, refilling at ``rate``).
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
    address: str | None  # address_key() of the client, for the per-address cap
    messages: TokenBucket
    bytes: TokenBucket
    errors: TokenBucket
    room: str | None = None
    # Reported by the I/O layer: what it still holds unsent for this connection.
    backlog_bytes: int = 0
    backlog_messages: int = 0

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


def address_key(address: str) -> str:
    """The unit of the per-address connection cap: an IPv4 address, an IPv6 /64.

    One IPv6 host usually holds a whole /64, so counting single IPv6 addresses would
    not limit anything. IPv4-mapped IPv6 counts as IPv4; a zone id is ignored. Text
    that is no IP address (a unix socket path...) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _frame_size(data: str | bytes) -> int:
    """Bytes on the wire: text frames are UTF-8."""
    return len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))


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
        self._per_address: dict[str, int] = {}  # address_key -> open connections

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

    def connect(self, conn_id: ConnId, now: float, address: str | None = None) -> Output:
        """A websocket completed its handshake: register it and welcome it.

        ``address`` is the client's IP address (None: not counted per address).
        Refused with a close: over the per-address cap (1008, checked first so a
        flooding host learns it is the problem) or over the global cap (1013).
        """
        if conn_id in self._conns:
            raise ValueError(f"connection {conn_id!r} is already registered")
        cfg = self.config
        key = None if address is None else address_key(address)
        per_ip = cfg.max_connections_per_ip
        if key is not None and per_ip is not None and self._per_address.get(key, 0) >= per_ip:
            why = "too many connections from your address"
            return [(conn_id, CloseConnection(CLOSE_POLICY_VIOLATION, why))]
        if len(self._conns) >= cfg.max_connections:
            return [(conn_id, CloseConnection(CLOSE_TRY_AGAIN_LATER, "lobby full"))]
        peer_id = self._new_id(PEER_ID_ALPHABET, PEER_ID_LENGTH, self._by_peer)
        self._conns[conn_id] = _Conn(
            conn_id,
            peer_id,
            key,
            messages=TokenBucket(cfg.rate_limit_per_s, cfg.rate_limit_burst, now),
            bytes=TokenBucket(cfg.byte_rate_limit_per_s, cfg.byte_rate_burst, now),
            errors=TokenBucket(cfg.error_refill_per_s, cfg.max_errors_before_close, now),
        )
        self._by_peer[peer_id] = conn_id
        if key is not None:
            self._per_address[key] = self._per_address.get(key, 0) + 1
        welcome = Welcome(
            peer_id=peer_id, ice_servers=cfg.ice_servers, max_message_bytes=cfg.max_message_bytes
        )
        return [(conn_id, welcome)]

    def receive(self, conn_id: ConnId, data: str | bytes, now: float) -> Output:
        """One frame from the socket: rate-limit (messages, then bytes), parse, then
        :meth:`handle`.

        Frames from a connection the core no longer knows (closed by the core, the
        close still in flight) are dropped.
        """
        conn = self._conns.get(conn_id)
        if conn is None:
            return []
        size = _frame_size(data)
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
        if conn.address is not None:
            left = self._per_address.pop(conn.address) - 1
            if left:
                self._per_address[conn.address] = left
        return self._remove_from_room(conn, reason)

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

    def _transition(self, conn: _Conn, message: ClientMessage, now: float, size: int) -> Output:
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
        return self._signal(conn, message, size)

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

    def _signal(self, conn: _Conn, msg: SendSignal, size: int) -> Output:
        target_id = self._by_peer.get(msg.to)
        target = None if target_id is None else self._conns[target_id]
        # One code for "unknown" and "elsewhere": peer ids of other rooms don't leak.
        if target is None or target.room != conn.room:
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
        """Answer with an error; with the error budget spent, also close with 1008."""
        out: Output = [(conn.conn_id, ErrorMsg(code=code, message=message[:1024], rid=rid))]
        if not conn.errors.take(now):
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
