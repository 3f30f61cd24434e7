"""The hello: what two peers must agree on, exchanged in the offer and the answer.

PURE: no asyncio, aiortc or websockets. docs/PROTOCOL.md 2.1.1 is the spec.

Negotiated data channels only open when both sides created the same ids, so a
peer whose channel list differs never connects, and the only symptom used to be
a connect timeout. An in-band hello cannot help (the channel it would travel on
may be the one that differs); so each side puts a hello into the signaling data
of its ``offer`` / ``answer`` (key ``"hello"``), and the side that receives one
compares it with its own before it answers (or, the offerer, before it applies
the answer). On a difference it tells the other side with a ``bye`` signal
whose data is ``{"reason": "mismatch", "detail": ..., "hello": <its hello>}``,
and both report ``PeerLost(reason="mismatch")``.

A hello holds the data-channel protocol version, the channel list, a short hash
of the snapshot quantization map and the decoder limits. The codec follows the
``parse`` / ``serialize`` / ``check`` shape of :mod:`netcode.protocol.wire`:
``parse`` accepts any JSON value from the network and raises only
:class:`DecodeError`, after work bounded by :data:`MAX_HELLO_CHANNELS` and
:data:`MAX_LIMIT_ENTRIES`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..config import ChannelConfig, SessionConfig
from ..errors import DecodeError
from .wire import VERSION

__all__ = [
    "HELLO_KEY",
    "LIMIT_NAMES",
    "MAX_DETAIL_CHARS",
    "MAX_DIFFERENCES",
    "MAX_HELLO_CHANNELS",
    "MAX_LABEL_CHARS",
    "MAX_LIMIT_ENTRIES",
    "MISMATCH",
    "Hello",
    "HelloCheck",
    "check_remote",
    "describe",
    "differences",
    "hello_of",
    "mismatch_data",
    "mismatch_detail",
    "parse",
    "quantize_hash",
    "serialize",
]

HELLO_KEY: Final = "hello"
MISMATCH: Final = "mismatch"
# Channel ids are unique in 0..1023, so no honest hello lists more channels.
MAX_HELLO_CHANNELS: Final = 1024
MAX_LABEL_CHARS: Final = 1024
# Entries looked at in a hello's "limits" object (unknown names are skipped, but
# more entries than this make the hello invalid: iterating them is the work).
MAX_LIMIT_ENTRIES: Final = 64
# A PeerLost detail names at most this many differences, then "... and N more".
MAX_DIFFERENCES: Final = 8
MAX_DETAIL_CHARS: Final = 1024
_MAX_INT: Final = 2**53 - 1  # what any JSON peer (JavaScript) holds exactly

# The Limits every receiver enforces (docs/PROTOCOL.md 2.5). max_state_bytes is
# left out: it is a sender-side SHOULD, never checked on receipt.
LIMIT_NAMES: Final = (
    "max_packet_bytes",
    "max_event_bytes",
    "max_depth",
    "max_container_len",
    "max_str_len",
    "max_containers",
    "max_snapshot_entities",
    "max_entity_fields",
    "max_snapshot_fields",
    "max_snapshot_bytes",
)
_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Hello:
    """One peer's hello. ``quantize`` / ``limits`` None: the peer did not say
    (not compared); ``quantize`` "": no quantization. ``limits`` holds the names
    of :data:`LIMIT_NAMES` the peer gave, in that order."""

    version: int
    channels: tuple[ChannelConfig, ...]
    quantize: str | None = ""
    limits: tuple[tuple[str, int], ...] | None = None


HelloStatus = Literal["match", "absent", "mismatch", "invalid"]


@dataclass(frozen=True, slots=True)
class HelloCheck:
    """The verdict on a remote hello: ``match``, ``absent`` (an older or
    independent client: accepted), ``mismatch`` or ``invalid`` (both refused;
    ``detail`` says why)."""

    status: HelloStatus
    detail: str = ""

    @property
    def refused(self) -> bool:
        return self.status in ("mismatch", "invalid")


# --------------------------------------------------------------------------- building


def quantize_hash(quantize: Mapping[str, float] | None) -> str:
    """FNV-1a 32 (8 hex digits) over the map in a canonical form, "" for none.

    Canonical: fields sorted by their UTF-8 bytes, each as UTF-8 name, a 0 byte and
    the step as a big-endian float64, so JavaScript computes the same value. Not a
    security hash: it only has to tell two honest configurations apart.
    """
    if not quantize:
        return ""
    items = sorted(
        (name.encode("utf-8", "surrogatepass"), float(step)) for name, step in quantize.items()
    )
    h = 0x811C9DC5
    for name, step in items:
        for byte in name + b"\x00" + struct.pack(">d", step):
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def hello_of(config: SessionConfig) -> Hello:
    """This side's hello, from its configuration."""
    limits = config.limits
    return Hello(
        version=VERSION,
        channels=tuple(sorted(config.channels, key=lambda c: c.id)),
        quantize=quantize_hash(config.snapshot_quantize),
        limits=tuple((name, int(getattr(limits, name))) for name in LIMIT_NAMES),
    )


