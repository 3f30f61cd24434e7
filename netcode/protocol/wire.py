"""Data-channel envelope codec: msgpack arrays ``[version, type, *header, payload]``.

PURE: no asyncio, aiortc or websockets; time values are passed in by the caller.
The byte-level specification is ``docs/PROTOCOL.md`` section 2 (draft in
``docs/_channels.md``); this module is its reference implementation.

Why an array and not a map: field names would cost more bytes than the header
itself, and game state must fit one SCTP chunk (``Limits.max_state_bytes``).

Decoding is strict and bounded (the websockets ``frames.py`` discipline): the
packet size is checked before msgpack sees it, msgpack's own length limits are
set from :class:`netcode.config.Limits`, ext types are refused, the number of
arrays/maps is capped while decoding (``max_containers``), the nesting depth and
map key types are checked after decoding, and every header field is
range-checked. Bytes from the network never raise anything but
:class:`netcode.errors.DecodeError` out of :func:`parse`.

Why a container cap: an empty array or map is one byte on the wire but 56-200 B
of Python objects, so a 64 KiB packet of nested empties would build ~4 MB and a
1 MiB chunked event ~70 MB. msgpack's ``max_array_len``/``max_map_len`` only cap
each container, not their number. With the cap, decoding one message builds at
most ``max_containers`` containers plus one object per remaining byte.

Map keys in payloads may be ``str`` or ``int`` (not ``bool``): int keys let a
snapshot key entities by integer id without stringifying them.

Every codec follows ``parse`` / ``serialize`` / ``check``; ``serialize`` calls
``check`` so nothing is sent that a conforming peer would reject.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import msgpack

from ..config import Limits
from ..errors import DecodeError, EncodeError

__all__ = [
    "CHUNK_OVERHEAD",
    "DEFAULT_LIMITS",
    "VERSION",
    "Ack",
    "Bye",
    "Chunk",
    "ChunkAssembler",
    "Event",
    "Forward",
    "Message",
    "MsgType",
    "Packed",
    "Ping",
    "Pong",
    "Relay",
    "Snapshot",
    "State",
    "check",
    "check_payload",
    "encode_reliable",
    "encode_stamped",
    "pack_payload",
    "parse",
    "parse_reassembled",
    "serialize",
    "split_chunks",
    "timestamp_us",
    "us_elapsed",
]

VERSION: Final = 1
DEFAULT_LIMITS: Final = Limits()
# Bytes a CHUNK envelope adds around its data, worst case: fixarray(1) + version(1)
# + type(1) + msg_id uint32(5) + index uint16(3) + count uint16(3) + bin32 header(5).
CHUNK_OVERHEAD: Final = 19
MAX_BYE_REASON: Final = 256
_U16: Final = 0xFFFF
_U32: Final = 0xFFFF_FFFF
_I64_MIN: Final = -(2**63)
_U64_MAX: Final = 2**64 - 1


class MsgType(IntEnum):
    """Envelope type ids (second array element)."""

    STATE = 1
    EVENT = 2
    SNAPSHOT = 3
    PING = 4
    PONG = 5
    BYE = 6
    CHUNK = 7
    ACK = 8
    RELAY = 9
    FORWARD = 10


def timestamp_us(now: float) -> int:
    """A wire timestamp: ``now`` (seconds, any monotonic clock) in microseconds mod 2**32.

    Wraps every ~71.6 minutes; :func:`us_elapsed` subtracts modulo 2**32.
    """
    return int(now * 1_000_000) & _U32


def us_elapsed(later_us: int, earlier_us: int) -> int:
    """Microseconds from ``earlier_us`` to ``later_us`` across the 2**32 wrap."""
    return (later_us - earlier_us) & _U32


def _require_uint(value: object, bits_max: int, name: str) -> None:
    if type(value) is not int or not 0 <= value <= bits_max:
        raise EncodeError(f"{name} must be an int in 0..{bits_max}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Packed:
    """A payload already msgpack-encoded by :func:`pack_payload`.

    Lets a sender encode a state once and wrap it in a different header per peer.
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class State:
    """Unreliable game state, with the reliability header of its channel."""

    seq: int
    ack: int
    ack_bits: int
    sent_us: int
    payload: Any

    def __post_init__(self) -> None:
        _check_header(self.seq, self.ack, self.ack_bits, self.sent_us)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot (payload from SnapshotSender.encode), same header as :class:`State`."""

    seq: int
    ack: int
    ack_bits: int
    sent_us: int
    payload: Any

    def __post_init__(self) -> None:
        _check_header(self.seq, self.ack, self.ack_bits, self.sent_us)


@dataclass(frozen=True, slots=True)
class Ack:
    """The :class:`State` header alone, sent on heartbeat ticks when no state went out.

    Keeps acks (delta-snapshot baselines, loss and RTT stats) flowing back from a
    peer that only receives state. It takes a sequence number like any state packet.
    """

    seq: int
    ack: int
    ack_bits: int
    sent_us: int

    def __post_init__(self) -> None:
        _check_header(self.seq, self.ack, self.ack_bits, self.sent_us)


@dataclass(frozen=True, slots=True)
class Event:
    """A reliable message; its channel is the data channel it travels on."""

    payload: Any


@dataclass(frozen=True, slots=True)
class Ping:
    """Heartbeat request; ``sent_us`` is the sender's clock, echoed back in :class:`Pong`."""

    sent_us: int

    def __post_init__(self) -> None:
        _require_uint(self.sent_us, _U32, "sent_us")


