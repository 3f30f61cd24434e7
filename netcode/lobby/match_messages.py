"""Lobby messages of the match lifecycle (issue 11): reconnect, owner controls,
host migration and quick match. Part of protocol v1 (all additive); the codec in
:mod:`netcode.lobby.messages` registers them next to the original types.

Same rules as there: one frozen msgspec Struct per message, fields in wire order,
validated in ``__post_init__``; pure.
"""

from __future__ import annotations

from msgspec.structs import force_setattr

from .fields import (
    MAX_ERROR_TEXT,
    MAX_ID_LEN,
    MAX_PLAYERS_ABSOLUTE,
    MAX_ROOM_CODE_LEN,
    Event,
    JsonObj,
    PeerNotice,
    Reply,
    Request,
    check_bool,
    check_choice,
    check_int,
    check_metadata,
    check_str,
    keep,
    name_types,
)

__all__ = [
    "MAX_KICK_REASON",
    "MAX_TOKEN_LEN",
    "TOPOLOGIES",
    "CancelQuickMatch",
    "HostChanged",
    "Kick",
    "Kicked",
    "LockRoom",
    "Ok",
    "PeerReconnected",
    "PeerReconnecting",
    "QuickMatch",
    "QuickMatchWaiting",
    "Rejoin",
    "RoomUpdated",
    "UpdateRoom",
]

TOPOLOGIES: frozenset[str] = frozenset({"mesh", "star"})
MAX_TOKEN_LEN = 64
MAX_KICK_REASON = 256


# --- client -> server ----------------------------------------------------------------


class Rejoin(Request, frozen=True, kw_only=True, tag="rejoin"):
    """Client -> server: take back the seat (and peer id) a reconnection ``token``
    names; answered by ``room_joined``. ``room``, if given, must be the token's room
    (a token from another room is refused like an unknown one)."""

    token: str
    room: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("token", self.token, max_len=MAX_TOKEN_LEN)
        if isinstance(self.room, str):
            force_setattr(self, "room", self.room.strip())
        if self.room is not None:
            check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)


class Kick(Request, frozen=True, kw_only=True, tag="kick"):
    """Client -> server (room owner only): remove ``peer`` from the room for good."""

    peer: str
    reason: str = keep("")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("peer", self.peer, max_len=MAX_ID_LEN)
        check_str("reason", self.reason, max_len=MAX_KICK_REASON, min_len=0)


class LockRoom(Request, frozen=True, kw_only=True, tag="lock_room"):
    """Client -> server (room owner only): refuse (``locked``) or allow new joins."""

    locked: bool = keep(True)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bool("locked", self.locked)


class UpdateRoom(Request, frozen=True, kw_only=True, tag="update_room"):
    """Client -> server (room owner only): replace the room's metadata."""

    metadata: JsonObj = keep({})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_metadata(self.metadata)


class QuickMatch(Request, frozen=True, kw_only=True, tag="quick_match"):
    """Client -> server: wait for ``size - 1`` other players asking for the same
    ``game``, ``size`` and ``topology``; the lobby then seats all of them in a new
    room (``room_joined`` to each). Until then: ``quick_match_waiting``."""

    game: str
    size: int
    topology: str = keep("mesh")
    metadata: JsonObj = keep({})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("game", self.game, max_len=MAX_ID_LEN)
        check_int("size", self.size, lo=2, hi=MAX_PLAYERS_ABSOLUTE)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_metadata(self.metadata)


class CancelQuickMatch(Request, frozen=True, kw_only=True, tag="cancel_quick_match"):
    """Client -> server: stop waiting for a quick match; answered by ``ok``."""


# --- server -> client ----------------------------------------------------------------


class Ok(Reply, frozen=True, kw_only=True, tag="ok"):
    """Server -> client: the request ``rid`` (kick, lock_room, update_room,
    cancel_quick_match) was done."""


class Kicked(Event, frozen=True, tag="kicked"):
    """Server -> the kicked peer: you are out of ``room`` (no room_left follows)."""

    room: str
    reason: str = keep("")

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("reason", self.reason, max_len=MAX_ERROR_TEXT, min_len=0)


class RoomUpdated(Event, frozen=True, tag="room_updated"):
    """Server -> every connected member: the room's metadata or lock changed."""

    room: str
    metadata: JsonObj = keep({})
    locked: bool = keep(False)

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_metadata(self.metadata)
        check_bool("locked", self.locked)


class PeerReconnecting(PeerNotice, frozen=True, tag="peer_reconnecting"):
    """Server -> connected members: ``peer_id``'s websocket dropped; its seat is
    kept for the grace period (``peer_reconnected`` or ``peer_left`` follows)."""


class PeerReconnected(PeerNotice, frozen=True, tag="peer_reconnected"):
    """Server -> connected members: ``peer_id`` is back (same id and seat) and
    will offer new peer connections."""


class HostChanged(Event, frozen=True, tag="host_changed"):
    """Server -> connected members: the host (owner) is now ``host``."""

    room: str
    host: str
    previous: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("host", self.host, max_len=MAX_ID_LEN)
        check_str("previous", self.previous, max_len=MAX_ID_LEN)


class QuickMatchWaiting(Reply, frozen=True, kw_only=True, tag="quick_match_waiting"):
    """Server -> each waiting player: ``waiting`` players (you included) now wait for
    this ``game``/``size``/``topology``. The reply to quick_match carries its rid."""

    game: str
    size: int
    waiting: int
    topology: str = keep("mesh")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("game", self.game, max_len=MAX_ID_LEN)
        check_int("size", self.size, lo=2, hi=MAX_PLAYERS_ABSOLUTE)
        check_int("waiting", self.waiting, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_choice("topology", self.topology, TOPOLOGIES)


name_types(
    Rejoin, Kick, LockRoom, UpdateRoom, QuickMatch, CancelQuickMatch, Ok, Kicked, RoomUpdated
)
name_types(PeerReconnecting, PeerReconnected, HostChanged, QuickMatchWaiting)
