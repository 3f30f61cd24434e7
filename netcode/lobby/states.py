"""States, events and wire constants of the lobby core (pure).

:data:`TRANSITIONS` is the one table of legal moves: its values are the state a
connection is in after the move, and the core sets states from it only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from .messages import ServerMessage

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TRY_AGAIN_LATER",
    "ILLEGAL_CODE",
    "LIST_HEADROOM",
    "MAX_OUTBOUND_MESSAGES",
    "NOT_WAITING",
    "PEER_ID_ALPHABET",
    "PEER_ID_LENGTH",
    "REPLACED",
    "ROLE",
    "ROOM_CODE_ALPHABET",
    "TRANSITIONS",
    "CloseConnection",
    "ConnId",
    "ConnState",
    "DisconnectReason",
    "LobbyStats",
    "Outgoing",
    "Output",
]

# No 0/O, 1/I/L: a code read aloud or copied from a screen cannot be misread.
ROOM_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PEER_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PEER_ID_LENGTH = 10

# RFC 6455 section 7.4.1 and the IANA registry.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013

# A connection with this many messages queued unsent is not reading (the I/O layer
# closes it); relays to it are refused with peer_busy from half of it on.
MAX_OUTBOUND_MESSAGES = 1_024

ConnId: TypeAlias = int
ConnState: TypeAlias = Literal["lobby", "waiting", "in_room"]
# closed: the client sent a normal close (1000), i.e. it meant to go: no grace.
# disconnected / timeout: the socket died (or keepalive failed): the seat is kept
# for reconnect_grace_s. kicked: closed by the server for abuse: no grace.
DisconnectReason: TypeAlias = Literal["closed", "disconnected", "timeout", "kicked"]

ROLE = "lobby connection"

# (state, event) -> state after a successful move. Anything absent is illegal.
TRANSITIONS: dict[tuple[ConnState, str], ConnState] = {
    ("lobby", "create_room"): "in_room",
    ("lobby", "join_room"): "in_room",
    ("lobby", "rejoin"): "in_room",
    ("lobby", "quick_match"): "waiting",
    ("lobby", "list_rooms"): "lobby",
    ("waiting", "list_rooms"): "waiting",
    ("waiting", "cancel_quick_match"): "lobby",
    ("waiting", "matched"): "in_room",  # internal: the quick-match group is complete
    ("in_room", "list_rooms"): "in_room",
    ("in_room", "leave_room"): "lobby",
    ("in_room", "signal"): "in_room",
    ("in_room", "kick"): "in_room",
    ("in_room", "lock_room"): "in_room",
    ("in_room", "update_room"): "in_room",
    ("in_room", "kicked"): "lobby",  # internal: the room owner kicked this connection
}
# The wire error code for an illegal move, by the state it was attempted in
# (cancel_quick_match outside a queue has its own: NOT_WAITING).
ILLEGAL_CODE: dict[ConnState, str] = {
    "lobby": "not_in_room",
    "waiting": "in_quick_match",
    "in_room": "already_in_room",
}
NOT_WAITING = "not_waiting"
REPLACED = "replaced by a newer connection"
# Room list replies stay this far under the frame cap (envelope, rid).
LIST_HEADROOM = 256


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
    peers_in_rooms: int  # connected members
    reconnecting: int = 0  # seats kept for a member whose websocket dropped
    quick_match_waiting: int = 0
