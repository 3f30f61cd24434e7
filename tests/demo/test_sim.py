"""The arena simulation: bounds, determinism, pickups and collisions."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from demo_game.sim import (
    ARENA_H,
    ARENA_W,
    MAX_SPEED,
    PICKUP_RADIUS,
    PLAYER_RADIUS,
    Input,
    Pickup,
    Player,
    World,
    add_player,
    move_player,
    new_world,
    remove_player,
    step,
)

inputs = st.builds(Input, st.sampled_from([-1, 0, 1]), st.sampled_from([-1, 0, 1]))
PIDS = ["a", "b", "c"]
tick_inputs = st.fixed_dictionaries({pid: inputs for pid in PIDS})


def _world(seed: int) -> World:
    w = new_world(seed)
    for pid in PIDS:
        w = add_player(w, pid)
    return w


def _inside(p: Player) -> bool:
    r = PLAYER_RADIUS
    return r <= p.x <= ARENA_W - r and r <= p.y <= ARENA_H - r


@given(st.integers(0, 2**32 - 1), st.lists(tick_inputs, max_size=200))
def test_players_stay_inside_the_arena(seed: int, ticks: list[dict[str, Input]]) -> None:
    w = _world(seed)
    for inp in ticks:
        w = step(w, inp)
        assert all(_inside(p) for p in w.players.values())
        assert all(math.hypot(p.vx, p.vy) <= MAX_SPEED + 1e-6 for p in w.players.values())


@given(st.integers(0, 2**32 - 1), st.lists(tick_inputs, max_size=100))
def test_simulation_is_deterministic(seed: int, ticks: list[dict[str, Input]]) -> None:
    a, b = _world(seed), _world(seed)
    for inp in ticks:
        a, b = step(a, inp), step(b, dict(reversed(list(inp.items()))))
    assert a == b
    assert a.tick == len(ticks)


@given(st.integers(0, 2**32 - 1), st.lists(tick_inputs, min_size=1, max_size=100))
def test_players_never_overlap_much_after_a_step(seed: int, ticks: list[dict[str, Input]]) -> None:
    w = _world(seed)
    for inp in ticks:
        w = step(w, inp)
    ps = list(w.players.values())
    for i, a in enumerate(ps):
        for b in ps[i + 1 :]:
            # separation is pairwise and walls can push back, so allow a little residue
            assert math.hypot(a.x - b.x, a.y - b.y) >= 2 * PLAYER_RADIUS - 12.0


def test_holding_right_moves_right_until_the_wall() -> None:
    p = Player("a", 100.0, 100.0)
    xs = []
    for _ in range(600):
        p = move_player(p, Input(1, 0))
        xs.append(p.x)
    assert xs == sorted(xs)
    assert xs[-1] == ARENA_W - PLAYER_RADIUS
    assert p.vx == 0.0 and p.y == 100.0


def test_touching_a_pickup_scores_and_respawns_it() -> None:
    w = new_world(7)
    w = add_player(w, "a")
    k = w.pickups[0]
    me = Player("a", k.x + PLAYER_RADIUS + PICKUP_RADIUS - 1.0, k.y)
    w = World(w.tick, {"a": me}, (Pickup(0, k.x, k.y),), w.rng)
    w2 = step(w, {})
    assert w2.players["a"].score == 1
    assert (w2.pickups[0].x, w2.pickups[0].y) != (k.x, k.y)
    assert w2.pickups[0].kid == 0


def test_overlapping_players_are_pushed_apart() -> None:
    w = World(0, {"a": Player("a", 300.0, 300.0), "b": Player("b", 300.0, 300.0)}, (), 1)
    w2 = step(w, {})
    a, b = w2.players["a"], w2.players["b"]
    assert math.hypot(a.x - b.x, a.y - b.y) >= 2 * PLAYER_RADIUS - 1e-9


def test_add_and_remove_player_are_idempotent() -> None:
    w = add_player(new_world(1), "a")
    assert add_player(w, "a") is w
    w = remove_player(w, "a")
    assert "a" not in w.players
    assert remove_player(w, "a") is w


def test_input_rejects_out_of_range_axes() -> None:
    import pytest

    with pytest.raises(ValueError):
        Input(2, 0)
