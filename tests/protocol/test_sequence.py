"""16-bit wrapping sequence arithmetic, SequenceBuffer and ack bitfields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.protocol.sequence import (
    SEQ_HALF,
    SEQ_MODULUS,
    SequenceBuffer,
    ack_bits_contains,
    generate_ack_bits,
    iter_acked,
    seq_add,
    seq_diff,
    seq_greater_than,
    seq_less_than,
)

seqs = st.integers(0, SEQ_MODULUS - 1)


def test_wraparound_examples() -> None:
    assert seq_greater_than(0, 65535)
    assert seq_greater_than(5, 65530)
    assert not seq_greater_than(65535, 0)
    assert seq_greater_than(1, 0)
    assert not seq_greater_than(7, 7)
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(3, 65533) == 6
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535


@given(seqs, seqs)
def test_antisymmetric_and_total_except_half(a: int, b: int) -> None:
    gt, lt = seq_greater_than(a, b), seq_greater_than(b, a)
    assert not (gt and lt)
    assert seq_less_than(a, b) == lt
    if a == b:
        assert not gt and not lt
    elif (a - b) % SEQ_MODULUS != SEQ_HALF:
        assert gt != lt


@given(seqs, st.integers(1, SEQ_HALF - 1))
def test_ahead_by_less_than_half_is_greater_across_wrap(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert seq_greater_than(b, a)
    assert not seq_greater_than(a, b)
    assert seq_diff(b, a) == n
    assert seq_diff(a, b) == -n


@given(st.integers(SEQ_MODULUS - 40, SEQ_MODULUS - 1), st.integers(1, 80))
def test_greater_than_across_the_65535_to_0_boundary(a: int, n: int) -> None:
    b = (a + n) % SEQ_MODULUS
    assert seq_greater_than(b, a)
    assert seq_diff(b, a) == n


@given(seqs, seqs)
def test_diff_sign_matches_greater_than(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -SEQ_HALF <= d < SEQ_HALF
    assert (d > 0) == seq_greater_than(a, b)
    assert seq_add(b, d) == a


def test_buffer_rejects_sizes_that_do_not_divide_65536() -> None:
    with pytest.raises(ValueError):
        SequenceBuffer[int](100)
    with pytest.raises(ValueError):
        SequenceBuffer[int](0)


def test_buffer_basic_and_too_old() -> None:
    buf: SequenceBuffer[str] = SequenceBuffer(8)
    assert buf.newest is None and buf.get(3) is None
    assert buf.insert(65534, "a")
    assert buf.insert(2, "b")  # across the wrap: skipped 65535, 0, 1 are cleared
    assert buf.newest == 2
    assert buf.get(65534) == "a" and buf.get(2) == "b"
    assert 65535 not in buf and 0 not in buf
    assert list(buf.items()) == [(65534, "a"), (2, "b")]
    assert buf.insert(10, "c")  # 65534 is now 12 behind: gone
    assert buf.get(65534) is None
    assert not buf.insert(1, "old")  # 9 behind a size-8 ring: too old
    buf.remove(10)
    assert 10 not in buf and buf.newest == 10
    buf.clear()
    assert buf.newest is None and list(buf.items()) == []


# Operations relative to the newest sequence, as real traffic produces them:
# small steps forward, reordering backwards, occasional bigger jumps.
ops = st.lists(
    st.tuples(st.sampled_from(["insert", "remove"]), st.integers(-20, 20)),
    max_size=80,
)


@given(seqs, st.sampled_from([4, 8, 16]), ops)
def test_buffer_matches_dict_model(
    start: int, size: int, operations: list[tuple[str, int]]
) -> None:
    buf: SequenceBuffer[int] = SequenceBuffer(size)
    model: dict[int, int] = {}
    newest: int | None = None
    for step, (op, delta) in enumerate(operations):
        seq = seq_add(start if newest is None else newest, delta)
        if op == "remove":
            buf.remove(seq)
            model.pop(seq, None)
            continue
        too_old = newest is not None and seq_diff(newest, seq) >= size
        assert buf.insert(seq, step) == (not too_old)
        if too_old:
            continue
        model[seq] = step
        if newest is None or seq_greater_than(seq, newest):
            newest = seq
        model = {s: v for s, v in model.items() if seq_diff(newest, s) < size}
        assert buf.newest == newest
    anchor = start if newest is None else newest
    for s in set(model) | {seq_add(anchor, d) for d in range(-3 * size, 3 * size)}:
        assert buf.get(s) == model.get(s)
        assert (s in buf) == (s in model)
    assert dict(buf.items()) == model


@given(seqs, st.sets(st.integers(0, 40)))
def test_ack_bits_report_exactly_the_present_window(newest: int, backs: set[int]) -> None:
    buf: SequenceBuffer[bool] = SequenceBuffer(64)
    present = {seq_add(newest, -b) for b in backs | {0}}
    for s in sorted(present, key=lambda s: seq_diff(s, newest)):
        buf.insert(s, True)
    ack, bits = generate_ack_bits(buf)
    assert ack == newest
    reported = set(iter_acked(ack, bits))
    assert reported == {s for s in present if seq_diff(newest, s) < 32}
    for s in present:
        assert ack_bits_contains(ack, bits, s) == (s in reported)


def test_ack_bits_of_empty_buffer_say_nothing() -> None:
    ack, bits = generate_ack_bits(SequenceBuffer[bool](32))
    assert bits == 0
    assert list(iter_acked(ack, bits)) == []
