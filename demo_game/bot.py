"""A bot's steering: pure, so the same bot can drive a client or the host's own player.

A bot sees what a human would see (its own predicted circle and the pickups as
rendered), and answers with the same quantized :class:`~demo_game.sim.Input` a
keyboard produces, so bots exercise exactly the human input path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .sim import ARENA_H, ARENA_W, Input

__all__ = ["bot_input"]

# Dead zone (px) so a bot does not jitter left/right on top of its target.
_DEAD_ZONE = 6.0
# Every this many ticks a bot wanders for a while, so it does not beeline forever
# and the remote players draw curves that show what interpolation does.
_WANDER_PERIOD = 240
_WANDER_TICKS = 50
_HOME_PULL = 0.8


def _axis(delta: float) -> int:
    if delta > _DEAD_ZONE:
        return 1
    if delta < -_DEAD_ZONE:
        return -1
    return 0


def _cost(k: tuple[float, float], me: tuple[float, float], seed: int) -> float:
    """Distance, plus distance from a seeded home quadrant: bots spread over the arena
    instead of all mobbing the same coin."""
    hx = ARENA_W * (0.25 if seed % 2 else 0.75)
    hy = ARENA_H * (0.25 if (seed // 2) % 2 else 0.75)
    return math.hypot(k[0] - me[0], k[1] - me[1]) + _HOME_PULL * math.hypot(k[0] - hx, k[1] - hy)


def bot_input(
    me: tuple[float, float], pickups: Sequence[tuple[float, float]], tick: int, seed: int
) -> Input:
    """Steer towards a pickup near us and our home quadrant, with a seeded periodic wander."""
    phase = (tick + seed * 97) % _WANDER_PERIOD
    if phase < _WANDER_TICKS or not pickups:
        angle = (seed * 2.399 + tick / 40.0) % (2 * math.pi)
        tx = ARENA_W / 2 + math.cos(angle) * ARENA_W * 0.35
        ty = ARENA_H / 2 + math.sin(angle) * ARENA_H * 0.35
    else:
        tx, ty = min(pickups, key=lambda k: _cost(k, me, seed))
    return Input(_axis(tx - me[0]), _axis(ty - me[1]))
