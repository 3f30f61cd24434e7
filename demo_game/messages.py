"""What the demo puts on the wire, and strict decoding of what comes back.

Snapshots are entity maps for ``session.send_snapshot`` (which delta-compresses
them per field), so positions are quantized to 0.1 px integers: unchanged
fields then compare equal and cost nothing in a delta. Inputs travel on the
unreliable state channel carrying the last few inputs each, so a lost packet is
covered by the next one without any retransmission.

Everything decoded here came from another process: it is validated field by
field and any surprise raises :class:`netcode.DecodeError`, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netcode import DecodeError

from .sim import ARENA_H, ARENA_W, Input, Player, World

__all__ = [
    "INPUT_REDUNDANCY",
    "InputPacket",
    "PlayerView",
    "SnapshotView",
    "decode_inputs",
    "decode_snapshot",
    "encode_inputs",
    "encode_snapshot",
    "player_from_view",
]

# Each input packet repeats this many of the newest inputs (covers bursts of loss).
INPUT_REDUNDANCY = 8
_Q = 10.0  # position quantum: 0.1 px
_MAX_ID_LEN = 64
_MAX_ENTITIES = 256
_MAX_SCORE = 1_000_000
_MAX_SPEED_Q = 10_000


@dataclass(frozen=True, slots=True)
class PlayerView:
    """A player as a client sees it in one snapshot; ``ack`` = its last input seq applied."""

    pid: str
    x: float
    y: float
    vx: float
    vy: float
    score: int
    color: int
    ack: int


@dataclass(frozen=True, slots=True)
class SnapshotView:
    """A decoded snapshot: the host's tick, players by id, pickups by id."""

    tick: int
    players: dict[str, PlayerView]
    pickups: dict[int, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class InputPacket:
    """A batch of (seq, input), newest last."""

    inputs: tuple[tuple[int, Input], ...]


def encode_snapshot(world: World, acks: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """World -> entity map; ``acks`` tells each client which of its inputs are applied."""
    ents: dict[str, dict[str, int]] = {"w": {"t": world.tick}}
    for pid, p in world.players.items():
        ents["p:" + pid] = {
            "x": round(p.x * _Q),
            "y": round(p.y * _Q),
            "vx": round(p.vx),
            "vy": round(p.vy),
            "s": p.score,
            "c": p.color,
            "a": acks.get(pid, -1),
        }
    for k in world.pickups:
        ents[f"k:{k.kid}"] = {"x": round(k.x * _Q), "y": round(k.y * _Q)}
    return ents


def _int(d: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    v = d.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise DecodeError(f"snapshot field {key!r} must be an int in {lo}..{hi}, got {v!r}")
    return v


def _pos(d: Mapping[str, Any]) -> tuple[float, float]:
    x = _int(d, "x", 0, round(ARENA_W * _Q))
    y = _int(d, "y", 0, round(ARENA_H * _Q))
    return x / _Q, y / _Q


def _player(pid: str, d: Mapping[str, Any]) -> PlayerView:
    x, y = _pos(d)
    return PlayerView(
        pid=pid,
        x=x,
        y=y,
        vx=float(_int(d, "vx", -_MAX_SPEED_Q, _MAX_SPEED_Q)),
        vy=float(_int(d, "vy", -_MAX_SPEED_Q, _MAX_SPEED_Q)),
        score=_int(d, "s", 0, _MAX_SCORE),
        color=_int(d, "c", 0, 1_000_000),
        ack=_int(d, "a", -1, 2**62),
    )


def decode_snapshot(entities: Mapping[Any, Any]) -> SnapshotView:
    """Entity map from the host -> a validated :class:`SnapshotView`."""
    if not isinstance(entities, Mapping) or len(entities) > _MAX_ENTITIES:
        raise DecodeError("snapshot must be a map of at most 256 entities")
    tick = 0
    players: dict[str, PlayerView] = {}
    pickups: dict[int, tuple[float, float]] = {}
    for key, val in entities.items():
        if not isinstance(key, str) or len(key) > _MAX_ID_LEN or not isinstance(val, Mapping):
            raise DecodeError(f"bad snapshot entity {key!r}")
        if key == "w":
            tick = _int(val, "t", 0, 2**62)
        elif key.startswith("p:"):
            players[key[2:]] = _player(key[2:], val)
        elif key.startswith("k:") and key[2:].isdigit():
            pickups[int(key[2:])] = _pos(val)
        else:
            raise DecodeError(f"unknown snapshot entity {key!r}")
    return SnapshotView(tick, players, pickups)


def player_from_view(v: PlayerView) -> Player:
    """The simulation's player built from a snapshot (the base a predictor replays from)."""
    return Player(v.pid, v.x, v.y, v.vx, v.vy, v.score, v.color)


def encode_inputs(pending: Iterable[tuple[int, Input]]) -> dict[str, Any]:
    """The newest :data:`INPUT_REDUNDANCY` unconfirmed inputs as one state message.

    ``"i"`` is ``[[seq, [dx, dy]], ...]``, the ``[seq, input]`` batch shape that
    netcode's ``InputReceiver`` de-duplicates on the host.
    """
    items = list(pending)[-INPUT_REDUNDANCY:]
    return {"k": "in", "i": [[seq, [inp.dx, inp.dy]] for seq, inp in items]}


def _axis_ok(v: object) -> bool:
    return type(v) is int and v in (-1, 0, 1)


def decode_inputs(data: Any) -> InputPacket:
    """State message from a client -> :class:`InputPacket`; anything odd raises DecodeError."""
    if not isinstance(data, Mapping) or data.get("k") != "in":
        raise DecodeError("not an input packet")
    raw = data.get("i")
    if not isinstance(raw, list) or len(raw) > 4 * INPUT_REDUNDANCY:
        raise DecodeError("input list missing or too long")
    out = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise DecodeError(f"bad input entry {item!r:.60}")
        seq, axes = item
        if type(seq) is not int or not 0 <= seq < 2**62:
            raise DecodeError(f"bad input seq {seq!r:.30}")
        if not isinstance(axes, list | tuple) or len(axes) != 2:
            raise DecodeError(f"bad input axes {axes!r:.30}")
        dx, dy = axes
        if (
            type(dx) is not int
            or type(dy) is not int
            or dx not in (-1, 0, 1)
            or dy not in (-1, 0, 1)
        ):
            raise DecodeError(f"bad input axes {dx!r:.10}, {dy!r:.10}")
        out.append((seq, Input(dx, dy)))
    return InputPacket(tuple(out))
