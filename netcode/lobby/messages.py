"""Lobby wire messages: JSON text frames, protocol version 1 (docs/PROTOCOL.md section 1).

Every message is a frozen, slotted dataclass validated in ``__post_init__``, so a
value that exists is a value that can go on the wire. :func:`serialize` calls
:func:`check` first; :func:`parse` turns untrusted text into a message or raises
:class:`netcode.errors.LobbyProtocolError` with a wire ``code``, and nothing else.

The type names ``signal`` exists in both directions with different fields (the
client names a recipient ``to``, the server stamps the sender ``from``), so
:func:`parse` must be told who sent the text: ``origin="client"`` on the server,
``origin="server"`` on the client.

This module is pure: no asyncio, no websockets, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeAlias

from ..config import IceServer
from ..errors import LobbyProtocolError

__all__ = [
    "CLIENT_TYPES",
    "MAX_DATA_DEPTH",
    "MAX_ID_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_DEPTH",
    "PEER_LEFT_REASONS",
    "PROTOCOL_VERSION",
    "SERVER_TYPES",
    "SIGNAL_KINDS",
    "ClientMessage",
    "CreateRoom",
    "ErrorMsg",
    "JoinRoom",
    "LeaveRoom",
    "ListRooms",
    "Message",
    "Origin",
    "PeerJoinedMsg",
    "PeerLeftMsg",
    "Rid",
    "RoomJoined",
    "RoomLeft",
    "RoomList",
    "RoomSummary",
    "SendSignal",
    "ServerMessage",
    "SignalMsg",
    "Welcome",
    "check",
    "check_json_value",
    "parse",
    "parse_client",
    "parse_server",
    "serialize",
]

PROTOCOL_VERSION = 1
# Default cap on one frame; the server's LobbyConfig.max_message_bytes overrides it.
MAX_MESSAGE_BYTES = 65_536
MAX_ID_LEN = 64
MAX_ROOM_CODE_LEN = 16
MAX_RID_INT = 2**53  # largest integer every JSON implementation keeps exact
MAX_ERROR_TEXT = 1_024
MAX_METADATA_DEPTH = 8
MAX_DATA_DEPTH = 16
MAX_PLAYERS_ABSOLUTE = 1_024
MAX_LIST_LEN = 10_000

SIGNAL_KINDS: frozenset[str] = frozenset(
    {"offer", "answer", "candidate", "end_of_candidates", "bye"}
)
PEER_LEFT_REASONS: frozenset[str] = frozenset({"left", "disconnected", "timeout", "kicked"})

Rid: TypeAlias = int | str
Origin: TypeAlias = Literal["client", "server"]
JsonObj: TypeAlias = dict[str, Any]


# A lone UTF-16 surrogate (JSON lets "\ud800" through) cannot be encoded as UTF-8,
# so it could never be relayed: refused at decode, wherever it appears.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _fail(what: str, code: str = "bad_message") -> LobbyProtocolError:
    return LobbyProtocolError(what, code=code)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


# --- field validators (raise LobbyProtocolError; used by __post_init__ and parse) ---


def _check_str(name: str, value: object, *, max_len: int, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise _fail(f"{name}: expected a string, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise _fail(f"{name}: length must be in {min_len}..{max_len}, got {len(value)}")
    if _has_surrogate(value):
        raise _fail(f"{name}: contains a lone surrogate (not valid Unicode)")
    return value


def _check_int(name: str, value: object, *, lo: int, hi: int) -> int:
    # bool is an int subclass in Python but not a number on the wire; 4.0 is a float.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{name}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise _fail(f"{name}: must be in {lo}..{hi}, got {value}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def _check_rid(value: object) -> Rid | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _check_str("rid", value, max_len=MAX_ID_LEN, min_len=0)
    return _check_int("rid", value, lo=-MAX_RID_INT, hi=MAX_RID_INT)


def _check_choice(name: str, value: object, choices: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(f"{name}: must be one of {sorted(choices)}, got {value!r}")
    return value


def check_json_value(name: str, value: object, *, max_depth: int) -> None:
    """Raise unless ``value`` is plain JSON (str keys, finite floats, no lone
    surrogates) nested <= max_depth.

    Iterative, so a hostile structure cannot exhaust the Python stack.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise _fail(f"{name}: nested deeper than {max_depth}")
        if isinstance(item, str):
            if _has_surrogate(item):
                raise _fail(f"{name}: contains a lone surrogate (not valid Unicode)")
        elif item is None or isinstance(item, bool | int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _fail(f"{name}: NaN and infinities are not JSON")
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or _has_surrogate(key):
                    raise _fail(f"{name}: object keys must be valid Unicode strings")
                stack.append((sub, depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, depth + 1) for sub in item)
        else:
            raise _fail(f"{name}: {type(item).__name__} is not a JSON value")


def _check_metadata(value: object) -> JsonObj:
    if not isinstance(value, dict):
        raise _fail(f"metadata: expected an object, got {type(value).__name__}")
    check_json_value("metadata", value, max_depth=MAX_METADATA_DEPTH)
    return value


def _check_str_list(name: str, value: object, *, max_len: int) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _fail(f"{name}: expected a list, got {type(value).__name__}")
    if len(value) > MAX_LIST_LEN:
        raise _fail(f"{name}: more than {MAX_LIST_LEN} items")
    return tuple(_check_str(f"{name}[]", v, max_len=max_len) for v in value)


def _get(obj: JsonObj, key: str, default: Any = None) -> Any:
    """A wire field, or ``default`` when absent or null (null means "not given")."""
    value = obj.get(key)
    return default if value is None else value


def _base(msg: Message) -> JsonObj:
    obj: JsonObj = {"type": msg.TYPE}
    rid = getattr(msg, "rid", None)
    if rid is not None:
        obj["rid"] = rid
    return obj


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

    def __post_init__(self) -> None:
        if self.max_players is not None:
            _check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        _check_bool("private", self.private)
        _check_metadata(self.metadata)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = _base(self)
        obj["v"] = PROTOCOL_VERSION
        if self.max_players is not None:
            obj["max_players"] = self.max_players
        obj["private"] = self.private
        obj["metadata"] = self.metadata
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> CreateRoom:
        return cls(
            max_players=_get(obj, "max_players"),
            private=_get(obj, "private", False),
            metadata=_get(obj, "metadata", {}),
            rid=_get(obj, "rid"),
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
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "v": PROTOCOL_VERSION, "room": self.room}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> JoinRoom:
        return cls(room=_get(obj, "room"), rid=_get(obj, "rid"))


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    """Client -> server: leave the current room; answered by ``room_left``."""

    TYPE: ClassVar[str] = "leave_room"
    ORIGIN: ClassVar[Origin] = "client"
    rid: Rid | None = None

    def __post_init__(self) -> None:
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "v": PROTOCOL_VERSION}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> LeaveRoom:
        return cls(rid=_get(obj, "rid"))


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
            _check_str("game", self.game, max_len=MAX_ID_LEN)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**_base(self), "v": PROTOCOL_VERSION}
        if self.game is not None:
            obj["game"] = self.game
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> ListRooms:
        return cls(game=_get(obj, "game"), rid=_get(obj, "rid"))


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
        _check_str("to", self.to, max_len=MAX_ID_LEN)
        _check_choice("kind", self.kind, SIGNAL_KINDS)
        if self.data is None:
            raise _fail("data: required (any JSON value but null)")
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        obj = {**_base(self), "v": PROTOCOL_VERSION, "to": self.to, "kind": self.kind}
        obj["data"] = self.data
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> SendSignal:
        if obj.get("from") is not None:  # null means absent, as everywhere
            raise _fail("signal: clients may not set 'from'", code="forbidden_field")
        return cls(
            to=_get(obj, "to"), kind=_get(obj, "kind"), data=_get(obj, "data"), rid=_get(obj, "rid")
        )


