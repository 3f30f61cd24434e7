"""Lobby wire messages: JSON text frames, protocol version 1 (docs/PROTOCOL.md section 1).

Every message is one frozen msgspec Struct, its fields in wire order, validated in
``__post_init__`` (msgspec runs it on construction and on decoding), so a value
that exists is a value that can go on the wire. Adding a message is one class and
one entry in ``CLIENT_TYPES`` or ``SERVER_TYPES``. :func:`serialize` re-checks and
encodes; :func:`parse` turns untrusted text into a message or raises
:class:`netcode.errors.LobbyProtocolError` with a wire ``code``, and nothing else.

The type name ``signal`` exists in both directions with different fields (the
client names a recipient ``to``, the server stamps the sender ``from``), so
:func:`parse` must be told who sent the text: ``origin="client"`` on the server,
``origin="server"`` on the client.

Parsing has two paths. The fast one is msgspec's typed decoder over the tagged
union of the origin's types. Whenever it refuses a frame (or a frame could hide a
client ``from``), the reference path decides: :mod:`json`, then the documented
checks in order (JSON, lone surrogates, ``type``, ``v``, known type, ``from``),
null read as absent, then the same Structs via :func:`msgspec.convert`. So the
error codes and the echoed ``rid`` are the hand-written ones, at the fast path's
price only for good frames.

The match-lifecycle types live in :mod:`netcode.lobby.match_messages` and the
validators and base classes in :mod:`netcode.lobby.fields`; both are re-exported
here, so this module stays the one place to import messages from.

This module is pure: no asyncio, no websockets, no clock.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, TypeAlias, Union, get_args, get_origin

import msgspec
from msgspec.structs import force_setattr

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
    Event,
    JsonObj,
    LobbyMessage,
    Origin,
    PeerNotice,
    Reply,
    Request,
    Rid,
    WireStruct,
    check_bool,
    check_choice,
    check_int,
    check_json_value,
    check_metadata,
    check_rid,
    check_seconds,
    check_str,
    check_str_list,
    check_version,
    fail,
    has_surrogate,
    keep,
    name_types,
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
    "LobbyMessage",
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


class CreateRoom(Request, frozen=True, kw_only=True, tag="create_room"):
    """Client -> server: create a room and join it; answered by ``room_joined``.

    ``max_players`` None means the server's default. Metadata is a small free-form
    object (e.g. ``{"game": "pong"}``) shown in ``room_list``; the server caps its size.
    """

    max_players: int | None = None
    private: bool = keep(False)
    metadata: JsonObj = keep({})
    topology: str = keep("mesh")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_players is not None:
            check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_bool("private", self.private)
        check_metadata(self.metadata)
        check_choice("topology", self.topology, TOPOLOGIES)


class JoinRoom(Request, frozen=True, kw_only=True, tag="join_room"):
    """Client -> server: join the room with this code (case-insensitive).

    Surrounding blanks are stripped before the length is checked (a code pasted
    with spaces still works). Answered by ``room_joined`` or an error
    ``room_not_found`` / ``room_full``.
    """

    room: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.room, str):
            force_setattr(self, "room", self.room.strip())
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)


class LeaveRoom(Request, frozen=True, kw_only=True, tag="leave_room"):
    """Client -> server: leave the current room; answered by ``room_left``."""


class ListRooms(Request, frozen=True, kw_only=True, tag="list_rooms"):
    """Client -> server: list public rooms, optionally only those whose metadata
    ``game`` equals ``game``; answered by ``room_list``."""

    game: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.game is not None:
            check_str("game", self.game, max_len=MAX_ID_LEN)


class SendSignal(Request, frozen=True, kw_only=True, tag="signal"):
    """Client -> server: relay a WebRTC signal to peer ``to`` in the same room.

    There is no success reply (it would double signaling traffic); a failure is
    answered by an ``error`` carrying this ``rid``. A ``from`` field is rejected:
    only the server says who sent a signal. ``data`` is required: any JSON value
    but null (null means absent), e.g. ``{}`` for a ``bye``.
    """

    to: str
    kind: str
    data: Any
    # Typed None, so the decoder itself refuses a client "from" (however escaped);
    # the reference path then names it forbidden_field. Never set, never written.
    forbidden_from: None = msgspec.field(default=None, name="from")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.forbidden_from is not None:
            raise fail("signal: clients may not set 'from'", code="forbidden_field")
        check_str("to", self.to, max_len=MAX_ID_LEN)
        check_choice("kind", self.kind, SIGNAL_KINDS)
        if self.data is None:
            raise fail("data: required (any JSON value but null)")
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)


# --- server -> client ----------------------------------------------------------------


def _ice_to_wire(server: IceServer) -> JsonObj:
    obj: JsonObj = {"urls": list(server.urls)}
    if server.username is not None:
        obj["username"] = server.username
    if server.credential is not None:
        obj["credential"] = server.credential
    return obj


class Welcome(Event, frozen=True, kw_only=True, tag="welcome"):
    """Server -> client, first message after the handshake: your peer id, the
    protocol version, the ICE servers to use and the frame size cap."""

    v: int = keep(PROTOCOL_VERSION)
    peer_id: str
    ice_servers: tuple[IceServer, ...] = keep(())
    max_message_bytes: int = keep(MAX_MESSAGE_BYTES)

    def __post_init__(self) -> None:
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        check_int("v", self.v, lo=1, hi=1_000)
        servers = self.ice_servers
        if not isinstance(servers, tuple | list) or len(servers) > 64:
            raise fail("ice_servers: expected a list of at most 64 servers")
        if not all(isinstance(s, IceServer) for s in servers):
            raise fail("ice_servers: expected IceServer values")
        # Normalise a lone url string to a tuple so parse(serialize(x)) == x.
        force_setattr(self, "ice_servers", tuple(_checked_ice(s) for s in servers))
        check_int("max_message_bytes", self.max_message_bytes, lo=1_024, hi=2**30)

    def to_wire(self) -> JsonObj:
        # IceServer is a dataclass, which msgspec writes with its nulls: not on the wire.
        obj = super().to_wire()
        obj["ice_servers"] = [_ice_to_wire(s) for s in self.ice_servers]
        return obj


def _checked_ice(server: IceServer) -> IceServer:
    urls = (server.urls,) if isinstance(server.urls, str) else tuple(server.urls)
    check_str_list("ice_servers[].urls", urls, max_len=1_024)
    for name in ("username", "credential"):
        if (value := getattr(server, name)) is not None:
            check_str(name, value, max_len=1_024)
    return server if urls == server.urls else replace(server, urls=urls)


class RoomJoined(Reply, frozen=True, kw_only=True, tag="room_joined"):
    """Server -> client: you are now in ``room`` (reply to create_room, join_room,
    rejoin and quick_match).

    ``peer_id`` is yours in this room (after a rejoin: the seat's old id, not the
    welcome's); ``peers`` is the snapshot of the others seated there, in join
    order, ``reconnecting`` the subset of them whose websocket is gone for now.
    ``host`` is the star's host or the mesh's owner (None only from servers that
    predate it). ``token`` takes this seat back with ``rejoin`` within
    ``token_expires_s`` seconds after a disconnect. Later changes arrive as events.
    """

    room: str
    peer_id: str
    peers: tuple[str, ...] = keep(())
    max_players: int = keep(DEFAULT_MAX_PLAYERS)
    private: bool = keep(False)
    metadata: JsonObj = keep({})
    topology: str = keep("mesh")
    token_expires_s: float = keep(0.0)
    locked: bool = keep(False)
    reconnecting: tuple[str, ...] = keep(())
    host: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)
        force_setattr(self, "peers", check_str_list("peers", self.peers, max_len=64))
        check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_bool("private", self.private)
        check_metadata(self.metadata)
        check_choice("topology", self.topology, TOPOLOGIES)
        if self.host is not None:
            check_str("host", self.host, max_len=MAX_ID_LEN)
        if self.token is not None:
            check_str("token", self.token, max_len=MAX_TOKEN_LEN)
        check_seconds("token_expires_s", self.token_expires_s)
        check_bool("locked", self.locked)
        reconnecting = check_str_list("reconnecting", self.reconnecting, max_len=64)
        force_setattr(self, "reconnecting", reconnecting)


class RoomLeft(Reply, frozen=True, kw_only=True, tag="room_left"):
    """Server -> client: you are no longer in ``room`` (reply to leave_room)."""

    room: str

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)


class RoomSummary(WireStruct, frozen=True):
    """One entry of ``room_list`` (not a message by itself)."""

    room: str
    players: int
    max_players: int
    metadata: JsonObj = keep({})
    topology: str = keep("mesh")
    locked: bool = keep(False)

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_int("players", self.players, lo=0, hi=MAX_PLAYERS_ABSOLUTE)
        check_int("max_players", self.max_players, lo=1, hi=MAX_PLAYERS_ABSOLUTE)
        check_metadata(self.metadata)
        check_choice("topology", self.topology, TOPOLOGIES)
        check_bool("locked", self.locked)


class RoomList(Reply, frozen=True, kw_only=True, tag="room_list"):
    """Server -> client: public rooms (reply to list_rooms), capped to fit one frame."""

    rooms: tuple[RoomSummary, ...] = keep(())

    def __post_init__(self) -> None:
        super().__post_init__()
        rooms = self.rooms
        if not isinstance(rooms, tuple | list) or len(rooms) > MAX_LIST_LEN:
            raise fail(f"rooms: expected a list of at most {MAX_LIST_LEN} rooms")
        if not all(isinstance(r, RoomSummary) for r in rooms):
            raise fail("rooms: expected RoomSummary values")
        force_setattr(self, "rooms", tuple(rooms))


class PeerJoinedMsg(PeerNotice, frozen=True, tag="peer_joined"):
    """Server -> every other member of ``room``: ``peer_id`` joined."""


class PeerLeftMsg(PeerNotice, frozen=True, tag="peer_left"):
    """Server -> every remaining member of ``room``: ``peer_id`` is gone.

    ``reason``: left (leave_room), disconnected (socket closed for good), timeout
    (the reconnect grace period ran out, or keepalive ping unanswered with no grace),
    kicked (by the room owner, or closed by the server for abuse).
    """

    reason: str = keep("left")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("reason", self.reason, PEER_LEFT_REASONS)


class SignalMsg(Event, frozen=True, tag="signal", rename={"sender": "from"}):
    """Server -> client: a signal relayed from ``sender`` (wire field ``from``).

    The server stamps ``sender`` from the connection it arrived on; it is the only
    trustworthy identity of the origin. The server always sends ``data`` (clients
    must send it); a client reads an absent one as None.
    """

    sender: str
    kind: str
    data: Any = keep(None)

    def __post_init__(self) -> None:
        check_str("from", self.sender, max_len=MAX_ID_LEN)
        check_choice("kind", self.kind, SIGNAL_KINDS)
        check_json_value("data", self.data, max_depth=MAX_DATA_DEPTH)


class ErrorMsg(Reply, frozen=True, kw_only=True, tag="error"):
    """Server -> client: a request (``rid``, if it had one) or frame was refused.

    ``code`` is machine-readable (docs/PROTOCOL.md lists them); ``message`` is for humans.
    The connection stays usable unless the server also closes it.
    """

    code: str
    message: str = keep("")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_str("code", self.code, max_len=MAX_ID_LEN)
        check_str("message", self.message, max_len=MAX_ERROR_TEXT, min_len=0)


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

# The unions above are the registry: parse, the docs test and the strategies read these.
CLIENT_TYPES: tuple[type[ClientMessage], ...] = get_args(ClientMessage)
SERVER_TYPES: tuple[type[ServerMessage], ...] = get_args(ServerMessage)
name_types(*CLIENT_TYPES, *SERVER_TYPES)
_ALL_TYPES = (*CLIENT_TYPES, *SERVER_TYPES)
_TYPES: dict[Origin, tuple[type[Message], ...]] = {
    "client": CLIENT_TYPES,
    "server": SERVER_TYPES,
}
_BY_TYPE: dict[Origin, dict[str, type[Message]]] = {
    origin: {c.TYPE: c for c in types} for origin, types in _TYPES.items()
}


def _union_decoder(types: tuple[type[Message], ...]) -> msgspec.json.Decoder[Any]:
    # Union[a tuple] is the runtime spelling of "any of these"; X | Y needs the names.
    return msgspec.json.Decoder(Union[types])  # noqa: UP007


_DECODERS = {origin: _union_decoder(types) for origin, types in _TYPES.items()}
_ENCODER = msgspec.json.Encoder()


# --- decoding ------------------------------------------------------------------------


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
    try:
        message: Message = _DECODERS[origin].decode(text)
    except Exception:  # any refusal at all (even a RecursionError): the reference path names it
        return _parse_reference(text, origin)
    return message


def _parse_reference(text: str, origin: Origin) -> Message:
    """The documented checks in order, each with its own code; echoes a valid rid."""
    obj = _loads(text)
    try:
        # Only a \u escape (or a raw surrogate handed in by a caller) can make one.
        if "\\u" in text or has_surrogate(text):
            _check_unicode(obj)
        return _decode(obj, origin)
    except LobbyProtocolError as exc:
        exc.rid = _rid_of(obj)
        raise


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
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise fail("missing string field 'type'")
    if origin == "client" and obj.get("v") is not None:
        check_version(obj["v"])
    cls = _BY_TYPE[origin].get(kind)
    if cls is None:
        raise fail(f"unknown message type {kind[:64]!r}", code="unknown_type")
    if cls is SendSignal and obj.get("from") is not None:  # null means absent, as everywhere
        raise fail("signal: clients may not set 'from'", code="forbidden_field")
    fields = {key: value for key, value in obj.items() if value is not None}
    try:
        message: Message = msgspec.convert(fields, cls)
    except msgspec.ValidationError as exc:
        raise fail(f"{kind}: {exc}") from None
    return message


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


# --- encoding ------------------------------------------------------------------------


def _json_fields(cls: type[Message]) -> tuple[tuple[str, int], ...]:
    """(name, depth limit) of a message type's free-form JSON fields: metadata objects
    and signal data, the only values that can change after construction."""
    return tuple(
        (f.name, MAX_DATA_DEPTH if f.type is Any else MAX_METADATA_DEPTH)
        for f in msgspec.structs.fields(cls)
        if f.type is Any or get_origin(f.type) is dict
    )


_JSON_FIELDS = {cls: _json_fields(cls) for cls in _ALL_TYPES}


def check(message: Message) -> None:
    """Re-validate what can change after construction (the rest is frozen and was
    checked then): a caller may have mutated a metadata or data dict since.
    Raises LobbyProtocolError."""
    if not isinstance(message, _ALL_TYPES):
        raise fail(f"not a lobby message: {type(message).__name__}")
    for name, depth in _JSON_FIELDS[type(message)]:
        check_json_value(name, getattr(message, name), max_depth=depth)


def serialize(message: Message) -> str:
    """Encode a message as one compact JSON text frame (UTF-8, fields in wire order)."""
    check(message)
    wire = message.to_wire() if type(message) is Welcome else message
    return _ENCODER.encode(wire).decode("utf-8")
