"""Lobby wire messages: JSON text frames, protocol version 1 (docs/PROTOCOL.md section 1).

Every message is a frozen, slotted dataclass validated in ``__post_init__``, so a
value that exists is a value that can go on the wire. :func:`serialize` calls
:func:`check` first; :func:`parse` turns untrusted text into a message or raises
:class:`netcode.errors.LobbyProtocolError` with a wire ``code``, and nothing else.

The type names ``signal`` exists in both directions with different fields (the
client names a recipient ``to``, the server stamps the sender ``from``), so
:func:`parse` must be told who sent the text: ``origin="client"`` on the server,
``origin="server"`` on the client.

The match-lifecycle types (rejoin, kick, lock_room, update_room, quick_match and
their events) live in :mod:`netcode.lobby.match_messages` and the field
validators in :mod:`netcode.lobby.fields`; both are registered and re-exported
here, so this module stays the one place to import messages from.

This module is pure: no asyncio, no websockets, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeAlias

from ..config import DEFAULT_MAX_PLAYERS, IceServer
from ..errors import LobbyProtocolError
from .fields import (
    MAX_DATA_DEPTH,
    MAX_ERROR_TEXT,
    MAX_ID_LEN,
    MAX_LIST_LEN,
    MAX_MESSAGE_BYTES,
    MAX_METADATA_DEPTH,
    MAX_PLAYERS_ABSOLUTE,
    MAX_ROOM_CODE_LEN,
    PEER_LEFT_REASONS,
    PROTOCOL_VERSION,
    SIGNAL_KINDS,
    JsonObj,
    Origin,
    Rid,
    check_bool,
    check_choice,
    check_int,
    check_json_value,
    check_metadata,
    check_rid,
    check_seconds,
    check_str,
    check_str_list,
    envelope,
    fail,
    get_field,
    has_surrogate,
)
from .match_messages import (
    MAX_TOKEN_LEN,
    TOPOLOGIES,
    CancelQuickMatch,
    HostChanged,
    Kick,
    Kicked,
    LockRoom,
    Ok,
    PeerReconnected,
    PeerReconnecting,
    QuickMatch,
    QuickMatchWaiting,
    Rejoin,
    RoomUpdated,
    UpdateRoom,
)

__all__ = [
    "CLIENT_TYPES",
    "MAX_DATA_DEPTH",
    "MAX_ERROR_TEXT",
    "MAX_ID_LEN",
    "MAX_LIST_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_PLAYERS_ABSOLUTE",
    "MAX_ROOM_CODE_LEN",
    "PEER_LEFT_REASONS",
    "PROTOCOL_VERSION",
    "SERVER_TYPES",
    "SIGNAL_KINDS",
    "TOPOLOGIES",
    "CancelQuickMatch",
    "ClientMessage",
    "CreateRoom",
    "ErrorMsg",
    "HostChanged",
    "JoinRoom",
    "Kick",
    "Kicked",
    "LeaveRoom",
    "ListRooms",
    "LockRoom",
    "Message",
    "Ok",
    "Origin",
    "PeerJoinedMsg",
    "PeerLeftMsg",
    "PeerReconnected",
    "PeerReconnecting",
    "QuickMatch",
    "QuickMatchWaiting",
    "Rejoin",
    "Rid",
    "RoomJoined",
    "RoomLeft",
    "RoomList",
    "RoomSummary",
    "RoomUpdated",
    "SendSignal",
    "ServerMessage",
    "SignalMsg",
    "UpdateRoom",
    "Welcome",
    "check",
    "check_json_value",
    "parse",
    "parse_client",
    "parse_server",
    "serialize",
]


# --- client -> server ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRoom:
    """Client -> server: create a room and join it; answered by ``room_joined``.

    ``max_players`` None means the server's default. Metadata is a small free-form
    object (e.g. ``{"game": "pong"}``) shown in ``room_list``; the server caps its size.
    """

    TYPE: ClassVar[str] = "create_room"
    ORIGIN: ClassVar[Origin] = "client"
    max_players: int | None = None
    private: bool = False
    metadata: JsonObj = field(default_factory=dict)
    rid: Rid | None = None
    topology: str = "mesh"

    def __post_init__(self) -> None:
        if self.max_players is not None:
            check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_bool("private", self.private)
        check_metadata(self.metadata)
        check_rid(self.rid)
        check_choice("topology", self.topology, TOPOLOGIES)

    def to_wire(self) -> JsonObj:
        obj = envelope(self)
        obj["v"] = PROTOCOL_VERSION
        if self.max_players is not None:
            obj["max_players"] = self.max_players
        obj["private"] = self.private
        obj["metadata"] = self.metadata
        obj["topology"] = self.topology
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> CreateRoom:
        return cls(
            max_players=get_field(obj, "max_players"),
            private=get_field(obj, "private", False),
            metadata=get_field(obj, "metadata", {}),
            rid=get_field(obj, "rid"),
            topology=get_field(obj, "topology", "mesh"),
        )


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """Client -> server: join the room with this code (case-insensitive).

    Surrounding blanks are stripped before the length is checked (a code pasted
    with spaces still works). Answered by ``room_joined`` or an error
    ``room_not_found`` / ``room_full``.
    """

    TYPE: ClassVar[str] = "join_room"
    ORIGIN: ClassVar[Origin] = "client"
    room: str
    rid: Rid | None = None

    def __post_init__(self) -> None:
        if isinstance(self.room, str):
            object.__setattr__(self, "room", self.room.strip())
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "v": PROTOCOL_VERSION, "room": self.room}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> JoinRoom:
        return cls(room=get_field(obj, "room"), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    """Client -> server: leave the current room; answered by ``room_left``."""

    TYPE: ClassVar[str] = "leave_room"
    ORIGIN: ClassVar[Origin] = "client"
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "v": PROTOCOL_VERSION}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> LeaveRoom:
        return cls(rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class ListRooms:
    """Client -> server: list public rooms, optionally only those whose metadata
    ``game`` equals ``game``; answered by ``room_list``."""

    TYPE: ClassVar[str] = "list_rooms"
    ORIGIN: ClassVar[Origin] = "client"
    game: str | None = None
    rid: Rid | None = None

    def __post_init__(self) -> None:
        if self.game is not None:
            check_str("game", self.game, max_len=MAX_ID_LEN)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "v": PROTOCOL_VERSION}
        if self.game is not None:
            obj["game"] = self.game
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> ListRooms:
        return cls(game=get_field(obj, "game"), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class SendSignal:
    """Client -> server: relay a WebRTC signal to peer ``to`` in the same room.

    There is no success reply (it would double signaling traffic); a failure is
    answered by an ``error`` carrying this ``rid``. A ``from`` field is rejected:
    only the server says who sent a signal. ``data`` is required: any JSON value
    but null (null means absent), e.g. ``{}`` for a ``bye``.
    """

    TYPE: ClassVar[str] = "signal"
    ORIGIN: ClassVar[Origin] = "client"
    to: str
    kind: str
    data: Any
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("to", self.to, max_len=MAX_ID_LEN)
        check_choice("kind", self.kind, SIGNAL_KINDS)
        if self.data is None:
            raise fail("data: required (any JSON value but null)")
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "v": PROTOCOL_VERSION, "to": self.to, "kind": self.kind}
        obj["data"] = self.data
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> SendSignal:
        if obj.get("from") is not None:  # null means absent, as everywhere
            raise fail("signal: clients may not set 'from'", code="forbidden_field")
        return cls(
            to=get_field(obj, "to"),
            kind=get_field(obj, "kind"),
            data=get_field(obj, "data"),
            rid=get_field(obj, "rid"),
        )


# --- server -> client ----------------------------------------------------------------


def _normalize_ice(server: IceServer) -> IceServer:
    urls = (server.urls,) if isinstance(server.urls, str) else tuple(server.urls)
    return replace(server, urls=urls)


def _ice_from_wire(value: object) -> IceServer:
    if not isinstance(value, dict):
        raise fail("ice_servers[]: expected an object")
    urls = value.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    username = value.get("username")
    credential = value.get("credential")
    return IceServer(
        urls=check_str_list("ice_servers[].urls", urls, max_len=1_024),
        username=None if username is None else check_str("username", username, max_len=1_024),
        credential=None
        if credential is None
        else check_str("credential", credential, max_len=1_024),
    )


def _ice_to_wire(server: IceServer) -> JsonObj:
    urls = [server.urls] if isinstance(server.urls, str) else list(server.urls)
    obj: JsonObj = {"urls": urls}
    if server.username is not None:
        obj["username"] = server.username
    if server.credential is not None:
        obj["credential"] = server.credential
    return obj


@dataclass(frozen=True, slots=True)
class Welcome:
    """Server -> client, first message after the handshake: your peer id, the
    protocol version, the ICE servers to use and the frame size cap."""

    TYPE: ClassVar[str] = "welcome"
    ORIGIN: ClassVar[Origin] = "server"
    peer_id: str
    v: int = PROTOCOL_VERSION
    ice_servers: tuple[IceServer, ...] = ()
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        check_int("v", self.v, lo=1, hi=1_000)
        if not all(isinstance(s, IceServer) for s in self.ice_servers):
            raise fail("ice_servers: expected IceServer values")
        # Normalise a lone url string to a tuple so parse(serialize(x)) == x.
        object.__setattr__(self, "ice_servers", tuple(_normalize_ice(s) for s in self.ice_servers))
        check_int("max_message_bytes", self.max_message_bytes, lo=1_024, hi=2**30)

    def to_wire(self) -> JsonObj:
        return {
            **envelope(self),
            "v": self.v,
            "peer_id": self.peer_id,
            "ice_servers": [_ice_to_wire(s) for s in self.ice_servers],
            "max_message_bytes": self.max_message_bytes,
        }

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Welcome:
        ice = get_field(obj, "ice_servers", [])
        if not isinstance(ice, list) or len(ice) > 64:
            raise fail("ice_servers: expected a list of at most 64 servers")
        return cls(
            peer_id=get_field(obj, "peer_id"),
            v=get_field(obj, "v", PROTOCOL_VERSION),
            ice_servers=tuple(_ice_from_wire(s) for s in ice),
            max_message_bytes=get_field(obj, "max_message_bytes", MAX_MESSAGE_BYTES),
        )


@dataclass(frozen=True, slots=True)
class RoomJoined:
    """Server -> client: you are now in ``room`` (reply to create_room, join_room,
    rejoin and quick_match).

    ``peer_id`` is yours in this room (after a rejoin: the seat's old id, not the
    welcome's); ``peers`` is the snapshot of the others seated there, in join
    order, ``reconnecting`` the subset of them whose websocket is gone for now.
    ``host`` is the star's host or the mesh's owner (None only from servers that
    predate it). ``token`` takes this seat back with ``rejoin`` within
    ``token_expires_s`` seconds after a disconnect. Later changes arrive as events.
    """

    TYPE: ClassVar[str] = "room_joined"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str
    peers: tuple[str, ...] = ()
    max_players: int = DEFAULT_MAX_PLAYERS
    private: bool = False
    metadata: JsonObj = field(default_factory=dict)
    rid: Rid | None = None
    topology: str = "mesh"
    host: str | None = None
    token: str | None = None
    token_expires_s: float = 0.0
    locked: bool = False
    reconnecting: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        object.__setattr__(self, "peers", check_str_list("peers", self.peers, max_len=64))
        check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_bool("private", self.private)
        check_metadata(self.metadata)
        check_rid(self.rid)
        check_choice("topology", self.topology, TOPOLOGIES)
        if self.host is not None:
            check_str("host", self.host, max_len=MAX_ID_LEN)
        if self.token is not None:
            check_str("token", self.token, max_len=MAX_TOKEN_LEN)
        check_seconds("token_expires_s", self.token_expires_s)
        check_bool("locked", self.locked)
        reconnecting = check_str_list("reconnecting", self.reconnecting, max_len=64)
        object.__setattr__(self, "reconnecting", reconnecting)

    def to_wire(self) -> JsonObj:
        obj = {
            **envelope(self),
            "room": self.room,
            "peer_id": self.peer_id,
            "peers": list(self.peers),
            "max_players": self.max_players,
            "private": self.private,
            "metadata": self.metadata,
            "topology": self.topology,
            "token_expires_s": self.token_expires_s,
            "locked": self.locked,
            "reconnecting": list(self.reconnecting),
        }
        if self.host is not None:
            obj["host"] = self.host
        if self.token is not None:
            obj["token"] = self.token
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomJoined:
        return cls(
            room=get_field(obj, "room"),
            peer_id=get_field(obj, "peer_id"),
            peers=get_field(obj, "peers", []),
            max_players=get_field(obj, "max_players"),
            private=get_field(obj, "private", False),
            metadata=get_field(obj, "metadata", {}),
            rid=get_field(obj, "rid"),
            topology=get_field(obj, "topology", "mesh"),
            host=get_field(obj, "host"),
            token=get_field(obj, "token"),
            token_expires_s=get_field(obj, "token_expires_s", 0.0),
            locked=get_field(obj, "locked", False),
            reconnecting=get_field(obj, "reconnecting", []),
        )


@dataclass(frozen=True, slots=True)
class RoomLeft:
    """Server -> client: you are no longer in ``room`` (reply to leave_room)."""

    TYPE: ClassVar[str] = "room_left"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "room": self.room}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomLeft:
        return cls(room=get_field(obj, "room"), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One entry of ``room_list`` (not a message by itself)."""

    room: str
    players: int
    max_players: int
    metadata: JsonObj = field(default_factory=dict)
    topology: str = "mesh"
    locked: bool = False

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_int("players", self.players, lo=0, hi=MAX_PLAYERS_ABSOLUTE)
        check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_metadata(self.metadata)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_bool("locked", self.locked)

    def to_wire(self) -> JsonObj:
        return {
            "room": self.room,
            "players": self.players,
            "max_players": self.max_players,
            "metadata": self.metadata,
            "topology": self.topology,
            "locked": self.locked,
        }

    @classmethod
    def from_wire(cls, obj: object) -> RoomSummary:
        if not isinstance(obj, dict):
            raise fail("rooms[]: expected an object")
        return cls(
            room=get_field(obj, "room"),
            players=get_field(obj, "players"),
            max_players=get_field(obj, "max_players"),
            metadata=get_field(obj, "metadata", {}),
            topology=get_field(obj, "topology", "mesh"),
            locked=get_field(obj, "locked", False),
        )


@dataclass(frozen=True, slots=True)
class RoomList:
    """Server -> client: public rooms (reply to list_rooms), capped to fit one frame."""

    TYPE: ClassVar[str] = "room_list"
    ORIGIN: ClassVar[Origin] = "server"
    rooms: tuple[RoomSummary, ...] = ()
    rid: Rid | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(r, RoomSummary) for r in self.rooms):
            raise fail("rooms: expected RoomSummary values")
        object.__setattr__(self, "rooms", tuple(self.rooms))
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "rooms": [r.to_wire() for r in self.rooms]}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomList:
        rooms = get_field(obj, "rooms")
        if not isinstance(rooms, list) or len(rooms) > MAX_LIST_LEN:
            raise fail(f"rooms: expected a list of at most {MAX_LIST_LEN} rooms")
        return cls(rooms=tuple(RoomSummary.from_wire(r) for r in rooms), rid=get_field(obj, "rid"))