@dataclass(frozen=True, slots=True)
class Pong:
    """Heartbeat reply: ``echo_us`` from the ping, ``sent_us`` the replier's own clock."""

    echo_us: int
    sent_us: int

    def __post_init__(self) -> None:
        _require_uint(self.echo_us, _U32, "echo_us")
        _require_uint(self.sent_us, _U32, "sent_us")


@dataclass(frozen=True, slots=True)
class Bye:
    """Clean goodbye: the peer is leaving on purpose (not lost)."""

    reason: str = ""

    def __post_init__(self) -> None:
        if type(self.reason) is not str or len(self.reason) > MAX_BYE_REASON:
            raise EncodeError(f"reason must be a str of at most {MAX_BYE_REASON} chars")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One part of a reliable message too big for one packet (see :func:`split_chunks`)."""

    msg_id: int
    index: int
    count: int
    data: bytes

    def __post_init__(self) -> None:
        _require_uint(self.msg_id, _U32, "msg_id")
        _require_uint(self.count, _U16, "count")
        if self.count < 1:
            raise EncodeError("count must be >= 1")
        _require_uint(self.index, self.count - 1, "index")
        if type(self.data) is not bytes:
            raise EncodeError("data must be bytes")


MAX_PEER_ID: Final = 64  # chars of a peer id in RELAY/FORWARD (lobby ids are 10)


def _check_peer_field(value: object, name: str, *, empty_ok: bool) -> None:
    if type(value) is not str or len(value) > MAX_PEER_ID or (not value and not empty_ok):
        raise EncodeError(f"{name} must be a peer id str of at most {MAX_PEER_ID} chars")


@dataclass(frozen=True, slots=True)
class Relay:
    """Star topology, client -> host: deliver ``payload`` to peer ``to`` ("": every
    peer, the host included). ``n``: the client's own 16-bit relay counter (newest
    wins for state); ``sent_us``: its clock. On ``state`` it is unreliable state, on
    a reliable channel an event."""

    to: str
    n: int
    sent_us: int
    payload: Any

    def __post_init__(self) -> None:
        _check_peer_field(self.to, "to", empty_ok=True)
        _require_uint(self.n, _U16, "n")
        _require_uint(self.sent_us, _U32, "sent_us")


@dataclass(frozen=True, slots=True)
class Forward:
    """Star topology, host -> client: ``payload`` that peer ``origin`` relayed (the
    host names the origin from the link it arrived on, so it cannot be forged by a
    client). ``n`` and ``sent_us`` are the origin's, copied from its RELAY."""

    origin: str
    n: int
    sent_us: int
    payload: Any

    def __post_init__(self) -> None:
        _check_peer_field(self.origin, "origin", empty_ok=False)
        _require_uint(self.n, _U16, "n")
        _require_uint(self.sent_us, _U32, "sent_us")