# --- server -> client ----------------------------------------------------------------


def _normalize_ice(server: IceServer) -> IceServer:
    urls = (server.urls,) if isinstance(server.urls, str) else tuple(server.urls)
    return replace(server, urls=urls)


def _ice_from_wire(value: object) -> IceServer:
    if not isinstance(value, dict):
        raise _fail("ice_servers[]: expected an object")
    urls = value.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    username = value.get("username")
    credential = value.get("credential")
    return IceServer(
        urls=_check_str_list("ice_servers[].urls", urls, max_len=1_024),
        username=None if username is None else _check_str("username", username, max_len=1_024),
        credential=None
        if credential is None
        else _check_str("credential", credential, max_len=1_024),
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
        _check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        _check_int("v", self.v, lo=1, hi=1_000)
        if not all(isinstance(s, IceServer) for s in self.ice_servers):
            raise _fail("ice_servers: expected IceServer values")
        # Normalise a lone url string to a tuple so parse(serialize(x)) == x.
        object.__setattr__(self, "ice_servers", tuple(_normalize_ice(s) for s in self.ice_servers))
        _check_int("max_message_bytes", self.max_message_bytes, lo=1_024, hi=2**30)

    def to_wire(self) -> JsonObj:
        return {
            **_base(self),
            "v": self.v,
            "peer_id": self.peer_id,
            "ice_servers": [_ice_to_wire(s) for s in self.ice_servers],
            "max_message_bytes": self.max_message_bytes,
        }

    @classmethod
    def from_wire(cls, obj: JsonObj) -> Welcome:
        ice = _get(obj, "ice_servers", [])
        if not isinstance(ice, list) or len(ice) > 64:
            raise _fail("ice_servers: expected a list of at most 64 servers")
        return cls(
            peer_id=_get(obj, "peer_id"),
            v=_get(obj, "v", PROTOCOL_VERSION),
            ice_servers=tuple(_ice_from_wire(s) for s in ice),
            max_message_bytes=_get(obj, "max_message_bytes", MAX_MESSAGE_BYTES),
        )


@dataclass(frozen=True, slots=True)
class RoomJoined:
    """Server -> client: you are now in ``room`` (reply to create_room/join_room).

    ``peer_id`` is yours; ``peers`` is the snapshot of the others already there,
    in join order. Later changes arrive as peer_joined / peer_left.
    """

    TYPE: ClassVar[str] = "room_joined"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str
    peers: tuple[str, ...] = ()
    max_players: int = 8
    private: bool = False
    metadata: JsonObj = field(default_factory=dict)
    rid: Rid | None = None

    def __post_init__(self) -> None:
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        object.__setattr__(self, "peers", _check_str_list("peers", self.peers, max_len=64))
        _check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        _check_bool("private", self.private)
        _check_metadata(self.metadata)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {
            **_base(self),
            "room": self.room,
            "peer_id": self.peer_id,
            "peers": list(self.peers),
            "max_players": self.max_players,
            "private": self.private,
            "metadata": self.metadata,
        }

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomJoined:
        return cls(
            room=_get(obj, "room"),
            peer_id=_get(obj, "peer_id"),
            peers=_get(obj, "peers", []),
            max_players=_get(obj, "max_players"),
            private=_get(obj, "private", False),
            metadata=_get(obj, "metadata", {}),
            rid=_get(obj, "rid"),
        )


@dataclass(frozen=True, slots=True)
class RoomLeft:
    """Server -> client: you are no longer in ``room`` (reply to leave_room)."""

    TYPE: ClassVar[str] = "room_left"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    rid: Rid | None = None

    def __post_init__(self) -> None:
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "room": self.room}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomLeft:
        return cls(room=_get(obj, "room"), rid=_get(obj, "rid"))


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One entry of ``room_list`` (not a message by itself)."""

    room: str
    players: int
    max_players: int
    metadata: JsonObj = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_int("players", self.players, lo=0, hi=MAX_PLAYERS_ABSOLUTE)
        _check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        _check_metadata(self.metadata)

    def to_wire(self) -> JsonObj:
        return {
            "room": self.room,
            "players": self.players,
            "max_players": self.max_players,
            "metadata": self.metadata,
        }

    @classmethod
    def from_wire(cls, obj: object) -> RoomSummary:
        if not isinstance(obj, dict):
            raise _fail("rooms[]: expected an object")
        return cls(
            room=_get(obj, "room"),
            players=_get(obj, "players"),
            max_players=_get(obj, "max_players"),
            metadata=_get(obj, "metadata", {}),
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
            raise _fail("rooms: expected RoomSummary values")
        object.__setattr__(self, "rooms", tuple(self.rooms))
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "rooms": [r.to_wire() for r in self.rooms]}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> RoomList:
        rooms = _get(obj, "rooms")
        if not isinstance(rooms, list) or len(rooms) > MAX_LIST_LEN:
            raise _fail(f"rooms: expected a list of at most {MAX_LIST_LEN} rooms")
        return cls(rooms=tuple(RoomSummary.from_wire(r) for r in rooms), rid=_get(obj, "rid"))


@dataclass(frozen=True, slots=True)
class PeerJoinedMsg:
    """Server -> every other member of ``room``: ``peer_id`` joined."""

    TYPE: ClassVar[str] = "peer_joined"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str

    def __post_init__(self) -> None:
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "room": self.room, "peer_id": self.peer_id}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerJoinedMsg:
        return cls(room=_get(obj, "room"), peer_id=_get(obj, "peer_id"))


@dataclass(frozen=True, slots=True)
class PeerLeftMsg:
    """Server -> every remaining member of ``room``: ``peer_id`` is gone.

    ``reason``: left (leave_room), disconnected (socket closed), timeout (keepalive
    ping unanswered), kicked (closed by the server for abuse).
    """

    TYPE: ClassVar[str] = "peer_left"
    ORIGIN: ClassVar[Origin] = "server"
    room: str
    peer_id: str
    reason: str = "left"

    def __post_init__(self) -> None:
        _check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        _check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        _check_choice("reason", self.reason, PEER_LEFT_REASONS)

    def to_wire(self) -> JsonObj:
        obj = {**_base(self), "room": self.room, "peer_id": self.peer_id}
        obj["reason"] = self.reason
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> PeerLeftMsg:
        return cls(room=_get(obj, "room"), peer_id=_get(obj, "peer_id"), reason=_get(obj, "reason"))


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
        _check_str("from", self.sender, max_len=MAX_ID_LEN)
        _check_choice("kind", self.kind, SIGNAL_KINDS)
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)

    def to_wire(self) -> JsonObj:
        obj = {**_base(self), "from": self.sender, "kind": self.kind}
        obj["data"] = self.data
        return obj

    @classmethod
    def from_wire(cls, obj: JsonObj) -> SignalMsg:
        return cls(sender=_get(obj, "from"), kind=_get(obj, "kind"), data=_get(obj, "data"))


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
        _check_str("code", self.code, max_len=MAX_ID_LEN)
        _check_str("message", self.message, max_len=MAX_ERROR_TEXT, min_len=0)
        _check_rid(self.rid)

    def to_wire(self) -> JsonObj:
        return {**_base(self), "code": self.code, "message": self.message}

    @classmethod
    def from_wire(cls, obj: JsonObj) -> ErrorMsg:
        return cls(code=_get(obj, "code"), message=_get(obj, "message", ""), rid=_get(obj, "rid"))


ClientMessage: TypeAlias = CreateRoom | JoinRoom | LeaveRoom | ListRooms | SendSignal
ServerMessage: TypeAlias = (
    Welcome | RoomJoined | RoomLeft | RoomList | PeerJoinedMsg | PeerLeftMsg | SignalMsg | ErrorMsg
)
Message: TypeAlias = ClientMessage | ServerMessage

CLIENT_TYPES = (CreateRoom, JoinRoom, LeaveRoom, ListRooms, SendSignal)
SERVER_TYPES = (
    Welcome,
    RoomJoined,
    RoomLeft,
    RoomList,
    PeerJoinedMsg,
    PeerLeftMsg,
    SignalMsg,
    ErrorMsg,
)

_Decoder: TypeAlias = Callable[[JsonObj], Message]
_DECODERS: dict[Origin, dict[str, _Decoder]] = {
    "client": {c.TYPE: c.from_wire for c in CLIENT_TYPES},
    "server": {c.TYPE: c.from_wire for c in SERVER_TYPES},
}
_ALL_TYPES = (*CLIENT_TYPES, *SERVER_TYPES)


def _reject_constant(name: str) -> Any:
    raise _fail(f"{name} is not valid JSON", code="bad_json")


def _loads(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except LobbyProtocolError:
        raise
    except RecursionError:
        raise _fail("JSON nested too deeply", code="bad_json") from None
    except ValueError as exc:  # JSONDecodeError, and int digit limits
        raise _fail(f"invalid JSON: {exc}", code="bad_json") from None


def parse(text: str | bytes, *, origin: Origin, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Decode one frame sent by ``origin``; raise only LobbyProtocolError.

    Codes: binary_frame, too_large, bad_json, bad_message, unknown_type,
    unsupported_version, forbidden_field.
    """
    if not isinstance(text, str):
        raise _fail("binary frames are not part of the lobby protocol", code="binary_frame")
    # Count UTF-8 bytes as the websocket frame does; len(text) is a cheap lower bound.
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _fail(f"message larger than {max_bytes} bytes", code="too_large")
    obj = _loads(text)
    try:
        # Only a \u escape (or a raw surrogate handed in by a caller) can make one.
        if "\\u" in text or _has_surrogate(text):
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
            if _has_surrogate(item):
                raise _fail("a string holds a lone surrogate (not valid Unicode)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _decode(obj: object, origin: Origin) -> Message:
    if not isinstance(obj, dict):
        raise _fail("a message must be a JSON object")
    kind = _get(obj, "type")
    if not isinstance(kind, str):
        raise _fail("missing string field 'type'")
    version = obj.get("v")
    # Only the JSON integer 1: true and 1.0 compare equal to 1 in Python, not on the wire.
    if origin == "client" and version is not None and not _is_version(version):
        raise _fail(f"unsupported protocol version {version!r:.40}", code="unsupported_version")
    decoder = _DECODERS[origin].get(kind)
    if decoder is None:
        raise _fail(f"unknown message type {kind[:64]!r}", code="unknown_type")
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
        return _check_rid(obj.get("rid"))
    except LobbyProtocolError:
        return None


def check(message: Message) -> None:
    """Re-validate a message: construction validates, but a caller may have mutated a
    metadata or data dict since. Raises LobbyProtocolError."""
    if not isinstance(message, _ALL_TYPES):
        raise _fail(f"not a lobby message: {type(message).__name__}")
    message.__post_init__()


def serialize(message: Message) -> str:
    """Encode a message as one compact JSON text frame."""
    check(message)
    return json.dumps(message.to_wire(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
