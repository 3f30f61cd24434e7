"""Field validators, limits and the message base classes shared by the lobby
message modules (pure).

Every validator raises :class:`netcode.errors.LobbyProtocolError` with a wire
``code`` (``bad_message`` unless stated), so a constructor that accepts a value
is a proof the value can go on the wire.

Messages are msgspec Structs. The wire rule they encode by (``omit_defaults``): a
field whose value is None is left out (None means "not given", as null does on the
wire); a field declared with :func:`keep` is always written, default or not.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Literal, TypeAlias

import msgspec

from ..errors import LobbyProtocolError

__all__ = [
    "MAX_DATA_DEPTH",
    "MAX_ERROR_TEXT",
    "MAX_ID_LEN",
    "MAX_LIST_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_PLAYERS_ABSOLUTE",
    "MAX_RID_INT",
    "MAX_ROOM_CODE_LEN",
    "PEER_LEFT_REASONS",
    "PROTOCOL_VERSION",
    "SIGNAL_KINDS",
    "Event",
    "JsonObj",
    "LobbyMessage",
    "Origin",
    "PeerNotice",
    "Reply",
    "Request",
    "Rid",
    "WireStruct",
    "check_bool",
    "check_choice",
    "check_int",
    "check_json_value",
    "check_metadata",
    "check_rid",
    "check_seconds",
    "check_str",
    "check_str_list",
    "check_version",
    "fail",
    "has_surrogate",
    "keep",
    "name_types",
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


def fail(what: str, code: str = "bad_message") -> LobbyProtocolError:
    return LobbyProtocolError(what, code=code)


def has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


# --- field validators (raise LobbyProtocolError; used by __post_init__ and parse) ---


def check_str(name: str, value: object, *, max_len: int, min_len: int = 1) -> str:
    # Fast path first: every message runs these on decode and on serialize.
    if type(value) is str and min_len <= len(value) <= max_len and value.isascii():
        return value
    if not isinstance(value, str):
        raise fail(f"{name}: expected a string, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise fail(f"{name}: length must be in {min_len}..{max_len}, got {len(value)}")
    if has_surrogate(value):
        raise fail(f"{name}: contains a lone surrogate (not valid Unicode)")
    return value


def check_int(name: str, value: object, *, lo: int, hi: int) -> int:
    # bool is an int subclass in Python but not a number on the wire; 4.0 is a float.
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{name}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise fail(f"{name}: must be in {lo}..{hi}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise fail(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def check_seconds(name: str, value: object, *, hi: float = 86_400.0) -> float:
    """A finite, non-negative duration in seconds (an int is fine, a bool is not)."""
    if type(value) is float and 0.0 <= value <= hi:  # NaN fails the comparison
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{name}: expected a number, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= hi):
        raise fail(f"{name}: must be in 0..{hi}, got {value!r}")
    return float(value)


def check_rid(value: object) -> Rid | None:
    if value is None:
        return None
    if isinstance(value, str):
        return check_str("rid", value, max_len=MAX_ID_LEN, min_len=0)
    return check_int("rid", value, lo=-MAX_RID_INT, hi=MAX_RID_INT)


def check_choice(name: str, value: object, choices: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(f"{name}: must be one of {sorted(choices)}, got {value!r}")
    return value


def check_json_value(name: str, value: object, *, max_depth: int) -> None:
    """Raise unless ``value`` is plain JSON (str keys, finite floats, no lone
    surrogates) nested <= max_depth.

    Level by level, so a hostile structure cannot exhaust the Python stack; exact
    types are tested first because every message runs this on decode and encode.
    """
    if type(value) is dict and max_depth >= 2 and _flat_ascii(value):
        return  # the common shape: an SDP, a candidate, {"game": "pong"}
    level: list[object] = [value]
    depth = 1
    while level:
        if depth > max_depth:
            raise fail(f"{name}: nested deeper than {max_depth}")
        below: list[object] = []
        for item in level:
            kind = type(item)
            if kind is str:
                if not item.isascii() and has_surrogate(item):  # type: ignore[attr-defined,arg-type]
                    raise fail(f"{name}: contains a lone surrogate (not valid Unicode)")
            elif kind is dict:
                _check_keys(name, item)  # type: ignore[arg-type]
                below.extend(item.values())  # type: ignore[attr-defined]
            elif kind is list:
                below.extend(item)  # type: ignore[arg-type]
            elif not (item is None or kind is int or kind is bool):
                _check_other(name, item, below)
        level = below
        depth += 1


def _flat_ascii(obj: dict[object, object]) -> bool:
    """An object of ASCII keys and ASCII-string/int/bool/null values (valid JSON)."""
    for key, item in obj.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(item)
        if kind is str:
            if not item.isascii():  # type: ignore[attr-defined]
                return False
        elif not (kind is int or kind is bool or item is None):
            return False
    return True


def _check_keys(name: str, obj: dict[object, object]) -> None:
    for key in obj:
        # The cheap test first; the exact one only for non-ASCII text or a subclass.
        plain = type(key) is str and key.isascii()
        if not plain and (not isinstance(key, str) or has_surrogate(key)):
            raise fail(f"{name}: object keys must be valid Unicode strings")


def _check_other(name: str, item: object, below: list[object]) -> None:
    """The rare cases of :func:`check_json_value`: floats and subclasses."""
    if isinstance(item, str):
        if has_surrogate(item):
            raise fail(f"{name}: contains a lone surrogate (not valid Unicode)")
    elif isinstance(item, bool | int):
        return
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise fail(f"{name}: NaN and infinities are not JSON")
    elif isinstance(item, dict):
        _check_keys(name, item)
        below.extend(item.values())
    elif isinstance(item, list):
        below.extend(item)
    else:
        raise fail(f"{name}: {type(item).__name__} is not a JSON value")


def check_metadata(value: object) -> JsonObj:
    if not isinstance(value, dict):
        raise fail(f"metadata: expected an object, got {type(value).__name__}")
    check_json_value("metadata", value, max_depth=MAX_METADATA_DEPTH)
    return value


def check_str_list(name: str, value: object, *, max_len: int) -> tuple[str, ...]:
    if type(value) is tuple and len(value) <= MAX_LIST_LEN:  # fast path: short ASCII ids
        for item in value:
            if type(item) is not str or not 0 < len(item) <= max_len or not item.isascii():
                break
        else:
            return value
    if not isinstance(value, list | tuple):
        raise fail(f"{name}: expected a list, got {type(value).__name__}")
    if len(value) > MAX_LIST_LEN:
        raise fail(f"{name}: more than {MAX_LIST_LEN} items")
    return tuple(check_str(f"{name}[]", v, max_len=max_len) for v in value)


def check_version(value: object) -> None:
    # Only the JSON integer 1: true and 1.0 compare equal to 1 in Python, not on the wire.
    if type(value) is not int or value != PROTOCOL_VERSION:
        raise fail(f"unsupported protocol version {value!r:.40}", code="unsupported_version")


# --- message base classes -----------------------------------------------------------


def keep(value: Any) -> Any:
    """A field default that is written on the wire even when unchanged.

    msgspec's ``omit_defaults`` leaves out a value equal to its plain default; one
    made by a factory it cannot compare, so it is always written. Mutable defaults
    (a ``{}``) get a fresh copy per message.
    """
    if isinstance(value, dict):
        return msgspec.field(default_factory=lambda: dict(value))
    return msgspec.field(default_factory=lambda: value)


class WireStruct(msgspec.Struct, frozen=True, omit_defaults=True):
    """A frozen wire struct; subclasses validate in ``__post_init__``, which msgspec
    runs on construction and on decoding alike."""

    def to_wire(self) -> JsonObj:
        """The JSON object this encodes to (the fields :func:`serialize` writes)."""
        obj: JsonObj = msgspec.to_builtins(self)
        return obj


class LobbyMessage(WireStruct, frozen=True, tag_field="type"):
    """One lobby message; the class's ``tag`` is its wire ``type`` (``TYPE``)."""

    TYPE: ClassVar[str]
    ORIGIN: ClassVar[Origin]

    def __post_init__(self) -> None:
        """Validate every field (overridden per message)."""


class Event(LobbyMessage, frozen=True):
    """Server -> client, unrequested (no ``rid``)."""

    ORIGIN: ClassVar[Origin] = "server"


class PeerNotice(Event, frozen=True):
    """Server -> room members: something happened to ``peer_id`` in ``room``."""

    room: str
    peer_id: str

    def __post_init__(self) -> None:
        check_str("room", self.room, max_len=MAX_ROOM_CODE_LEN)
        check_str("peer_id", self.peer_id, max_len=MAX_ID_LEN)


class Reply(Event, frozen=True, kw_only=True):
    """Server -> client, echoing the request's ``rid`` (written right after ``type``)."""

    rid: Rid | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)


class Request(LobbyMessage, frozen=True, kw_only=True):
    """Client -> server: ``rid`` (echoed by the answer) and the protocol version."""

    ORIGIN: ClassVar[Origin] = "client"
    rid: Rid | None = None
    v: int = keep(PROTOCOL_VERSION)

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_version(self.v)


def name_types(*classes: type[LobbyMessage]) -> None:
    """Set each message class's ``TYPE`` from its msgspec tag (one spelling only)."""
    for cls in classes:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str), cls
        cls.TYPE = tag