Message = State | Snapshot | Ack | Event | Ping | Pong | Bye | Chunk | Relay | Forward


def _check_header(seq: int, ack: int, ack_bits: int, sent_us: int) -> None:
    # One expression for the common valid case (every state packet, both ways);
    # the per-field checks below only run to name the bad field.
    if (
        type(seq) is int
        and type(ack) is int
        and type(ack_bits) is int
        and type(sent_us) is int
        and 0 <= seq <= _U16
        and 0 <= ack <= _U16
        and 0 <= ack_bits <= _U32
        and 0 <= sent_us <= _U32
    ):
        return
    _require_uint(seq, _U16, "seq")
    _require_uint(ack, _U16, "ack")
    _require_uint(ack_bits, _U32, "ack_bits")
    _require_uint(sent_us, _U32, "sent_us")


# --------------------------------------------------------------------------- payloads

_SCALARS: Final = frozenset({type(None), bool, float, bytes})
_CONTAINERS: Final = frozenset({list, tuple, dict})
_PLAIN: Final = frozenset({type(None), bool, float, bytes, int, str})


def _utf8_len_over(s: str, limit: int) -> bool:
    if len(s) > limit:
        return True
    # A char is at most 4 UTF-8 bytes: only encode when the length could be over.
    try:
        return len(s) * 4 > limit and len(s.encode("utf-8")) > limit
    except UnicodeEncodeError as exc:  # lone surrogates
        raise EncodeError(f"str is not valid UTF-8: {exc}") from None


def _check_scalar(value: object, limits: Limits, *, key: bool) -> None:
    """A non-container value (or map key) the sender supplied; exact types first."""
    t = type(value)
    if t is str or (not key and t is not int and isinstance(value, str)):
        if _utf8_len_over(value, limits.max_str_len):  # type: ignore[arg-type]
            raise EncodeError(f"str longer than max_str_len={limits.max_str_len}")
    elif (t is int or isinstance(value, int)) and t is not bool:
        if not _I64_MIN <= value <= _U64_MAX:  # type: ignore[operator]
            raise EncodeError(f"int {value} out of the msgpack 64-bit range")
    elif key:
        raise EncodeError(f"map keys must be str or int, got {t.__name__}")
    elif t not in _SCALARS and not isinstance(value, (float, bytes)):
        raise EncodeError(
            f"cannot send a {t.__name__}: use None/bool/int/float/str/bytes/list/dict"
        )


def _walk(root: object, limits: Limits, *, from_wire: bool) -> None:
    """Depth, length and key-type check, iterative so no input can exhaust the stack.

    ``from_wire``: ``root`` came out of msgpack with our decoder limits, so only
    types msgpack produces occur and lengths are already bounded; only depth and
    map key types remain to check. Both walkers run on every state packet, so
    the common exact types are tested inline rather than through a call each.
    """
    if from_wire:
        _walk_wire(root, limits.max_depth, limits.max_container_len)
    else:
        _walk_user(root, limits)


def _container_checks(value: Any, depth: int, max_depth: int, max_len: int) -> None:
    if depth >= max_depth:
        raise EncodeError(f"payload nested deeper than max_depth={max_depth}")
    if len(value) > max_len:
        raise EncodeError(f"container longer than max_container_len={max_len}")


def _walk_wire(root: object, max_depth: int, max_len: int) -> None:
    """Decoded msgpack: only None/bool/int/float/str/bytes/list/dict occur."""
    if type(root) is not list and type(root) is not dict:
        return
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        _container_checks(value, depth, max_depth, max_len)
        if type(value) is dict:
            for k in value:
                tk = type(k)
                if tk is not str and tk is not int:
                    raise EncodeError(f"map keys must be str or int, got {tk.__name__}")
            children: Any = value.values()
        else:
            children = value
        depth += 1
        for v in children:
            tv = type(v)
            if tv is list or tv is dict:
                stack.append((v, depth))


