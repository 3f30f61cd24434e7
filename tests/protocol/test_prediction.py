"""Predictor and InputReceiver: prediction equals authority under any loss pattern."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.errors import ConfigError, DecodeError, EncodeError
from netcode.protocol.prediction import InputReceiver, Predictor


def step(state: int, inp: int) -> int:
    """Order-sensitive on purpose: a reordered or repeated input gives another result."""
    return (state * 31 + inp) % 1_000_003


def replay(state: int, inputs: list[tuple[int, int]]) -> int:
    return reduce(step, (i for _, i in inputs), state)


def test_push_predicts_immediately_and_pending_is_newest_first_n() -> None:
    p: Predictor[int, int] = Predictor(0, step)
    seqs = [p.push(i) for i in (5, 6, 7)]
    assert seqs == [0, 1, 2]
    assert p.state == replay(0, [(0, 5), (1, 6), (2, 7)])
    assert p.pending_inputs() == [(0, 5), (1, 6), (2, 7)]
    assert p.pending_inputs(2) == [(1, 6), (2, 7)]
    assert p.pending_inputs(0) == []


def test_reconcile_drops_confirmed_and_replays_the_rest() -> None:
    p: Predictor[int, int] = Predictor(0, step)
    for i in (1, 2, 3, 4):
        p.push(i)
    host = replay(0, [(0, 1), (1, 2)])
    assert p.reconcile(host, 1) == replay(host, [(2, 3), (3, 4)])
    assert p.pending_inputs() == [(2, 3), (3, 4)]
    assert p.last_acked == 1 and p.authoritative == host
    # an out-of-date authoritative state (confirms an older input) is ignored
    assert p.reconcile(999, 0) == p.state
    assert p.authoritative == host
    assert p.reconcile(42, None) == replay(42, [(2, 3), (3, 4)])  # None: nothing processed


def test_reconcile_rejects_an_input_never_sent() -> None:
    p: Predictor[int, int] = Predictor(0, step)
    p.push(1)
    with pytest.raises(DecodeError):
        p.reconcile(0, 1)
    with pytest.raises(DecodeError):
        p.reconcile(0, "0")  # type: ignore[arg-type]


def test_max_pending_drops_the_oldest() -> None:
    p: Predictor[int, int] = Predictor(0, step, max_pending=3)
    for i in range(5):
        p.push(i)
    assert [s for s, _ in p.pending_inputs()] == [2, 3, 4]
    assert p.dropped_inputs == 2
    with pytest.raises(ValueError):
        Predictor(0, step, max_pending=0)


def test_input_receiver_dedups_orders_and_counts_gaps() -> None:
    r: InputReceiver[str] = InputReceiver()
    assert r.receive([[1, "b"], [0, "a"]]) == [(0, "a"), (1, "b")]
    assert r.receive([(0, "a"), (1, "b"), (2, "c")]) == [(2, "c")]
    assert r.duplicates == 2
    assert r.receive([[5, "f"], [6, "g"]]) == [(5, "f"), (6, "g")]
    assert r.lost == 2 and r.last_processed == 6
    assert r.receive([[4, "e"]]) == []  # too late: gaps are not waited for
    r.reset()
    assert r.receive([[0, "z"]]) == [(0, "z")]


@pytest.mark.parametrize(
    "batch", [None, "x", [[1]], [[1, 2, 3]], [["1", 0]], [[-1, 0]], [[True, 0]], [[0, 0]] * 65]
)
def test_input_receiver_rejects_malformed_batches(batch: object) -> None:
    with pytest.raises(DecodeError):
        InputReceiver[int]().receive(batch)


def test_input_receiver_rejects_absurd_jumps() -> None:
    r: InputReceiver[int] = InputReceiver(max_gap=10)
    r.receive([[0, 0]])
    with pytest.raises(DecodeError):
        r.receive([[100, 0]])
    assert r.receive([[10, 0]]) == [(10, 0)]


@given(st.lists(st.integers(-5, 5), max_size=60))
def test_zero_latency_no_loss_prediction_equals_authority(inputs: list[int]) -> None:
    p: Predictor[int, int] = Predictor(7, step)
    host_in: InputReceiver[int] = InputReceiver()
    host = 7
    for inp in inputs:
        p.push(inp)
        for _, i in host_in.receive(p.pending_inputs(3)):
            host = step(host, i)
        assert p.reconcile(host, host_in.last_processed) == host
        assert p.state == host
        assert p.pending_inputs() == []


links = st.lists(st.sampled_from(["ok", "ok", "drop", "late"]), min_size=1, max_size=80)


@given(st.lists(st.integers(-9, 9), min_size=1, max_size=80), links, links, st.integers(1, 5))
def test_reconciled_state_is_authority_plus_pending_under_any_loss(
    inputs: list[int], up: list[str], down: list[str], redundancy: int
) -> None:
    p: Predictor[int, int] = Predictor(0, step)
    rx: InputReceiver[int] = InputReceiver()
    host = 0
    host_applied: list[tuple[int, int]] = []
    late_up: list[list[tuple[int, int]]] = []
    late_down: list[tuple[int, int | None]] = []
    for tick, inp in enumerate(inputs):
        p.push(inp)
        packet = p.pending_inputs(redundancy)
        arriving = [] if up[tick % len(up)] == "drop" else [packet]
        if up[tick % len(up)] == "late":
            late_up.append(packet)
            arriving = [late_up.pop(0)] if len(late_up) > 2 else []
        for pkt in arriving:
            for seq, i in rx.receive(pkt):
                host = step(host, i)
                host_applied.append((seq, i))
        auth = (host, rx.last_processed)
        mode = down[tick % len(down)]
        if mode == "late":
            late_down.append(auth)
            continue
        if mode == "drop":
            continue
        for state, last in [*late_down, auth]:  # delayed states arrive before the newest
            p.reconcile(state, last)
        late_down.clear()
        acked = -1 if last is None else last
        expected_pending = [(s, i) for s, i in enumerate(inputs[: tick + 1]) if s > acked]
        assert p.pending_inputs() == expected_pending
        assert p.state == replay(host, expected_pending)
    applied_seqs = [s for s, _ in host_applied]
    assert applied_seqs == sorted(set(applied_seqs))  # each input once, in order
    assert all(inputs[s] == i for s, i in host_applied)


def test_bad_constructor_arguments_are_config_errors() -> None:
    def step(s: int, i: int) -> int:
        return s + i

    bad_predictor: list[dict[str, Any]] = [
        {"first_seq": -1},
        {"max_pending": 0},
        {"max_pending": 1.5},
    ]
    for kwargs in bad_predictor:
        with pytest.raises(ConfigError):
            Predictor(0, step, **kwargs)
    bad_receiver: list[dict[str, Any]] = [{"max_batch": 0}, {"max_gap": 0}, {"max_batch": "8"}]
    for kwargs in bad_receiver:
        with pytest.raises(ConfigError):
            InputReceiver(**kwargs)


# -- issue 9: non-finite numbers never enter prediction ------------------------


@dataclass(frozen=True)
class Move:
    dx: float
    dy: float


def move(state: dict[str, float], inp: Move) -> dict[str, float]:
    return {"x": state["x"] + inp.dx, "y": state["y"] + inp.dy}


NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", NON_FINITE)
def test_push_refuses_a_non_finite_input_and_changes_nothing(bad: float) -> None:
    p: Predictor[dict[str, float], Move] = Predictor({"x": 0.0, "y": 0.0}, move)
    p.push(Move(1.0, 0.0))
    with pytest.raises(EncodeError):
        p.push(Move(bad, 0.0))  # dataclass field
    with pytest.raises(EncodeError):
        nested: Predictor[int, Any] = Predictor(0, lambda s, _: s)
        nested.push([1, (2, {"k": bad})])
    assert p.state == {"x": 1.0, "y": 0.0}
    assert p.next_seq == 1 and p.pending_inputs() == [(0, Move(1.0, 0.0))]


@pytest.mark.parametrize("bad", NON_FINITE)
def test_reconcile_refuses_a_non_finite_authoritative_state(bad: float) -> None:
    p: Predictor[dict[str, float], Move] = Predictor({"x": 0.0, "y": 0.0}, move)
    p.push(Move(1.0, 0.0))
    p.push(Move(0.0, 1.0))
    with pytest.raises(DecodeError):
        p.reconcile({"x": bad, "y": 0.0}, 0)
    assert p.state == {"x": 1.0, "y": 1.0} and p.authoritative == {"x": 0.0, "y": 0.0}
    assert p.last_acked is None and len(p.pending_inputs()) == 2 and p.reconciliations == 0
    assert p.reconcile({"x": 1.0, "y": 0.0}, 0) == {"x": 1.0, "y": 1.0}  # still usable


def test_a_non_finite_initial_state_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Predictor({"x": math.nan}, move)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_input_receiver_refuses_a_batch_with_a_non_finite_input(bad: float) -> None:
    r: InputReceiver[Any] = InputReceiver()
    assert r.receive([[0, [0.5, -1.0]]]) == [(0, [0.5, -1.0])]
    for batch in ([[1, bad]], [[1, [0.0, bad]]], [[2, {"dx": bad}]], [[1, 0.0], [2, {bad: 1}]]):
        with pytest.raises(DecodeError):
            r.receive(batch)
    assert r.last_processed == 0 and r.lost == 0  # nothing of the refused batches was taken
    assert r.receive([[1, 2.5]]) == [(1, 2.5)]


def test_cyclic_and_deep_values_are_scanned_without_recursion() -> None:
    loop: list[Any] = [1.0]
    loop.append(loop)
    p: Predictor[int, Any] = Predictor(0, lambda s, _: s + 1)
    p.push(loop)
    loop[0] = math.inf
    with pytest.raises(EncodeError):
        p.push(loop)
    deep: Any = math.nan
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(EncodeError):
        p.push(deep)
    assert p.next_seq == 1


def _reference_non_finite(v: Any) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(_reference_non_finite(x) for x in (*v.keys(), *v.values()))
    if isinstance(v, list | tuple):
        return any(_reference_non_finite(x) for x in v)
    if isinstance(v, Move):
        return _reference_non_finite(v.dx) or _reference_non_finite(v.dy)
    return False


scalars = st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none(), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=3), st.floats()), inner, max_size=4),
        st.builds(Move, st.floats(), st.floats()),
    ),
    max_leaves=20,
)


@given(st.lists(values, max_size=5))
def test_any_input_is_taken_or_refused_with_the_documented_error(inputs: list[Any]) -> None:
    bad = any(_reference_non_finite(v) for v in inputs)
    r: InputReceiver[Any] = InputReceiver()
    try:
        got = r.receive([[seq, v] for seq, v in enumerate(inputs)])
    except DecodeError:
        assert bad and r.last_processed is None
    else:
        assert not bad and len(got) == len(inputs)
    p: Predictor[int, Any] = Predictor(0, lambda s, _: s + 1)
    for v in inputs:
        try:
            p.push(v)
        except EncodeError:
            assert _reference_non_finite(v)
        else:
            assert not _reference_non_finite(v)
    assert p.state == p.next_seq == sum(not _reference_non_finite(v) for v in inputs)


@given(values)
def test_any_authoritative_state_is_adopted_or_refused(state: Any) -> None:
    p: Predictor[Any, int] = Predictor(0, lambda s, i: s)
    p.push(1)
    try:
        p.reconcile(state, 0)
    except DecodeError:
        assert _reference_non_finite(state) and p.authoritative == 0
    else:
        assert not _reference_non_finite(state) and p.authoritative is state