@dataclass(frozen=True, slots=True)
class PeerJoinedMsg:
    """Server -> every other member of ``room``: ``peer_id`` joined."""

    TYPE: ClassVar[str] = "peer_joined"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "room": self.room, "peer_id": self.peer_id}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerJoinedMsg:
        return cls(room=get_field(obj, "room"), peer_id=get_field(obj, "peer_id"))


@dataclass(frozen=True, slots=True)
class PeerLeftMsg:
    """Server -> every remaining member of ``room``: ``peer_id`` is gone.

    ``reason``: left (leave_room), disconnected (socket closed for good), timeout
    (the reconnect grace period ran out, or keepalive ping unanswered with no grace),
    kicked (by the room owner, or closed by the server for abuse).
    """

    TYPE: ClassVar[str] = "peer_left"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str
    reason: str = "left"

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        check_choice("reason", self.reason, PEER_LEFT_REASONS)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "room": self.room, "peer_id": self.peer_id}
        obj["reason"] = self.reason
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerLeftMsg:
        return cls(
            room=get_field(obj, "room"),
            peer_id=get_field(obj, "peer_id"),
            reason=get_field(obj, "reason"),
        )


@dataclass(frozen=True, slots=True)
class SignalMsg:
    """Server -> client: a signal relayed from ``sender`` (wire field ``from``).

    The server stamps ``sender`` from the connection it arrived on; it is the only
    trustworthy identity of the origin. The server always sends ``data`` (clients
    must send it); a client reads an absent one as None.
    """

    TYPE: ClassVar[str] = "signal"
    ORIGIN: ClassVar[Origin] = "server"
    sender: str
    kind: str
    data: Any = None

    def __post_init__(self) -> None:
        check_str("from", self.sender, max_len=MAX_ID_LEN)
        check_choice("kind", self.kind, SIGNAL_KINDS)
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)

    def to_wire(self) -> JsonObj:
        obj = {**envelope(self), "from": self.sender, "kind": self.kind}
        obj["data"] = self.data
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> SignalMsg:
        return cls(
            sender=get_field(obj, "from"), kind=get_field(obj, "kind"), data=get_field(obj, "data")
        )