def _walk_user(root: object, limits: Limits) -> None:
    """A payload the game handed us: any Python object may turn up.

    Also counts the containers, so nothing is sent that a receiver refuses for
    ``max_containers`` (see :func:`_unpack`).
    """
    max_depth, max_len, max_str = limits.max_depth, limits.max_container_len, limits.max_str_len
    containers_left = limits.max_containers
    stack: list[tuple[Any, int]] = []
    _visit(root, 0, stack, limits)
    while stack:
        value, depth = stack.pop()
        _container_checks(value, depth, max_depth, max_len)
        containers_left -= 1
        if containers_left < 0:
            raise EncodeError(f"payload has more than max_containers={limits.max_containers}")
        if isinstance(value, dict):
            for k in value:
                tk = type(k)
                if tk is str:
                    if len(k) * 4 > max_str and _utf8_len_over(k, max_str):
                        raise EncodeError(f"str longer than max_str_len={max_str}")
                else:  # int range, str/int subclasses; anything else raises
                    _check_scalar(k, limits, key=True)
            children: Any = value.values()
        else:
            children = value
        depth += 1
        for v in children:
            tv = type(v)
            if tv is str:
                # Under a quarter of the limit even 4-byte UTF-8 fits: no encode needed.
                if len(v) * 4 > max_str and _utf8_len_over(v, max_str):
                    raise EncodeError(f"str longer than max_str_len={max_str}")
            elif tv is int:
                if not _I64_MIN <= v <= _U64_MAX:
                    raise EncodeError(f"int {v} out of the msgpack 64-bit range")
            elif tv is float or tv is bool or v is None or tv is bytes:
                continue
            else:
                _visit(v, depth, stack, limits)


def _visit(value: object, depth: int, stack: list[tuple[Any, int]], limits: Limits) -> None:
    """Queue a container, or check a scalar (every type but the inline fast cases)."""
    t = type(value)
    if t not in _CONTAINERS and (t in _PLAIN or not isinstance(value, (list, tuple, dict))):
        if t not in _SCALARS:  # None/bool/float/bytes need no check
            _check_scalar(value, limits, key=False)
    else:
        stack.append((value, depth))


