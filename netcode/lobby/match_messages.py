"""Lobby messages of the match lifecycle (issue 11): reconnect, owner controls,
host migration and quick match. Part of protocol v1 (all additive); the codec in
:mod:`netcode.lobby.messages` registers them next to the original types.

Same rules as there: frozen, slotted, validated in ``__post_init__``; pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .fields import (
    MAX_ERROR_TEXT,
    MAX_ID_LEN,
    MAX_PLAYERS_ABSOLUTE,
    MAX_ROOM_CODE_LEN,
    PROTOCOL_VERSION,
    JsonObj,
    Origin,
    Rid,
    check_bool,
    check_choice,
    check_int,
    check_metadata,
    check_rid,
    check_str,
    envelope,
    get_field,
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


def _req(msg: object) -> JsonObj:
    return {**envelope(msg), "v": PROTOCOL_VERSION}


# --- client -> server ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejoin:
    """Client -> server: take back the seat (and peer id) a reconnection ``token``
    names; answered by ``room_joined``. ``room``, if given, must be the token's room
    (a token from another room is refused like an unknown one)."""

    TYPE: ClassVar[str] = "rejoin"
    ORIGIN: ClassVar[Origin] = "client"
    token: str
    room: str | None = None
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("token", self.token, max_len=MAX_TOKEN_LEN)
        if isinstance(self.room, str):
            object.__setattr__(self, "room", self.room.strip())
        if self.room is not None:
            check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**_req(self), "token": self.token}
        if self.room is not None:
            obj["room"] = self.room
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Rejoin:
        return cls(
            token=get_field(obj, "token"), room=get_field(obj, "room"), rid=get_field(obj, "rid")
        )


@dataclass(frozen=True, slots=True)
class Kick:
    """Client -> server (room owner only): remove ``peer`` from the room for good."""

    TYPE: ClassVar[str] = "kick"
    ORIGIN: ClassVar[Origin] = "client"
    peer: str
    reason: str = ""
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("peer", self.peer, max_len=MAX_ID_LEN)
        check_str("reason", self.reason, max_len=MAX_KICK_REASON, min_len=0)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_req(self), "peer": self.peer, "reason": self.reason}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Kick:
        return cls(
            peer=get_field(obj, "peer"),
            reason=get_field(obj, "reason", ""),
            rid=get_field(obj, "rid"),
        )


@dataclass(frozen=True, slots=True)
class LockRoom:
    """Client -> server (room owner only): refuse (``locked``) or allow new joins."""

    TYPE: ClassVar[str] = "lock_room"
    ORIGIN: ClassVar[Origin] = "client"
    locked: bool = True
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_bool("locked", self.locked)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_req(self), "locked": self.locked}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> LockRoom:
        return cls(locked=get_field(obj, "locked", True), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class UpdateRoom:
    """Client -> server (room owner only): replace the room's metadata."""

    TYPE: ClassVar[str] = "update_room"
    ORIGIN: ClassVar[Origin] = "client"
    metadata: JsonObj = field(default_factory=dict)
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_metadata(self.metadata)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_req(self), "metadata": self.metadata}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> UpdateRoom:
        return cls(metadata=get_field(obj, "metadata", {}), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class QuickMatch:
    """Client -> server: wait for ``size - 1`` other players asking for the same
    ``game``, ``size`` and ``topology``; the lobby then seats all of them in a new
    room (``room_joined`` to each). Until then: ``quick_match_waiting``."""

    TYPE: ClassVar[str] = "quick_match"
    ORIGIN: ClassVar[Origin] = "client"
    game: str
    size: int
    topology: str = "mesh"
    metadata: JsonObj = field(default_factory=dict)
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("game", self.game, max_len=MAX_ID_LEN)
        check_int("size", self.size, lo=2, hi=MAX_PLAYERS_ABSOLUTE)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_metadata(self.metadata)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**_req(self), "game": self.game, "size": self.size, "topology": self.topology}
        obj["metadata"] = self.metadata
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> QuickMatch:
        return cls(
            game=get_field(obj, "game"),
            size=get_field(obj, "size"),
            topology=get_field(obj, "topology", "mesh"),
            metadata=get_field(obj, "metadata", {}),
            rid=get_field(obj, "rid"),
        )