@dataclass(frozen=True, slots=True)
class ErrorMsg:
    """Server -> client: a request (``rid``, if it had one) or frame was refused.

    ``code`` is machine-readable (docs/PROTOCOL.md lists them); ``message`` is for humans.
    The connection stays usable unless the server also closes it.
    """

    TYPE: ClassVar[str] = "error"
    ORIGIN: ClassVar[Origin] = "server"
    code: str
    message: str = ""
    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_str("code", self.code, max_len=MAX_ID_LEN)
        check_str("message", self.message, max_len=MAX_ERROR_TEXT, min_len=0)
        check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**envelope(self), "code": self.code, "message": self.message}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> ErrorMsg:
        return cls(
            code=get_field(obj, "code"),
            message=get_field(obj, "message", ""),
            rid=get_field(obj, "rid"),
        )


ClientMessage: TypeAlias = (
    CreateRoom
    | JoinRoom
    | LeaveRoom
    | ListRooms
    | SendSignal
    | Rejoin
    | Kick
    | LockRoom
    | UpdateRoom
    | QuickMatch
    | CancelQuickMatch
)
ServerMessage: TypeAlias = (
    Welcome
    | RoomJoined
    | RoomLeft
    | RoomList
    | PeerJoinedMsg
    | PeerLeftMsg
    | SignalMsg
    | ErrorMsg
    | Ok
    | Kicked
    | RoomUpdated
    | PeerReconnecting
    | PeerReconnected
    | HostChanged
    | QuickMatchWaiting
)
Message: TypeAlias = ClientMessage | ServerMessage