def serialize(hello: Hello) -> dict[str, Any]:
    """The JSON object that goes into the offer/answer data under ``"hello"``."""
    out: dict[str, Any] = {
        "v": hello.version,
        "channels": [
            {
                "id": c.id,
                "label": c.label,
                "ordered": c.ordered,
                "max_retransmits": c.max_retransmits,
                "max_packet_lifetime_ms": c.max_packet_lifetime_ms,
            }
            for c in hello.channels
        ],
    }
    if hello.quantize is not None:
        out["quantize"] = hello.quantize or None
    if hello.limits is not None:
        out["limits"] = dict(hello.limits)
    return out


# --------------------------------------------------------------------------- parsing


def _int(value: object, what: str, lo: int, hi: int) -> int:
    # bool is an int in Python, never in JSON; 4.0 is a float: both refused.
    if type(value) is not int or not lo <= value <= hi:
        raise DecodeError(f"{what} must be an integer in {lo}..{hi}, got {_short(value)}")
    return value


def _optional_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what, 0, 65535)


def _short(value: object) -> str:
    """A bounded, printable rendering of untrusted input for an error message."""
    if isinstance(value, dict | list):
        return f"a {type(value).__name__} of {len(value)}"
    text = (
        json.dumps(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    )
    return text if len(text) <= 40 else text[:37] + "..."


def _channel(value: object, index: int) -> ChannelConfig:
    if not isinstance(value, dict):
        raise DecodeError(f"channels[{index}] must be an object, got {_short(value)}")
    cid = _int(value.get("id"), f"channels[{index}].id", 0, 1023)
    label = value.get("label")
    if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL_CHARS:
        raise DecodeError(f"channels[{index}].label must be a str of 1..{MAX_LABEL_CHARS} chars")
    ordered = value.get("ordered")
    if type(ordered) is not bool:
        raise DecodeError(f"channels[{index}].ordered must be a bool, got {_short(ordered)}")
    retransmits = _optional_int(value.get("max_retransmits"), f"channels[{index}].max_retransmits")
    lifetime = _optional_int(
        value.get("max_packet_lifetime_ms"), f"channels[{index}].max_packet_lifetime_ms"
    )
    if retransmits is not None and lifetime is not None:
        raise DecodeError(f"channels[{index}]: max_retransmits and max_packet_lifetime_ms both set")
    return ChannelConfig(
        label=label,
        id=cid,
        ordered=ordered,
        max_retransmits=retransmits,
        max_packet_lifetime_ms=lifetime,
    )


def _channels(value: object) -> tuple[ChannelConfig, ...]:
    if not isinstance(value, list):
        raise DecodeError(f"channels must be a list, got {_short(value)}")
    if len(value) > MAX_HELLO_CHANNELS:
        raise DecodeError(f"{len(value)} channels, at most {MAX_HELLO_CHANNELS}")
    channels = tuple(_channel(v, i) for i, v in enumerate(value))
    if len({c.id for c in channels}) != len(channels):
        raise DecodeError("channel ids must be unique")
    return tuple(sorted(channels, key=lambda c: c.id))


def _quantize(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) != 8 or not set(value) <= _HEX:
        raise DecodeError(f"quantize must be null or 8 lowercase hex digits, got {_short(value)}")
    return value


def _limits(value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise DecodeError(f"limits must be an object, got {_short(value)}")
    if len(value) > MAX_LIMIT_ENTRIES:
        raise DecodeError(f"limits has {len(value)} entries, at most {MAX_LIMIT_ENTRIES}")
    return tuple(
        (name, _int(value[name], f"limits.{name}", 1, _MAX_INT))
        for name in LIMIT_NAMES
        if name in value
    )


def parse(value: object) -> Hello:
    """A remote hello from its JSON value; raises only :class:`DecodeError`.

    Unknown keys are ignored (a newer peer may add some); ``quantize`` and
    ``limits`` are optional (absent: not compared), ``v`` and ``channels`` not.
    """
    if not isinstance(value, dict):
        raise DecodeError(f"hello must be an object, got {_short(value)}")
    version = _int(value.get("v"), "v", 0, 65535)
    channels = _channels(value.get("channels"))
    quantize = _quantize(value["quantize"]) if "quantize" in value else None
    limits = _limits(value["limits"]) if "limits" in value else None
    return Hello(version, channels, quantize, limits)


# --------------------------------------------------------------------------- comparing


def _js(value: object) -> str:
    """JSON spelling (true, null, "label"), every unprintable character escaped: a
    peer's label must not put line breaks or terminal escapes into our log."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def _channel_diffs(ours: ChannelConfig | None, theirs: ChannelConfig | None) -> list[str]:
    if theirs is None:
        assert ours is not None
        return [f"channel {ours.id} {_js(ours.label)}: missing on the peer"]
    if ours is None:
        return [f"channel {theirs.id} {_js(theirs.label)}: missing on this side"]
    name = f"channel {ours.id} {_js(ours.label)}"
    out = []
    for attr in ("label", "ordered", "max_retransmits", "max_packet_lifetime_ms"):
        a, b = getattr(ours, attr), getattr(theirs, attr)
        if a != b:
            out.append(f"{name}: {attr} {_js(a)} vs {_js(b)}")
    return out


def differences(ours: Hello, theirs: Hello) -> list[str]:
    """What differs, one line each, ours first ("... ordered true vs false")."""
    out: list[str] = []
    if ours.version != theirs.version:
        out.append(f"protocol version {ours.version} vs {theirs.version}")
    mine = {c.id: c for c in ours.channels}
    other = {c.id: c for c in theirs.channels}
    for cid in sorted(mine.keys() | other.keys()):
        out.extend(_channel_diffs(mine.get(cid), other.get(cid)))
    known = ours.quantize is not None and theirs.quantize is not None
    if known and ours.quantize != theirs.quantize:
        a, b = ours.quantize or "none", theirs.quantize or "none"
        out.append(f"snapshot_quantize: hash {a} vs {b}")
    if ours.limits is not None and theirs.limits is not None:
        other_limits = dict(theirs.limits)
        for name, value in ours.limits:
            if name in other_limits and other_limits[name] != value:
                out.append(f"limits.{name}: {value} vs {other_limits[name]}")
    return out


def describe(diffs: list[str]) -> str:
    """One bounded line for logs and ``PeerLost.detail``."""
    shown = diffs[:MAX_DIFFERENCES]
    text = "; ".join(shown)
    if len(diffs) > len(shown):
        text += f"; and {len(diffs) - len(shown)} more"
    text = f"this side vs the peer: {text}"
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def check_remote(ours: Hello, data: Mapping[str, Any]) -> HelloCheck:
    """Judge the hello in an offer's or answer's signal ``data``."""
    if HELLO_KEY not in data or data[HELLO_KEY] is None:
        return HelloCheck("absent")
    try:
        theirs = parse(data[HELLO_KEY])
    except DecodeError as exc:
        return HelloCheck("invalid", f"invalid hello from the peer: {exc}")
    diffs = differences(ours, theirs)
    return HelloCheck("mismatch", describe(diffs)) if diffs else HelloCheck("match")


# --------------------------------------------------------------------------- the mismatch signal


def mismatch_data(ours: Hello, detail: str) -> dict[str, Any]:
    """The data of the ``bye`` signal that refuses the peer's configuration."""
    return {"reason": MISMATCH, "detail": detail[:MAX_DETAIL_CHARS], HELLO_KEY: serialize(ours)}


def _printable(text: str) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:MAX_DETAIL_CHARS])
    return clean or "no detail"


def mismatch_detail(ours: Hello, data: Mapping[str, Any]) -> str | None:
    """Our own account of a peer's ``bye`` signal: None unless it says ``mismatch``.

    The differences are recomputed from the hello the peer attached (nothing it
    wrote is trusted); without a usable one, its ``detail`` text, made printable
    and cut to :data:`MAX_DETAIL_CHARS`, is quoted instead.
    """
    if data.get("reason") != MISMATCH:
        return None
    try:
        diffs = differences(ours, parse(data.get(HELLO_KEY)))
    except DecodeError:
        diffs = []
    if diffs:
        return describe(diffs)
    said = data.get("detail")
    return "the peer refused our configuration: " + _printable(
        said if isinstance(said, str) else "no detail"
    )
