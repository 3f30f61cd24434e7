"""The arena simulation: pure, deterministic, no pygame and no networking.

The host runs :func:`step` at a fixed tick; clients run :func:`move_player`
(the same movement code) to predict their own circle, so prediction and the
authoritative simulation never disagree on physics, only on timing. Everything
is an immutable value, so a predictor can keep old states around and replay
from them without defensive copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = [
    "ARENA_H",
    "ARENA_W",
    "DT",
    "MAX_SPEED",
    "PICKUP_COUNT",
    "PICKUP_RADIUS",
    "PLAYER_RADIUS",
    "TICK_RATE",
    "Input",
    "Pickup",
    "Player",
    "World",
    "add_player",
    "clamp_to_arena",
    "move_player",
    "new_world",
    "remove_player",
    "step",
]

TICK_RATE = 60
DT = 1.0 / TICK_RATE
ARENA_W = 960.0
ARENA_H = 600.0
PLAYER_RADIUS = 18.0
PICKUP_RADIUS = 9.0
PICKUP_COUNT = 6
MAX_SPEED = 280.0
# How fast velocity approaches the steered target (1/s): snappy but not instant,
# so remote players visibly accelerate and interpolation has curves to follow.
RESPONSE = 9.0
_LCG_A = 1_664_525
_LCG_C = 1_013_904_223
_MASK32 = 0xFFFF_FFFF
_COLORS = 8


@dataclass(frozen=True, slots=True)
class Input:
    """One tick of steering: each axis is -1, 0 or +1 (quantized so it is tiny on the wire)."""

    dx: int = 0
    dy: int = 0

    def __post_init__(self) -> None:
        if self.dx not in (-1, 0, 1) or self.dy not in (-1, 0, 1):
            raise ValueError(f"input axes must be -1, 0 or 1, got ({self.dx}, {self.dy})")


@dataclass(frozen=True, slots=True)
class Player:
    """A circle steered by one peer."""

    pid: str
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    score: int = 0
    color: int = 0


@dataclass(frozen=True, slots=True)
class Pickup:
    """A coin; touching it scores a point and it reappears elsewhere."""

    kid: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class World:
    """The whole authoritative state at one tick."""

    tick: int
    players: Mapping[str, Player]
    pickups: tuple[Pickup, ...]
    rng: int
    next_color: int = 0


def _lcg(state: int) -> int:
    return (_LCG_A * state + _LCG_C) & _MASK32


def _random_point(rng: int, margin: float) -> tuple[int, float, float]:
    """Two LCG draws -> a point inside the arena; returns the new rng state too."""
    r1 = _lcg(rng)
    r2 = _lcg(r1)
    x = margin + (r1 / _MASK32) * (ARENA_W - 2 * margin)
    y = margin + (r2 / _MASK32) * (ARENA_H - 2 * margin)
    return r2, x, y


def new_world(seed: int = 1) -> World:
    """An empty arena with :data:`PICKUP_COUNT` pickups at seeded positions."""
    rng = seed & _MASK32
    pickups = []
    for kid in range(PICKUP_COUNT):
        rng, x, y = _random_point(rng, 40.0)
        pickups.append(Pickup(kid, x, y))
    return World(tick=0, players={}, pickups=tuple(pickups), rng=rng)


def add_player(world: World, pid: str) -> World:
    """Spawn ``pid`` at a seeded spot with the next colour; no-op if already present."""
    if pid in world.players:
        return world
    rng, x, y = _random_point(world.rng, 60.0)
    player = Player(pid, x, y, color=world.next_color % _COLORS)
    players = {**world.players, pid: player}
    return replace(world, players=players, rng=rng, next_color=world.next_color + 1)


def remove_player(world: World, pid: str) -> World:
    """Drop a player who left; unknown ids are ignored (a leave can race a join)."""
    if pid not in world.players:
        return world
    players = {k: v for k, v in world.players.items() if k != pid}
    return replace(world, players=players)


def clamp_to_arena(p: Player) -> Player:
    """Keep the whole circle inside the walls; hitting a wall kills that velocity axis."""
    r = PLAYER_RADIUS
    x = min(max(p.x, r), ARENA_W - r)
    y = min(max(p.y, r), ARENA_H - r)
    vx = p.vx if x == p.x else 0.0
    vy = p.vy if y == p.y else 0.0
    if (x, y, vx, vy) == (p.x, p.y, p.vx, p.vy):
        return p
    return replace(p, x=x, y=y, vx=vx, vy=vy)


def move_player(p: Player, inp: Input, dt: float = DT) -> Player:
    """One tick of movement for one player: the code prediction replays."""
    tx, ty = float(inp.dx), float(inp.dy)
    norm = math.hypot(tx, ty)
    if norm > 0:
        tx, ty = tx / norm * MAX_SPEED, ty / norm * MAX_SPEED
    k = min(1.0, RESPONSE * dt)
    vx = p.vx + (tx - p.vx) * k
    vy = p.vy + (ty - p.vy) * k
    return clamp_to_arena(replace(p, x=p.x + vx * dt, y=p.y + vy * dt, vx=vx, vy=vy))


def _separate(a: Player, b: Player) -> tuple[Player, Player]:
    """Push two overlapping circles apart equally along the line between them."""
    dx, dy = b.x - a.x, b.y - a.y
    dist = math.hypot(dx, dy)
    overlap = 2 * PLAYER_RADIUS - dist
    if overlap <= 0:
        return a, b
    if dist < 1e-9:  # exactly on top of each other: pick a fixed axis, stay deterministic
        nx, ny = 1.0, 0.0
    else:
        nx, ny = dx / dist, dy / dist
    h = overlap / 2
    a2 = clamp_to_arena(replace(a, x=a.x - nx * h, y=a.y - ny * h))
    b2 = clamp_to_arena(replace(b, x=b.x + nx * h, y=b.y + ny * h))
    return a2, b2


def _collide(players: dict[str, Player]) -> None:
    ids = sorted(players)
    for i, ia in enumerate(ids):
        for ib in ids[i + 1 :]:
            players[ia], players[ib] = _separate(players[ia], players[ib])


def _collect(
    players: dict[str, Player], pickups: tuple[Pickup, ...], rng: int
) -> tuple[tuple[Pickup, ...], int]:
    """Score touched pickups (lowest id player wins a tie) and respawn them."""
    reach = PLAYER_RADIUS + PICKUP_RADIUS
    out = []
    for k in pickups:
        for pid in sorted(players):
            p = players[pid]
            if math.hypot(p.x - k.x, p.y - k.y) <= reach:
                players[pid] = replace(p, score=p.score + 1)
                rng, x, y = _random_point(rng, 40.0)
                k = Pickup(k.kid, x, y)
                break
        out.append(k)
    return tuple(out), rng


def step(world: World, inputs: Mapping[str, Input], dt: float = DT) -> World:
    """Advance one tick. Players without an input this tick coast with a neutral input."""
    neutral = Input()
    players = {
        pid: move_player(p, inputs.get(pid, neutral), dt) for pid, p in world.players.items()
    }
    _collide(players)
    pickups, rng = _collect(players, world.pickups, world.rng)
    return replace(world, tick=world.tick + 1, players=players, pickups=pickups, rng=rng)