def check_payload(payload: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`EncodeError` unless ``payload`` is sendable and within ``limits``.

    Types: None, bool, int (64-bit), float, str, bytes, list/tuple, dict with str or
    int keys (not bool); nesting at most ``max_depth`` containers deep (a scalar is
    depth 0).
    """
    _walk(payload, limits, from_wire=False)


def pack_payload(payload: Any, limits: Limits = DEFAULT_LIMITS) -> Packed:
    """Check and msgpack-encode a payload once, to wrap in several envelopes."""
    if isinstance(payload, Packed):
        return payload
    _walk_user(payload, limits)  # check_payload(), one call less on the hot path
    return _pack_checked(payload)


def _pack_checked(payload: Any) -> Packed:
    try:
        data = msgpack.packb(payload, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:  # pragma: no cover - check() caught it
        raise EncodeError(f"cannot encode payload: {exc}") from exc
    return Packed(data)


# --------------------------------------------------------------------------- envelope


def _header_fields(msg: Message) -> tuple[MsgType, tuple[object, ...], Any]:
    """(type, header fields, payload-or-None) of a message, in wire order."""
    if isinstance(msg, State):
        return MsgType.STATE, (msg.seq, msg.ack, msg.ack_bits, msg.sent_us), msg.payload
    if isinstance(msg, Snapshot):
        return MsgType.SNAPSHOT, (msg.seq, msg.ack, msg.ack_bits, msg.sent_us), msg.payload
    if isinstance(msg, Ack):
        return MsgType.ACK, (msg.seq, msg.ack, msg.ack_bits, msg.sent_us), None
    if isinstance(msg, Event):
        return MsgType.EVENT, (), msg.payload
    if isinstance(msg, Ping):
        return MsgType.PING, (msg.sent_us,), None
    if isinstance(msg, Pong):
        return MsgType.PONG, (msg.echo_us, msg.sent_us), None
    if isinstance(msg, Bye):
        return MsgType.BYE, (msg.reason,), None
    if isinstance(msg, Chunk):
        return MsgType.CHUNK, (msg.msg_id, msg.index, msg.count, msg.data), None
    if isinstance(msg, Relay):
        return MsgType.RELAY, (msg.to, msg.n, msg.sent_us), msg.payload
    if isinstance(msg, Forward):
        return MsgType.FORWARD, (msg.origin, msg.n, msg.sent_us), msg.payload
    raise EncodeError(f"not a wire message: {type(msg).__name__}")


_HAS_PAYLOAD: Final = frozenset(
    {MsgType.STATE, MsgType.SNAPSHOT, MsgType.EVENT, MsgType.RELAY, MsgType.FORWARD}
)


def check(msg: Message, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`EncodeError` unless ``msg`` can be serialized within ``limits``.

    Header fields are validated by each message's constructor; this checks the payload.
    """
    kind, _, payload = _header_fields(msg)
    _check_body(kind, payload, limits)


def _check_body(kind: MsgType, payload: Any, limits: Limits) -> None:
    if kind in _HAS_PAYLOAD and not isinstance(payload, Packed):
        check_payload(payload, limits)


def serialize(msg: Message, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Encode ``msg`` as one envelope. A :class:`Packed` payload is spliced in as is.

    The envelope is built by concatenation (array header, header fields, payload
    bytes): a msgpack array is just its elements back to back, so a pre-packed
    payload needs no second encoding.
    """
    kind, fields, payload = _header_fields(msg)
    _check_body(kind, payload, limits)  # check(msg), without a second _header_fields
    head = msgpack.packb((VERSION, int(kind), *fields), use_bin_type=True)
    if kind not in _HAS_PAYLOAD:
        return bytes(head)
    body = payload if isinstance(payload, Packed) else _pack_checked(payload)
    # head is a fixarray (at most 6 items): bump its length by one for the payload.
    return b"".join((bytes((head[0] + 1,)), head[1:], body.data))


_STAMPED: Final = frozenset({MsgType.STATE, MsgType.SNAPSHOT, MsgType.ACK})


def encode_stamped(
    kind: MsgType, seq: int, ack: int, ack_bits: int, sent_us: int, payload: Packed | None
) -> bytes:
    """The bytes of ``serialize(State/Snapshot/Ack(seq, ack, ack_bits, sent_us[, payload]))``.

    The per-packet send path: the header is range-checked as the message
    constructor would, without building the message object first (tests check
    it equals :func:`serialize` byte for byte). ``payload`` is required for
    STATE/SNAPSHOT and must be None for ACK.
    """
    if kind not in _STAMPED or (payload is None) != (kind is MsgType.ACK):
        raise EncodeError(f"encode_stamped: {kind!r} with payload {type(payload).__name__}")
    _check_header(seq, ack, ack_bits, sent_us)
    head = msgpack.packb((VERSION, int(kind), seq, ack, ack_bits, sent_us))
    if payload is None:
        return bytes(head)
    # head is a fixarray of 6: bump its length by one for the payload (see serialize).
    return b"".join((bytes((head[0] + 1,)), head[1:], payload.data))


def _container_budget(max_containers: int) -> Callable[[Any], Any]:
    """A msgpack list/object hook that raises once more than ``max_containers``
    payload containers (plus the envelope array) were built.

    msgpack calls it as each container completes, so decoding stops there: the
    objects built before are at most the budget plus one container's elements.
    """
    left = max_containers + 1  # the envelope array is not part of the payload

    def hook(obj: Any) -> Any:
        nonlocal left
        left -= 1
        if left < 0:
            raise DecodeError(f"more than max_containers={max_containers} arrays/maps")
        return obj

    return hook


def _unpack(data: bytes, limits: Limits, max_bytes: int) -> object:
    if not isinstance(data, (bytes, bytearray, memoryview)):  # a tuple: no union per call
        raise DecodeError(f"packet must be binary, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise DecodeError(f"packet of {len(data)} bytes exceeds the limit of {max_bytes}")
    hook = None
    if len(data) > limits.max_containers:
        # Every container takes at least one byte (the envelope three), so a packet
        # up to the budget cannot exceed it: the per-packet path pays no hook calls.
        hook = _container_budget(limits.max_containers)
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,  # int keys allowed; key types checked below
            max_str_len=limits.max_str_len,
            max_bin_len=max_bytes,
            max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len,
            max_ext_len=0,
            list_hook=hook,
            object_hook=hook,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"bad msgpack: {exc}") from exc


def _as_uint(value: object, limit: int, name: str) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise DecodeError(f"{name}: expected an int in 0..{limit}, got {value!r}")
    return value


def _fields(obj: list[Any], kind: MsgType, count: int) -> list[Any]:
    if len(obj) != count + 2:
        raise DecodeError(f"{kind.name}: expected {count} fields, got {len(obj) - 2}")
    return obj[2:]


def _parse_stamped(kind: MsgType, obj: list[Any], limits: Limits) -> Message:
    """STATE/SNAPSHOT with the right field count: the same checks as :func:`_build`."""
    payload = obj[6]
    try:
        _walk_wire(payload, limits.max_depth, limits.max_container_len)
    except EncodeError as exc:
        raise DecodeError(f"payload: {exc}") from exc
    cls = State if kind is MsgType.STATE else Snapshot
    try:
        return cls(obj[2], obj[3], obj[4], obj[5], payload)
    except EncodeError as exc:  # a header field out of range
        raise DecodeError(f"{kind.name}: {exc}") from exc


def _build(kind: MsgType, f: list[Any], limits: Limits) -> Message:
    # Header fields of STATE/SNAPSHOT/ACK are range-checked once, by the constructor
    # (its EncodeError becomes a DecodeError in parse()).
    if kind is MsgType.STATE:
        return State(f[0], f[1], f[2], f[3], _checked_payload(f[4], limits))
    if kind is MsgType.SNAPSHOT:
        return Snapshot(f[0], f[1], f[2], f[3], _checked_payload(f[4], limits))
    if kind is MsgType.ACK:
        return Ack(f[0], f[1], f[2], f[3])
    if kind is MsgType.EVENT:
        return Event(_checked_payload(f[0], limits))
    if kind is MsgType.PING:
        return Ping(_as_uint(f[0], _U32, "sent_us"))
    if kind is MsgType.PONG:
        return Pong(_as_uint(f[0], _U32, "echo_us"), _as_uint(f[1], _U32, "sent_us"))
    if kind is MsgType.BYE:
        if type(f[0]) is not str:
            raise DecodeError("BYE: reason must be a str")
        return Bye(f[0])
    if kind is MsgType.RELAY:
        return Relay(f[0], f[1], f[2], _checked_payload(f[3], limits))
    if kind is MsgType.FORWARD:
        return Forward(f[0], f[1], f[2], _checked_payload(f[3], limits))
    if type(f[3]) is not bytes:
        raise DecodeError("CHUNK: data must be bin")
    return Chunk(_as_uint(f[0], _U32, "msg_id"), _as_uint(f[1], _U16, "index"), f[2], f[3])


def _checked_payload(payload: Any, limits: Limits) -> Any:
    try:
        _walk(payload, limits, from_wire=True)
    except EncodeError as exc:
        raise DecodeError(f"payload: {exc}") from exc
    return payload


_FIELD_COUNT: Final = {
    MsgType.STATE: 5,
    MsgType.SNAPSHOT: 5,
    MsgType.EVENT: 1,
    MsgType.PING: 1,
    MsgType.PONG: 2,
    MsgType.BYE: 1,
    MsgType.CHUNK: 4,
    MsgType.ACK: 4,
    MsgType.RELAY: 4,
    MsgType.FORWARD: 4,
}
_KINDS: Final = {int(k): k for k in MsgType}  # a dict hit is cheaper than MsgType(n)


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS, *, max_bytes: int | None = None) -> Message:
    """Decode one envelope; raise :class:`DecodeError` on anything off-spec.

    ``max_bytes`` defaults to ``limits.max_packet_bytes``.
    """
    obj = _unpack(data, limits, limits.max_packet_bytes if max_bytes is None else max_bytes)
    if type(obj) is not list or len(obj) < 2:
        raise DecodeError("envelope must be an array [version, type, ...]")
    if obj[0] != VERSION or type(obj[0]) is not int:
        raise DecodeError(f"unsupported envelope version {obj[0]!r}")
    if type(obj[1]) is not int or obj[1] not in _FIELD_COUNT:
        raise DecodeError(f"unknown message type {obj[1]!r}")
    kind = _KINDS[obj[1]]
    if len(obj) == 7 and (kind is MsgType.STATE or kind is MsgType.SNAPSHOT):
        return _parse_stamped(kind, obj, limits)  # the per-packet case, fewer calls
    fields = _fields(obj, kind, _FIELD_COUNT[kind])
    try:
        return _build(kind, fields, limits)
    except EncodeError as exc:  # a constructor rejected a field
        raise DecodeError(f"{kind.name}: {exc}") from exc


# --------------------------------------------------------------------------- chunking


def split_chunks(data: bytes, msg_id: int, chunk_data_bytes: int) -> list[Chunk]:
    """Cut an encoded envelope into CHUNKs of at most ``chunk_data_bytes`` each."""
    if chunk_data_bytes < 1:
        raise EncodeError("chunk_data_bytes must be >= 1")
    count = max(1, math.ceil(len(data) / chunk_data_bytes))
    if count > _U16:
        raise EncodeError(f"message needs {count} chunks, more than {_U16}")
    view = memoryview(data)
    return [
        Chunk(msg_id, i, count, bytes(view[i * chunk_data_bytes : (i + 1) * chunk_data_bytes]))
        for i in range(count)
    ]


def encode_reliable(
    payload: Any,
    msg_id: int,
    limits: Limits = DEFAULT_LIMITS,
    *,
    packet_bytes: int | None = None,
) -> list[bytes]:
    """Packets for one reliable event: one EVENT, or CHUNKs when it exceeds a packet.

    A packet is ``limits.max_packet_bytes``, or ``packet_bytes`` if smaller (netcode
    sends 1,200-byte pieces it can pace). Raises :class:`EncodeError` if the encoded
    event exceeds ``limits.max_event_bytes``. ``msg_id`` identifies the chunked
    message (a per-channel counter, mod 2**32).
    """
    packet = limits.max_packet_bytes
    if packet_bytes is not None:
        packet = min(packet, packet_bytes)
    data = serialize(Event(payload), limits)
    if len(data) <= packet:
        return [data]
    if len(data) > limits.max_event_bytes:
        raise EncodeError(
            f"event of {len(data)} bytes exceeds max_event_bytes={limits.max_event_bytes}"
        )
    per_chunk = packet - CHUNK_OVERHEAD
    return [serialize(c, limits) for c in split_chunks(data, msg_id & _U32, per_chunk)]


def parse_reassembled(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Event:
    """Decode the bytes a :class:`ChunkAssembler` returned: must be one EVENT."""
    msg = parse(data, limits, max_bytes=limits.max_event_bytes)
    if not isinstance(msg, Event):
        raise DecodeError(f"a chunked message must be an EVENT, got {type(msg).__name__}")
    return msg


class ChunkAssembler:
    """Reassembles CHUNKs of one reliable ordered channel.

    The channel is reliable and ordered, and a sender never interleaves two chunked
    messages on one channel, so chunks must arrive as index 0, 1, ... count-1 of one
    ``msg_id``. Anything else is a protocol violation: the partial message is
    dropped and :class:`DecodeError` raised. Memory is bounded by ``max_event_bytes``.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limit = limits.max_event_bytes
        self._reset()

    def _reset(self) -> None:
        self._msg_id: int | None = None
        self._count = 0
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes held for an incomplete message."""
        return self._size

    def _fail(self, why: str) -> DecodeError:
        self._reset()
        return DecodeError(f"CHUNK: {why}")

    def feed(self, chunk: Chunk) -> bytes | None:
        """Add a chunk; return the whole message once its last chunk arrived."""
        if chunk.index == 0:
            if self._msg_id is not None:
                raise self._fail("new message started before the previous one completed")
            self._msg_id, self._count = chunk.msg_id, chunk.count
        elif chunk.msg_id != self._msg_id or chunk.count != self._count:
            raise self._fail("chunk of an unknown message")
        elif chunk.index != len(self._parts):
            raise self._fail(f"expected index {len(self._parts)}, got {chunk.index}")
        self._size += len(chunk.data)
        if self._size > self._limit:
            raise self._fail(f"message exceeds max_event_bytes={self._limit}")
        self._parts.append(chunk.data)
        if len(self._parts) < self._count:
            return None
        data = b"".join(self._parts)
        self._reset()
        return data