@dataclass(frozen=True, slots=True)
class CancelQuickMatch:
    """Client -> server: stop waiting for a quick match; answered by ``ok``."""

    TYPE: ClassVar[str] = "cancel_quick_match"
    ORIGIN: ClassVar[Origin] = "client"
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return _req(self)

    @classmethod
    def from_wire(cls, obj: JsonObj) -> CancelQuickMatch:
        return cls(rid=get_field(obj, "rid"))


# --- server -> client ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """Server -> client: the request ``rid`` (kick, lock_room, update_room,
    cancel_quick_match) was done."""

    TYPE: ClassVar[str] = "ok"
    ORIGIN: ClassVar[Origin] = "server"
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return envelope(self)

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Ok:
        return cls(rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class Kicked:
    """Server -> the kicked peer: you are out of ``room`` (no room_left follows)."""

    TYPE: ClassVar[str] = "kicked"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    reason: str = ""

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("reason", self.reason, max_len=MAX_ERROR_TEXT, min_len=0)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "room": self.room, "reason": self.reason}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Kicked:
        return cls(room=get_field(obj, "room"), reason=get_field(obj, "reason", ""))


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    """Server -> every connected member: the room's metadata or lock changed."""

    TYPE: ClassVar[str] = "room_updated"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    metadata: JsonObj = field(default_factory=dict)
    locked: bool = False

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_metadata(self.metadata)
        check_bool("locked", self.locked)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "room": self.room, "metadata": self.metadata}
        obj["locked"] = self.locked
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomUpdated:
        return cls(
            room=get_field(obj, "room"),
            metadata=get_field(obj, "metadata", {}),
            locked=get_field(obj, "locked", False),
        )


@dataclass(frozen=True, slots=True)
class PeerReconnecting:
    """Server -> connected members: ``peer_id``'s websocket dropped; its seat is
    kept for the grace period (``peer_reconnected`` or ``peer_left`` follows)."""

    TYPE: ClassVar[str] = "peer_reconnecting"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "room": self.room, "peer_id": self.peer_id}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerReconnecting:
        return cls(room=get_field(obj, "room"), peer_id=get_field(obj, "peer_id"))


@dataclass(frozen=True, slots=True)
class PeerReconnected:
    """Server -> connected members: ``peer_id`` is back (same id and seat) and
    will offer new peer connections."""

    TYPE: ClassVar[str] = "peer_reconnected"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "room": self.room, "peer_id": self.peer_id}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerReconnected:
        return cls(room=get_field(obj, "room"), peer_id=get_field(obj, "peer_id"))


@dataclass(frozen=True, slots=True)
class HostChanged:
    """Server -> connected members: the host (owner) is now ``host``."""

    TYPE: ClassVar[str] = "host_changed"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    host: str
    previous: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("host", self.host, max_len=MAX_ID_LEN)
        check_str("previous", self.previous, max_len=MAX_ID_LEN)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "room": self.room, "host": self.host}
        obj["previous"] = self.previous
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> HostChanged:
        return cls(
            room=get_field(obj, "room"),
            host=get_field(obj, "host"),
            previous=get_field(obj, "previous"),
        )


@dataclass(frozen=True, slots=True)
class QuickMatchWaiting:
    """Server -> each waiting player: ``waiting`` players (you included) now wait for
    this ``game``/``size``/``topology``. The reply to quick_match carries its rid."""

    TYPE: ClassVar[str] = "quick_match_waiting"
    ORIGIN: ClassVar[Origin] = "server"
    game: str
    size: int
    waiting: int
    topology: str = "mesh"
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("game", self.game, max_len=MAX_ID_LEN)
        check_int("size", self.size, lo=2, hi=MAX_PLAYERS_ABSOLUTE)
        check_int("waiting", self.waiting, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "game": self.game, "size": self.size, "waiting": self.waiting}
        obj["topology"] = self.topology
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> QuickMatchWaiting:
        return cls(
            game=get_field(obj, "game"),
            size=get_field(obj, "size"),
            waiting=get_field(obj, "waiting"),
            topology=get_field(obj, "topology", "mesh"),
            rid=get_field(obj, "rid"),
        )
