"""Field validators and limits shared by the lobby message modules (pure).

Every validator raises :class:`netcode.errors.LobbyProtocolError` with a wire
``code`` (``bad_message`` unless stated), so a constructor that accepts a value
is a proof the value can go on the wire.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, TypeAlias

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
    "JsonObj",
    "Origin",
    "Rid",
    "check_bool",
    "check_choice",
    "check_int",
    "check_json_value",
    "check_metadata",
    "check_rid",
    "check_seconds",
    "check_str",
    "check_str_list",
    "envelope",
    "fail",
    "get_field",
    "has_surrogate",
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

    Iterative, so a hostile structure cannot exhaust the Python stack.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise fail(f"{name}: nested deeper than {max_depth}")
        if isinstance(item, str):
            if has_surrogate(item):
                raise fail(f"{name}: contains a lone surrogate (not valid Unicode)")
        elif item is None or isinstance(item, bool | int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise fail(f"{name}: NaN and infinities are not JSON")
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or has_surrogate(key):
                    raise fail(f"{name}: object keys must be valid Unicode strings")
                stack.append((sub, depth + 1))
        elif isinstance(item, list):
            stack.extend((sub, depth + 1) for sub in item)
        else:
            raise fail(f"{name}: {type(item).__name__} is not a JSON value")


def check_metadata(value: object) -> JsonObj:
    if not isinstance(value, dict):
        raise fail(f"metadata: expected an object, got {type(value).__name__}")
    check_json_value("metadata", value, max_depth=MAX_METADATA_DEPTH)
    return value


def check_str_list(name: str, value: object, *, max_len: int) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise fail(f"{name}: expected a list, got {type(value).__name__}")
    if len(value) > MAX_LIST_LEN:
        raise fail(f"{name}: more than {MAX_LIST_LEN} items")
    return tuple(check_str(f"{name}[]", v, max_len=max_len) for v in value)


def get_field(obj: JsonObj, key: str, default: Any = None) -> Any:
    """A wire field, or ``default`` when absent or null (null means "not given")."""
    value = obj.get(key)
    return default if value is None else value


def envelope(msg: Any) -> JsonObj:
    obj: JsonObj = {"type": msg.TYPE}
    rid = getattr(msg, "rid", None)
    if rid is not None:
        obj["rid"] = rid
    return obj
