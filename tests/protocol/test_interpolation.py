"""InterpolationBuffer: lerp between snapshots, bounded extrapolation, documented policies."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.errors import ConfigError, EncodeError
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
    buf = InterpolationBuffer()
    assert not buf.push(float("nan"), {})  # a time from the network: refused and counted
    assert buf.dropped_snapshots == 1 and len(buf) == 0


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
    buf = InterpolationBuffer(delay=0.0, max_extrapolation=ext, min_spacing=0.0005)
    for t, v in zip(times, vals, strict=False):
        assert buf.push(t, {"e": {"x": v}})  # gaps >= 1 ms: all kept
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
    spacing = 0.01
    buf = InterpolationBuffer(delay=0.0, max_extrapolation=0.0, min_spacing=spacing)
    kept: dict[float, float] = {}
    for t, v in frames:
        fits = all(abs(t - h) >= spacing for h in kept)  # first push wins, spacing kept
        assert buf.push(t, {1: {"x": v}}) == fits
        if fits:
            kept[t] = v
    assert buf.dropped_snapshots == len(frames) - len(kept)
    held = sorted(kept.items())
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


# -- issue 9: hostile times and values ---------------------------------------


def test_snapshots_5ns_apart_no_longer_throw_a_player_across_the_map() -> None:
    """The finding: 5 ns apart, then extrapolated 0.25 s -> 165 million px."""
    buf = InterpolationBuffer(delay=0.0, snapshot_rate=60, teleport={"x": 200.0})
    assert buf.push(10.0, {"p": {"x": 100.0}})
    assert not buf.push(10.0 + 5e-9, {"p": {"x": 103.3}})
    assert buf.dropped_snapshots == 1 and len(buf) == 1
    assert buf.sample_at(10.25)["p"]["x"] == 100.0  # one snapshot: nothing to extrapolate
    assert buf.min_spacing == pytest.approx(0.25 / 60)


def test_teleport_threshold_bounds_extrapolation_even_with_tiny_spacing() -> None:
    buf = InterpolationBuffer(
        delay=0.0, teleport={"x": 200.0}, min_spacing=1e-9, max_extrapolation=0.25
    )
    assert buf.push(10.0, {"p": {"x": 100.0, "y": 0.0}})
    assert buf.push(10.0 + 5e-9, {"p": {"x": 103.3, "y": 1.0}})  # allowed by this spacing
    far = buf.sample_at(11.0)["p"]
    assert far["x"] == pytest.approx(303.3)  # moved at most teleport["x"] past the newest
    assert far["y"] == pytest.approx(1.0 + 1.0 * 0.25 / 5e-9, rel=1e-6)  # no threshold: cap only


def test_extrapolation_is_capped_at_100_ms_by_default_then_held() -> None:
    buf = InterpolationBuffer(delay=0.0)
    assert buf.max_extrapolation == 0.1
    buf.push(0.0, {1: {"x": 0.0}})
    buf.push(0.1, {1: {"x": 10.0}})  # 100 units/s
    assert buf.sample_at(0.15)[1]["x"] == pytest.approx(15.0)
    assert buf.sample_at(0.2)[1]["x"] == pytest.approx(20.0)
    assert buf.sample_at(60.0)[1]["x"] == pytest.approx(20.0)  # held at the capped value
    buf.max_extrapolation = 0.0
    assert buf.sample_at(60.0)[1]["x"] == 10.0
    for bad in (-1.0, math.nan, math.inf, "0.1"):
        with pytest.raises(ConfigError):
            buf.max_extrapolation = bad  # type: ignore[assignment]


def test_teleport_clamps_a_fast_but_legal_move_under_extrapolation() -> None:
    buf = buf_with(
        (0.0, {1: {"x": 0.0}}),
        (0.1, {1: {"x": 150.0}}),
        teleport={"x": 200.0},
        max_extrapolation=1.0,
    )
    assert buf.sample_at(0.15)[1]["x"] == pytest.approx(225.0)  # under the threshold: moves
    assert buf.sample_at(5.0)[1]["x"] == pytest.approx(350.0)  # 1500 unclamped, 200 past 150


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf, 10**400])
def test_non_finite_snapshot_times_are_counted_drops(t: float) -> None:
    buf = buf_with((0.0, {1: {"x": 0.0}}))
    assert not buf.push(t, {1: {"x": 1.0}})
    assert buf.dropped_snapshots == 1 and len(buf) == 1


def test_too_close_is_refused_on_both_sides_of_a_late_arrival() -> None:
    buf = InterpolationBuffer(delay=0.0, min_spacing=0.01)
    assert buf.push(1.0, {1: {"x": 1.0}})
    assert buf.push(2.0, {1: {"x": 2.0}})
    assert not buf.push(1.0, {1: {"x": 9.0}})  # duplicate
    assert not buf.push(1.005, {1: {"x": 9.0}})  # just after a held one
    assert not buf.push(1.995, {1: {"x": 9.0}})  # just before a held one
    assert not buf.push(2.009, {1: {"x": 9.0}})  # just after the newest
    assert buf.push(1.5, {1: {"x": 1.5}})  # a late arrival with room slots in
    assert buf.dropped_snapshots == 4 and len(buf) == 3


def test_an_entity_with_a_non_finite_interpolated_field_is_left_out_alone() -> None:
    buf = InterpolationBuffer(delay=0.0, fields={"x"})
    assert buf.push(0.0, {1: {"x": 0.0}, 2: {"x": 0.0}, 3: {"x": 1.0, "hp": math.nan}})
    assert buf.push(1.0, {1: {"x": math.inf}, 2: {"x": 2.0}, 3: {"x": 1.0, "hp": math.inf}})
    assert buf.dropped_entities == 1
    mid = buf.sample_at(0.5)
    assert mid[1] == {"x": 0.0}  # entity 1 missing from t=1: held, then gone
    assert mid[2] == {"x": pytest.approx(1.0)}
    assert math.isnan(mid[3]["hp"])  # not interpolated: opaque game data, passed through
    assert set(buf.sample_at(1.0)) == {2, 3}


def test_huge_finite_values_and_times_stay_finite() -> None:
    buf = InterpolationBuffer(delay=0.0, min_spacing=1.0, max_extrapolation=1e300)
    assert buf.push(-1e308, {1: {"x": -1.7e308}})
    assert buf.push(1e308, {1: {"x": 1.7e308}})
    for rt in (-1e308, 0.0, 1e308, 1.7e308):
        x = buf.sample_at(rt)[1]["x"]
        assert math.isfinite(x) and -1.7e308 <= x <= 1.7e308


@pytest.mark.parametrize("call", ["sample", "sample_at", "lag"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.0", None, True])
def test_a_non_finite_render_time_is_the_game_s_bug_and_raises(call: str, bad: Any) -> None:
    buf = buf_with((0.0, {1: {"x": 0.0}}), (1.0, {1: {"x": 1.0}}))
    with pytest.raises(ConfigError):
        getattr(buf, call)(bad)


def test_malformed_push_arguments_raise_documented_errors() -> None:
    buf = InterpolationBuffer()
    with pytest.raises(ConfigError):
        buf.push("1.0", {})  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        buf.push(0.0, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        buf.push(0.0, {1: 5})  # type: ignore[arg-type]
    assert len(buf) == 0 and buf.dropped_snapshots == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_spacing": 0},
        {"min_spacing": -1},
        {"min_spacing": math.nan},
        {"teleport": {"x": -1.0}},
        {"teleport": {"x": math.nan}},
        {"max_extrapolation": math.inf},
    ],
)
def test_bad_limits_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        InterpolationBuffer(**kwargs)


any_time = st.one_of(
    st.floats(),  # NaN, +-inf, huge, tiny, -0.0 included
    st.floats(0, 2, allow_nan=False),  # dense: many too-close pairs
    st.integers(-(2**1100), 2**1100),
)
any_value = st.one_of(
    st.floats(-1e3, 1e3),  # ordinary motion, so extrapolation is exercised often
    st.floats(),
    st.integers(-(2**1100), 2**1100),
    st.booleans(),
    st.text(max_size=2),
)
pushes = st.lists(
    st.tuples(
        any_time, st.dictionaries(st.integers(0, 3), st.fixed_dictionaries({"x": any_value}))
    ),
    max_size=20,
)


@given(
    pushes,
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=10),
    st.lists(st.floats(0, 20), max_size=5),
    st.floats(0, 10),
    st.one_of(st.none(), st.floats(0, 50)),
    st.floats(1e-9, 1.0),
)
def test_any_hostile_sequence_gives_finite_bounded_output(
    frames: list[tuple[Any, dict[int, dict[str, Any]]]],
    probes: list[float],
    aheads: list[float],
    cap: float,
    teleport: float | None,
    spacing: float,
) -> None:
    tp = None if teleport is None else {"x": teleport}
    buf = InterpolationBuffer(
        delay=0.0, max_extrapolation=cap, teleport=tp, min_spacing=spacing, capacity=8
    )
    numbers: list[float] = []
    for t, ents in frames:
        buf.push(t, ents)  # never raises for any time or value
        numbers += [float(e["x"]) for e in ents.values() if _finite_number(e["x"])]
    assert len(buf) <= 8
    newest = buf.newest_time
    if newest is None:
        return
    lo, hi = min(numbers, default=0.0), max(numbers, default=0.0)
    bound = (hi - lo) * cap / spacing  # |v1 - v0| <= hi - lo and t1 - t0 >= spacing
    if tp is not None:
        bound = min(bound, tp["x"])
    at_newest = buf.sample_at(newest)
    for rt in [*probes, *(newest + a for a in aheads)]:
        for eid, ent in buf.sample_at(rt).items():
            x = ent["x"]
            if not isinstance(x, float):
                continue  # not blended: the pushed value itself (int, bool, str)
            assert math.isfinite(x)
            if rt <= newest:
                assert lo <= x <= hi  # interpolated: between two pushed values
            else:
                assert abs(x - float(at_newest[eid]["x"])) <= bound * (1 + 1e-9)
    late = [rt for rt in (newest + 2 * cap + 1.0, newest + 1e3 * cap + 1e3) if rt - newest >= cap]
    assert len({repr(buf.sample_at(rt)) for rt in late}) <= 1  # held after the cap


@given(
    st.lists(
        st.tuples(st.floats(0, 0.05), st.one_of(st.floats(-1e3, 1e3), st.floats())),
        min_size=2,
        max_size=10,
    ),
    st.floats(0, 1),
    st.one_of(st.none(), st.floats(0, 50)),
    st.floats(1e-9, 0.01),
    st.lists(st.floats(0, 2), min_size=1, max_size=5),
)
def test_extrapolation_is_exactly_the_capped_clamped_last_step(
    steps: list[tuple[float, float]],
    cap: float,
    teleport: float | None,
    spacing: float,
    aheads: list[float],
) -> None:
    tp = None if teleport is None else {"x": teleport}
    buf = InterpolationBuffer(delay=0.0, max_extrapolation=cap, teleport=tp, min_spacing=spacing)
    kept: list[tuple[float, float]] = []  # x is NaN/inf when the entity was left out
    t = 0.0
    for gap, v in steps:
        t += gap
        if buf.push(t, {1: {"x": v}}):
            kept.append((t, v))
    assert all(b[0] - a[0] >= spacing for a, b in itertools.pairwise(kept))
    if len(kept) < 2 or not math.isfinite(kept[-1][1]):
        return
    (t0, v0), (t1, v1) = kept[-2], kept[-1]
    for rt in (t1 + a for a in aheads):
        x = buf.sample_at(rt)[1]["x"]
        if not math.isfinite(v0) or cap == 0 or (tp is not None and abs(v1 - v0) > tp["x"]):
            assert x == v1  # nothing to extrapolate from, or a teleport: held
            continue
        step = (v1 - v0) * min(rt - t1, cap) / (t1 - t0)
        if tp is not None:
            step = max(-tp["x"], min(tp["x"], step))
        expected = v1 + step if math.isfinite(v1 + step) else v1  # overflow: held
        assert x == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert abs(x - v1) <= abs(v1 - v0) * cap / spacing * (1 + 1e-9) + 1e-9


def _finite_number(v: object) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


@given(st.one_of(st.floats(allow_nan=True), st.integers(), st.text(), st.none()))
def test_render_time_either_samples_or_raises_config_error(rt: Any) -> None:
    buf = buf_with((0.0, {1: {"x": 0.0}}), (1.0, {1: {"x": 1.0}}))
    try:
        out = buf.sample_at(rt)
    except ConfigError:
        assert not _finite_number(rt)
    else:
        assert _finite_number(rt) and math.isfinite(out[1]["x"])
