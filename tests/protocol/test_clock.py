"""TickClock, RemoteClockEstimator and TimestampUnwrapper."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import TickConfig
from netcode.errors import ConfigError
from netcode.protocol.clock import RemoteClockEstimator, TickClock, TimestampUnwrapper
from netcode.protocol.interpolation import InterpolationBuffer


def test_first_advance_starts_the_clock() -> None:
    clock = TickClock(TickConfig(rate=10))
    assert clock.next_deadline() is None
    assert clock.advance(100.0) == range(0)
    assert clock.next_deadline() == pytest.approx(100.1)
    assert clock.advance(100.05) == range(0)
    assert clock.alpha == pytest.approx(0.5)
    assert clock.advance(100.25) == range(0, 2)
    assert clock.tick == 2
    assert clock.alpha == pytest.approx(0.5)
    assert clock.dt == pytest.approx(0.1) and clock.rate == 10


def test_catchup_is_capped_and_the_rest_dropped() -> None:
    clock = TickClock(TickConfig(rate=60, max_catchup_ticks=5))
    clock.advance(0.0)
    assert clock.advance(1.0) == range(0, 5)  # a one-second stall
    assert clock.dropped_ticks == 55
    assert clock.advance(1.0 + 1 / 60) == range(5, 6)  # back to normal, no snowball
    assert clock.tick == 6


def test_time_going_backwards_runs_nothing() -> None:
    clock = TickClock(TickConfig(rate=10))
    clock.advance(5.0)
    clock.advance(5.35)
    assert len(clock.advance(5.0)) == 0
    assert clock.alpha == 0.0
    assert clock.advance(5.45) == range(3, 4)
    assert clock.tick == 4


def test_shift_and_reset() -> None:
    clock = TickClock(TickConfig(rate=10))
    clock.advance(0.0)
    clock.shift(0.3)
    assert clock.advance(0.0) == range(0, 3)
    clock.shift(-0.5)
    assert len(clock.advance(0.3)) == 0
    clock.reset()
    assert len(clock.advance(50.0)) == 0 and clock.tick == 3
    assert clock.advance(50.1) == range(3, 4)  # numbering continues across a reset


@given(
    st.integers(1, 240),
    st.floats(-1e6, 1e6),
    st.lists(st.floats(0.0, 0.2), max_size=200),
)
def test_no_drift_ticks_match_elapsed_time(rate: int, start: float, frames: list[float]) -> None:
    clock = TickClock(TickConfig(rate=rate, max_catchup_ticks=1000))
    now = start
    clock.advance(now)
    total = 0
    for dt in frames:
        now += dt
        total += len(clock.advance(now))
        assert 0.0 <= clock.alpha < 1.0
    assert total == clock.tick
    assert abs(total - (now - start) * rate) < 1.0 + 1e-6 * rate * abs(start)


def test_estimator_finds_offset_from_the_least_delayed_sample() -> None:
    rng = random.Random(4)
    true_offset = 1234.5  # remote clock is ahead of ours by this
    one_way = 0.03
    est = RemoteClockEstimator()
    for i in range(300):
        remote = 1000.0 + i / 60 + true_offset
        delay = one_way + (0.0 if i % 10 == 0 else rng.uniform(0, 0.05))  # queuing only adds
        est.add_sample(remote, remote - true_offset + delay, rtt=2 * one_way)
    assert est.offset == pytest.approx(true_offset, abs=0.002)
    assert est.remote_now(10.0) == pytest.approx(10.0 + true_offset, abs=0.002)
    assert est.to_local(true_offset + 5.0) == pytest.approx(5.0, abs=0.002)
    assert est.arrival_time(true_offset + 5.0) == pytest.approx(5.0 + one_way, abs=0.002)
    assert est.remote_tick(0.0, 60) == pytest.approx(true_offset * 60, abs=0.2)


@given(
    st.floats(-1e5, 1e5),
    st.floats(0.0, 0.5),
    st.lists(st.floats(0.0, 0.2), min_size=1, max_size=31),
)
def test_estimate_is_exact_with_one_undelayed_sample(
    offset: float, one_way: float, extra: list[float]
) -> None:
    est = RemoteClockEstimator(smoothing=1.0, window=32)
    for i, d in enumerate([0.0, *extra]):
        remote = 100.0 + i * 0.016 + offset
        est.add_sample(remote, remote - offset + one_way + d, rtt=2 * one_way)
    assert est.offset is not None
    assert math.isclose(est.offset, offset, abs_tol=1e-6)


def test_estimator_restarts_when_the_remote_clock_jumps() -> None:
    est = RemoteClockEstimator()
    with pytest.raises(RuntimeError):
        est.remote_now(0.0)
    for i in range(10):
        est.add_sample(100.0 + i, 0.0 + i)
    assert est.offset == pytest.approx(100.0)
    est.add_sample(3.0, 20.0)  # the peer restarted its clock
    assert est.resets == 1
    assert est.offset == pytest.approx(-17.0)
    with pytest.raises(ValueError):
        est.add_sample(math.nan, 0.0)
    with pytest.raises(ValueError):
        est.add_sample(0.0, 0.0, rtt=-1)
    with pytest.raises(ValueError):
        RemoteClockEstimator(smoothing=0)


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(-(2**20), 2**20), max_size=50))
def test_unwrapper_follows_the_true_timeline(start: int, steps: list[int]) -> None:
    unwrap = TimestampUnwrapper()
    true = start
    assert unwrap.unwrap(start) == pytest.approx(start * 1e-6)
    for s in steps:
        true += s
        assert unwrap.unwrap(true % 2**32) == pytest.approx(true * 1e-6)


def test_bad_constructor_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        TickClock(60)  # type: ignore[arg-type]
    for kwargs in ({"window": 0}, {"smoothing": 0.0}, {"reset_threshold": 0}):
        with pytest.raises(ConfigError):
            RemoteClockEstimator(**kwargs)


# -- issue 9: every catch-up tick has its own number ---------------------------


def test_the_documented_loop_gives_each_catch_up_tick_its_own_number() -> None:
    """The finding: with a bare count every step of a catch-up batch read one ``tick``,
    so snapshots stamped with it got identical times and the receiver kept one."""
    clock = TickClock(TickConfig(rate=60, max_catchup_ticks=5))
    buf = InterpolationBuffer(snapshot_rate=60)
    stamped: list[int] = []
    now = 0.0
    for frame_dt in (0.0, 1 / 60, 0.07, 1 / 60, 1.0, 1 / 120, 1 / 120):  # 0.07 s, 1 s stalls
        now += frame_dt
        for tick in clock.advance(now):  # docs/STATE_SYNC.md section 1
            stamped.append(tick)
            assert buf.push(tick * clock.dt, {1: {"x": float(tick)}})  # distinct times
    assert stamped == list(range(clock.tick))  # consecutive, none repeated or skipped
    assert len(stamped) == 1 + 4 + 1 + 5 + 1 and clock.dropped_ticks == 55
    assert buf.dropped_snapshots == 0


@given(
    st.integers(1, 240),
    st.integers(1, 8),
    st.lists(st.one_of(st.floats(-0.1, 0.3), st.floats(-1e3, 1e3)), max_size=60),
)
def test_advance_numbers_are_contiguous_and_capped(
    rate: int, cap: int, frames: list[float]
) -> None:
    clock = TickClock(TickConfig(rate=rate, max_catchup_ticks=cap))
    now = 0.0
    seen: list[int] = []
    for dt in frames:
        now += dt
        ticks = clock.advance(now)
        assert len(ticks) <= cap and ticks.step == 1
        assert ticks.stop == clock.tick  # the attribute is past the batch
        seen.extend(ticks)
    assert seen == list(range(clock.tick))


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, "1.0", None, 10**400], ids=lambda v: f"{v!r:.8}"
)
def test_a_non_finite_time_is_the_game_s_bug_and_raises(bad: object) -> None:
    clock = TickClock(TickConfig(rate=10))
    with pytest.raises(ConfigError):
        clock.advance(bad)  # type: ignore[arg-type]
    clock.advance(1.0)
    with pytest.raises(ConfigError):
        clock.advance(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        clock.shift(bad)  # type: ignore[arg-type]
    assert clock.advance(1.25) == range(0, 2)  # the clock was not disturbed
    with pytest.raises(ConfigError):
        clock.advance(1.7e308)  # finite, but the elapsed ticks overflow
