"""Demo wire messages: round trips and strict rejection of anything odd."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo_game.messages import (
    INPUT_REDUNDANCY,
    decode_inputs,
    decode_snapshot,
    encode_inputs,
    encode_snapshot,
)
from demo_game.sim import Input, add_player, new_world, step
from netcode import DecodeError

inputs = st.builds(Input, st.sampled_from([-1, 0, 1]), st.sampled_from([-1, 0, 1]))


@given(st.lists(inputs, max_size=30))
def test_input_packet_round_trip_keeps_the_newest(history: list[Input]) -> None:
    items = list(enumerate(history))
    pkt = decode_inputs(encode_inputs(items))
    assert list(pkt.inputs) == items[-INPUT_REDUNDANCY:]


@given(st.integers(0, 2**32 - 1), st.integers(0, 120))
def test_snapshot_round_trip_within_quantization(seed: int, ticks: int) -> None:
    w = add_player(add_player(new_world(seed), "a"), "b")
    for _ in range(ticks):
        w = step(w, {"a": Input(1, 1), "b": Input(-1, 0)})
    view = decode_snapshot(encode_snapshot(w, {"a": 5}))
    assert view.tick == w.tick
    assert view.players["a"].ack == 5 and view.players["b"].ack == -1
    for pid, p in w.players.items():
        v = view.players[pid]
        assert abs(v.x - p.x) <= 0.05 + 1e-9 and abs(v.y - p.y) <= 0.05 + 1e-9
        assert v.score == p.score and v.color == p.color
    assert sorted(view.pickups) == [k.kid for k in w.pickups]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_garbage_never_crashes_the_decoders(data: Any) -> None:
    for decode in (decode_inputs, decode_snapshot):
        with contextlib.suppress(DecodeError):
            decode(data)


@pytest.mark.parametrize(
    "bad",
    [
        {"k": "in", "i": [[1, [2, 0]]]},
        {"k": "in", "i": [[-1, [0, 0]]]},
        {"k": "in", "i": [[1, [0]]]},
        {"k": "in", "i": [[1, 0, 0]]},
        {"k": "in", "i": [[1, [True, 0]]]},
        {"k": "in", "i": [[1.5, [0, 0]]]},
        {"k": "in", "i": [[1, [0, 0]]] * 100},
        {"k": "xx", "i": []},
    ],
)
def test_bad_input_packets_are_rejected(bad: Any) -> None:
    with pytest.raises(DecodeError):
        decode_inputs(bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"p:a": {"x": -1, "y": 0, "vx": 0, "vy": 0, "s": 0, "c": 0, "a": 0}},
        {"p:a": {"x": 10, "y": 10}},
        {"zz": {}},
        {"k:x": {"x": 1, "y": 1}},
        {"w": {"t": "soon"}},
        {f"k:{i}": {"x": 1, "y": 1} for i in range(300)},
        [1, 2, 3],
    ],
)
def test_bad_snapshots_are_rejected(bad: Any) -> None:
    with pytest.raises(DecodeError):
        decode_snapshot(bad)
