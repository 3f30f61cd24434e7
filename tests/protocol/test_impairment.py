"""Pure impairment model: determinism, rates, ordering and delay bounds."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import NetworkConditions
from netcode.errors import ConfigError
from netcode.protocol.impairment import (
    DelayQueue,
    Impairment,
    ImpairmentModel,
    max_delay,
)

probabilities = st.floats(min_value=0.0, max_value=1.0)
millis = st.floats(min_value=0.0, max_value=500.0)
seeds = st.integers(min_value=0, max_value=2**32)
# Send times: non-decreasing, gaps from 0 (a burst) to 50 ms.
gaps = st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=200)


@st.composite
def conditions(draw: st.DrawFn, *, reorder: float | None = None) -> NetworkConditions:
    return NetworkConditions(
        loss=draw(probabilities),
        latency_ms=draw(millis),
        jitter_ms=draw(millis),
        duplicate=draw(probabilities),
        reorder=draw(probabilities) if reorder is None else reorder,
        seed=draw(seeds),
    )


def send_times(gap_list: list[float], start: float = 100.0) -> list[float]:
    times, now = [], start
    for gap in gap_list:
        now += gap
        times.append(now)
    return times


def run(model: ImpairmentModel, times: list[float]) -> list[tuple[float, ...]]:
    return [model.decide(now, 100) for now in times]


@given(conditions(), gaps)
def test_same_seed_same_decisions(cond: NetworkConditions, gap_list: list[float]) -> None:
    times = send_times(gap_list)
    a = run(ImpairmentModel(cond), times)
    b = run(ImpairmentModel(cond), times)
    assert a == b


@given(seeds)
def test_different_seeds_differ(seed: int) -> None:
    cond = NetworkConditions(loss=0.5, seed=seed)
    times = send_times([0.01] * 200)
    a = run(ImpairmentModel(cond), times)
    b = run(ImpairmentModel(NetworkConditions(loss=0.5, seed=seed + 1)), times)
    assert a != b  # 2**-200 chance of a false failure


@given(st.floats(min_value=0.0, max_value=1.0), seeds)
def test_measured_loss_rate_matches(loss: float, seed: int) -> None:
    n = 4000
    model = ImpairmentModel(NetworkConditions(loss=loss, seed=seed))
    dropped = sum(1 for now in send_times([0.001] * n) if not model.decide(now))
    # 4000 Bernoulli trials: sigma <= 0.008, so 4 points is 5 sigma.
    assert abs(dropped / n - loss) <= 0.04
    assert model.counters.dropped == dropped
    assert model.counters.offered == n


@given(st.floats(min_value=0.0, max_value=1.0), seeds)
def test_measured_duplicate_rate_matches(dup: float, seed: int) -> None:
    n = 4000
    model = ImpairmentModel(NetworkConditions(duplicate=dup, seed=seed))
    doubled = sum(1 for now in send_times([0.001] * n) if len(model.decide(now)) == 2)
    assert abs(doubled / n - dup) <= 0.04
    assert model.counters.duplicated == doubled


@given(conditions(reorder=0.0), gaps)
def test_delivery_monotone_without_reorder(cond: NetworkConditions, gap_list: list[float]) -> None:
    model = ImpairmentModel(cond)
    delivered = [t for d in run(model, send_times(gap_list)) for t in d]
    assert delivered == sorted(delivered)


@given(conditions(), gaps)
def test_delays_within_bounds(cond: NetworkConditions, gap_list: list[float]) -> None:
    model = ImpairmentModel(cond)
    bound = max_delay(cond) + 1e-9
    for now, times in zip(send_times(gap_list), run(model, send_times(gap_list)), strict=True):
        assert len(times) <= 2
        for t in times:
            assert now <= t <= now + bound
        # A duplicate never arrives before its original.
        assert list(times) == sorted(times)


@given(seeds)
def test_reorder_lets_later_datagrams_overtake(seed: int) -> None:
    cond = NetworkConditions(latency_ms=20.0, reorder=0.3, seed=seed)
    model = ImpairmentModel(cond)
    delivered = [d[0] for d in run(model, send_times([1 / 60] * 200))]
    inversions = sum(1 for a, b in itertools.pairwise(delivered) if b < a)
    assert inversions > 0
    assert model.counters.reordered > 0


def test_clean_link_delivers_immediately() -> None:
    model = ImpairmentModel(NetworkConditions(seed=1))
    assert model.decide(5.0) == (5.0,)


def test_full_loss_drops_everything() -> None:
    model = ImpairmentModel(NetworkConditions(loss=1.0, seed=1))
    assert all(model.decide(t) == () for t in send_times([0.01] * 100))


def test_fixed_latency_shifts_delivery() -> None:
    model = ImpairmentModel(NetworkConditions(latency_ms=20.0, seed=1))
    assert abs(model.decide(1.0)[0] - 1.020) < 1e-9


def test_loss_pattern_independent_of_latency() -> None:
    times = send_times([0.01] * 300)
    a = run(ImpairmentModel(NetworkConditions(loss=0.3, seed=7)), times)
    b = run(ImpairmentModel(NetworkConditions(loss=0.3, latency_ms=50, seed=7)), times)
    assert [bool(x) for x in a] == [bool(x) for x in b]


@given(gaps, seeds)
def test_monotone_across_condition_change(gap_list: list[float], seed: int) -> None:
    model = ImpairmentModel(NetworkConditions(latency_ms=200.0, jitter_ms=50.0, seed=seed))
    times = send_times(gap_list)
    half = len(times) // 2
    out = run(model, times[:half])
    model.set_conditions(NetworkConditions(latency_ms=1.0, seed=seed))
    out += run(model, times[half:])
    delivered = [t for d in out for t in d]
    assert delivered == sorted(delivered)


@given(st.lists(st.tuples(st.floats(0.0, 10.0), st.integers()), max_size=50), st.floats(0.0, 10.0))
def test_delay_queue_pops_due_in_time_then_push_order(
    items: list[tuple[float, int]], now: float
) -> None:
    queue: DelayQueue[tuple[int, int]] = DelayQueue()
    for index, (at, value) in enumerate(items):
        queue.push(at, (index, value))
    due = queue.pop_due(now)
    expected = sorted(
        ((at, index, value) for index, (at, value) in enumerate(items) if at <= now),
    )
    assert due == [(index, value) for _, index, value in expected]
    assert len(queue) == len(items) - len(due)
    deadline = queue.next_deadline()
    if deadline is None:
        assert len(queue) == 0
    else:
        assert deadline > now


@given(conditions(), gaps)
def test_impairment_delivers_each_copy_exactly_once(
    cond: NetworkConditions, gap_list: list[float]
) -> None:
    imp: Impairment[int] = Impairment(cond, random.Random(cond.seed))
    reference = ImpairmentModel(cond, random.Random(cond.seed))
    delivered: list[int] = []
    expected = 0
    for index, now in enumerate(send_times(gap_list)):
        expected += len(reference.decide(now))
        delivered += imp.offer(index, 10, now)
    delivered += imp.pop_due(float("inf"))
    assert len(delivered) == expected
    assert imp.next_deadline() is None


def test_impairment_clean_passthrough_counts_bytes() -> None:
    imp: Impairment[bytes] = Impairment(NetworkConditions())
    assert imp.offer(b"abc", 3, 1.0) == [b"abc"]
    assert imp.model.counters.bytes == 3
    assert imp.model.counters.offered == 1


def test_conditions_of_the_wrong_type_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        ImpairmentModel({"loss": 0.5})  # type: ignore[arg-type]
    model = ImpairmentModel(NetworkConditions(loss=0.5))
    with pytest.raises(ConfigError):
        model.set_conditions(None)  # type: ignore[arg-type]
    assert model.conditions == NetworkConditions(loss=0.5)
