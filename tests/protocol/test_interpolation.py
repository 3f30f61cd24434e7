"""InterpolationBuffer: lerp between snapshots, bounded extrapolation, documented policies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.errors import ConfigError
from netcode.protocol.interpolation import InterpolationBuffer, recommended_delay
from netcode.protocol.snapshot import Entities


def buf_with(*frames: tuple[float, Entities], **kw: object) -> InterpolationBuffer:
    buf = InterpolationBuffer(delay=0.0, **kw)  # type: ignore[arg-type]
    for t, ents in frames:
        assert buf.push(t, ents)
    return buf


def test_lerps_numbers_and_takes_the_older_value_of_the_rest() -> None:
    buf = buf_with(
        (0.0, {1: {"x": 0.0, "hp": 10, "name": "a", "alive": True}}),
        (1.0, {1: {"x": 10.0, "hp": 20, "name": "b", "alive": False}}),
    )
    got = buf.sample_at(0.25)[1]
    assert got["x"] == pytest.approx(2.5)
    assert got["hp"] == pytest.approx(12.5)
    assert got["name"] == "a"
    assert got["alive"] is True  # bools are not numbers here


def test_sample_uses_now_minus_delay() -> None:
    buf = InterpolationBuffer(delay=0.1)
    buf.push(1.0, {1: {"x": 0.0}})
    buf.push(2.0, {1: {"x": 10.0}})
    assert buf.sample(1.6)[1]["x"] == pytest.approx(5.0)
    assert buf.lag(1.6) == pytest.approx(0.5)
    buf.delay = 0.6
    assert buf.sample(1.6)[1]["x"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        buf.delay = -1


def test_fields_restricts_what_is_interpolated() -> None:
    buf = buf_with((0.0, {1: {"x": 0.0, "hp": 0}}), (1.0, {1: {"x": 4.0, "hp": 100}}), fields={"x"})
    got = buf.sample_at(0.5)[1]
    assert got == {"x": pytest.approx(2.0), "hp": 0}


def test_teleport_snaps_instead_of_sliding() -> None:
    buf = buf_with(
        (0.0, {1: {"x": 0.0, "y": 0.0}}),
        (1.0, {1: {"x": 500.0, "y": 1.0}}),
        teleport={"x": 100.0},
    )
    assert buf.sample_at(0.9)[1] == {"x": 0.0, "y": pytest.approx(0.9)}
    assert buf.sample_at(1.0)[1]["x"] == 500.0


def test_entities_appear_and_disappear_at_snapshot_times() -> None:
    buf = buf_with(
        (0.0, {1: {"x": 0.0}, 2: {"x": 5.0}}),
        (1.0, {1: {"x": 1.0}, 3: {"x": 7.0}}),
    )
    mid = buf.sample_at(0.5)
    assert set(mid) == {1, 2}  # 3 appears at t=1, 2 held until t=1
    assert mid[2] == {"x": 5.0}
    assert set(buf.sample_at(1.0)) == {1, 3}


def test_extrapolates_a_bounded_time_then_holds() -> None:
    buf = buf_with(
        (0.0, {1: {"x": 0.0}, 2: {"x": 3.0}}),
        (0.1, {1: {"x": 1.0}, 2: {"x": 3.0}, 4: {"x": 9.0}}),
        max_extrapolation=0.2,
    )
    assert buf.sample_at(0.15)[1]["x"] == pytest.approx(1.5)
    assert buf.sample_at(0.3)[1]["x"] == pytest.approx(3.0)
    assert buf.sample_at(5.0)[1]["x"] == pytest.approx(3.0)  # held after 0.2 s
    assert buf.sample_at(5.0)[2]["x"] == 3.0
    assert buf.sample_at(5.0)[4]["x"] == 9.0  # no velocity known: held


def test_no_extrapolation_across_a_teleport_or_when_disabled() -> None:
    frames = ((0.0, {1: {"x": 0.0}}), (0.1, {1: {"x": 1000.0}}))
    assert buf_with(*frames, teleport={"x": 50.0}).sample_at(0.2)[1]["x"] == 1000.0
    assert buf_with(*frames, max_extrapolation=0.0).sample_at(0.2)[1]["x"] == 1000.0


def test_before_oldest_draws_the_oldest_and_empty_draws_nothing() -> None:
    assert InterpolationBuffer().sample(10.0) == {}
    assert InterpolationBuffer().lag(1.0) is None
    buf = buf_with((1.0, {1: {"x": 1.0}}), (2.0, {1: {"x": 2.0}}))
    assert buf.sample_at(0.0) == {1: {"x": 1.0}}


def test_out_of_order_duplicate_and_capacity() -> None:
    buf = InterpolationBuffer(delay=0.0, capacity=3)
    assert buf.push(2.0, {1: {"x": 2.0}})
    assert buf.push(1.0, {1: {"x": 1.0}})  # late arrival slots in before
    assert not buf.push(2.0, {1: {"x": 99.0}})  # duplicate time
    assert buf.sample_at(1.5)[1]["x"] == pytest.approx(1.5)
    assert buf.push(3.0, {1: {"x": 3.0}})
    assert buf.push(4.0, {1: {"x": 4.0}})  # drops t=1
    assert len(buf) == 3 and buf.newest_time == 4.0
    assert not buf.push(0.5, {1: {"x": 0.0}})  # older than all held, buffer full
    buf.clear()
    assert len(buf) == 0


def test_push_copies_so_the_game_may_reuse_its_dicts() -> None:
    buf = InterpolationBuffer(delay=0.0)
    ents = {1: {"x": 1.0}}
    buf.push(0.0, ents)
    ents[1]["x"] = 50.0
    assert buf.sample_at(0.0)[1]["x"] == 1.0


def test_recommended_delay_and_config_errors() -> None:
    assert recommended_delay(60) == pytest.approx(2 / 60)
    assert recommended_delay(20, jitter_ms=10) == pytest.approx(0.12)
    assert InterpolationBuffer(snapshot_rate=30).delay == pytest.approx(2 / 30)
    for kw in ({"snapshot_rate": 0}, {"capacity": 1}, {"max_extrapolation": -1}, {"delay": -1}):
        with pytest.raises(ValueError):
            InterpolationBuffer(**kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        InterpolationBuffer().push(float("nan"), {})


# -- properties -------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)
gaps = st.lists(st.floats(0.001, 0.5), min_size=1, max_size=12)


@given(gaps, st.lists(finite, min_size=13, max_size=13), st.lists(st.floats(-1, 8), max_size=30))
def test_monotone_inputs_give_monotone_output_within_bounds(
    dts: list[float], raw: list[float], probes: list[float]
) -> None:
    times = [sum(dts[:i]) for i in range(len(dts) + 1)]
    vals = sorted(raw)[: len(times)]
    ext = 0.1
    buf = InterpolationBuffer(delay=0.0, max_extrapolation=ext)
    for t, v in zip(times, vals, strict=False):
        buf.push(t, {"e": {"x": v}})
    prev = None
    for rt in sorted(probes):
        x = buf.sample_at(rt)["e"]["x"]
        assert prev is None or x >= prev
        prev = x
        if rt >= times[-1] and len(times) > 1:  # bounded extrapolation
            slope = (vals[-1] - vals[-2]) / (times[-1] - times[-2])
            assert vals[-1] <= x <= vals[-1] + slope * ext * (1 + 1e-9) + 1e-6
        elif rt <= times[0] or len(times) == 1:
            assert x in (vals[0], vals[-1])
        else:
            i = max(j for j, t in enumerate(times) if t <= rt)
            assert vals[i] <= x <= vals[i + 1]


@given(
    st.lists(st.tuples(st.floats(0, 10), finite), min_size=2, max_size=10),
    st.floats(-1, 11),
)
def test_never_outside_the_two_surrounding_snapshots(
    frames: list[tuple[float, float]], rt: float
) -> None:
    buf = InterpolationBuffer(delay=0.0, max_extrapolation=0.0)
    for t, v in frames:
        buf.push(t, {1: {"x": v}})
    held = sorted({t: v for t, v in reversed(frames)}.items())  # first push per time wins
    x = buf.sample_at(rt)[1]["x"]
    before = [v for t, v in held if t <= rt]
    after = [v for t, v in held if t > rt]
    if before and after:
        lo, hi = sorted((before[-1], after[0]))
        assert lo <= x <= hi
    else:
        assert x == (before[-1] if before else after[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"snapshot_rate": 0},
        {"snapshot_rate": float("nan")},
        {"capacity": 1},
        {"capacity": 2.5},
        {"max_extrapolation": -1},
        {"delay": -0.1},
        {"delay": float("inf")},
    ],
)
def test_bad_constructor_arguments_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        InterpolationBuffer(**kwargs)
    buf = InterpolationBuffer()
    with pytest.raises(ValueError):
        buf.delay = float("nan")