CLIENT_TYPES = (
    CreateRoom,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    SendSignal,
    Rejoin,
    Kick,
    LockRoom,
    UpdateRoom,
    QuickMatch,
    CancelQuickMatch,
)
SERVER_TYPES = (
    Welcome,
    RoomJoined,
    RoomLeft,
    RoomList,
    PeerJoinedMsg,
    PeerLeftMsg,
    SignalMsg,
    ErrorMsg,
    Ok,
    Kicked,
    RoomUpdated,
    PeerReconnecting,
    PeerReconnected,
    HostChanged,
    QuickMatchWaiting,
)

_Decoder: TypeAlias = Callable[[JsonObj], Message]
_DECODERS: dict[Origin, dict[str, _Decoder]] = {
    "client": {c.TYPE: c.from_wire for c in CLIENT_TYPES},
    "server": {c.TYPE: c.from_wire for c in SERVER_TYPES},
}
_ALL_TYPES = (*CLIENT_TYPES, *SERVER_TYPES)


def _reject_constant(name: str) -> Any:
    raise fail(f"{name} is not valid JSON", code="bad_json")


def _loads(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except LobbyProtocolError:
        raise
    except RecursionError:
        raise fail("JSON nested too deeply", code="bad_json") from None
    except ValueError as exc:  # JSONDecodeError, and int digit limits
        raise fail(f"invalid JSON: {exc}", code="bad_json") from None


def parse(text: str | bytes, *, origin: Origin, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Decode one frame sent by ``origin``; raise only LobbyProtocolError.

    Codes: binary_frame, too_large, bad_json, bad_message, unknown_type,
    unsupported_version, forbidden_field.
    """
    if not isinstance(text, str):
        raise fail("binary frames are not part of the lobby protocol", code="binary_frame")
    # Count UTF-8 bytes as the websocket frame does; len(text) is a cheap lower bound.
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise fail(f"message larger than {max_bytes} bytes", code="too_large")
    obj = _loads(text)
    try:
        # Only a \u escape (or a raw surrogate handed in by a caller) can make one.
        if "\\u" in text or has_surrogate(text):
            _check_unicode(obj)
        return _decode(obj, origin)
    except LobbyProtocolError as exc:
        exc.rid = _rid_of(obj)
        raise


def _check_unicode(obj: object) -> None:
    """Refuse a lone surrogate in any string or key, known field or not.

    Iterative and O(size): the decoded object came from a size-capped frame.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                raise fail("a string holds a lone surrogate (not valid Unicode)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _decode(obj: object, origin: Origin) -> Message:
    if not isinstance(obj, dict):
        raise fail("a message must be a JSON object")
    kind = get_field(obj, "type")
    if not isinstance(kind, str):
        raise fail("missing string field 'type'")
    version = obj.get("v")
    # Only the JSON integer 1: true and 1.0 compare equal to 1 in Python, not on the wire.
    if origin == "client" and version is not None and not _is_version(version):
        raise fail(f"unsupported protocol version {version!r:.40}", code="unsupported_version")
    decoder = _DECODERS[origin].get(kind)
    if decoder is None:
        raise fail(f"unknown message type {kind[:64]!r}", code="unknown_type")
    return decoder(obj)


def _is_version(value: object) -> bool:
    return type(value) is int and value == PROTOCOL_VERSION


def parse_client(text: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> ClientMessage:
    """:func:`parse` for the server side: text a client sent."""
    message = parse(text, origin="client", max_bytes=max_bytes)
    assert isinstance(message, CLIENT_TYPES)
    return message


def parse_server(text: str | bytes, *, max_bytes: int = 2**24) -> ServerMessage:
    """:func:`parse` for the client side: text the server sent."""
    message = parse(text, origin="server", max_bytes=max_bytes)
    assert isinstance(message, SERVER_TYPES)
    return message


def _rid_of(obj: object) -> Rid | None:
    """The request id of a raw object if it has a valid one, so errors can echo it."""
    if not isinstance(obj, dict):
        return None
    try:
        return check_rid(obj.get("rid"))
    except LobbyProtocolError:
        return None


def check(message: Message) -> None:
    """Re-validate a message: construction validates, but a caller may have mutated a
    metadata or data dict since. Raises LobbyProtocolError."""
    if not isinstance(message, _ALL_TYPES):
        raise fail(f"not a lobby message: {type(message).__name__}")
    message.__post_init__()


def serialize(message: Message) -> str:
    """Encode a message as one compact JSON text frame."""
    check(message)
    return json.dumps(message.to_wire(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
