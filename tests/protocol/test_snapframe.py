"""The per-tick snapshot pipeline: one frame, encoded once per distinct baseline."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import Limits
from netcode.errors import DecodeError, EncodeError
from netcode.protocol.snapframe import MAX_FRAGMENTS, FragmentAssembler, map_header
from netcode.protocol.snapshot import (
    SnapshotEncoder,
    SnapshotReceiver,
    SnapshotSender,
    encode_delta,
)

QUANT = {"x": 0.01, "y": 0.01}
ENC = SnapshotEncoder(quantize=QUANT)

entity = st.fixed_dictionaries(
    {"x": st.floats(-1e4, 1e4), "y": st.floats(-1e4, 1e4)},
    optional={"hp": st.integers(0, 100), "name": st.text(max_size=12)},
)
worlds = st.dictionaries(st.integers(0, 300), entity, max_size=80)


@given(st.integers(0, 70_000))
def test_map_header_matches_msgpack(n: int) -> None:
    assert map_header(n) == msgpack.Packer().pack_map_header(n)


@given(a=worlds, b=worlds, base_seq=st.integers(0, 65535))
def test_frame_delta_is_byte_identical_to_the_dict_encoding(
    a: dict[int, Any], b: dict[int, Any], base_seq: int
) -> None:
    old, new = ENC.frame(a), ENC.frame(b)
    expected = encode_delta(old.state, new.state, base_seq, frozenset(QUANT))
    assert new.delta(old.state, base_seq) == msgpack.packb(expected, use_bin_type=True)


@given(world=worlds)
def test_full_in_one_part_is_wire_v1(world: dict[int, Any]) -> None:
    frame = ENC.frame(world)
    parts = frame.full(1_000_000)
    assert parts == [msgpack.packb({"e": frame.state}, use_bin_type=True)]


@given(world=worlds, budget=st.integers(60, 2_000))
def test_fragments_fit_and_reassemble_to_the_world(world: dict[int, Any], budget: int) -> None:
    frame = ENC.frame(world)
    parts = frame.full(budget)
    rx = SnapshotReceiver(quantize=QUANT)
    got = None
    for i, part in enumerate(parts):
        payload = msgpack.unpackb(part, strict_map_key=False)
        if len(parts) > 1:
            assert payload["f"] == [i, len(parts)]
            if len(payload["e"]) > 1:  # only a lone oversized entity may exceed the budget
                assert len(part) <= budget
        got = rx.receive((100 + i) & 0xFFFF, payload)
        if i < len(parts) - 1:
            assert got is None
    assert got is not None
    assert got[0] == 100
    assert got[1] == SnapshotReceiver(quantize=QUANT).decode(1, {"e": frame.state})


def test_peers_that_acked_the_same_tick_share_one_encoding() -> None:
    senders = [SnapshotSender(quantize=QUANT) for _ in range(8)]
    world = {i: {"x": float(i), "y": 0.0} for i in range(64)}
    first = ENC.frame(world)
    for s in senders:
        s.encode_frame(10, first, 1_160)
        s.on_ack(10)
    world[1]["x"] = 5.5
    second = ENC.frame(world)
    payloads = [s.encode_frame(11, second, 1_160) for s in senders]
    assert len({p[0] for p in payloads}) == 1  # same baseline seq here: identical bytes
    assert len(second._bodies) == 1  # one delta computed for eight peers


def test_fragmented_frame_is_a_baseline_only_once_every_fragment_is_acked() -> None:
    sender = SnapshotSender()
    world = {i: {"name": f"entity-{i:04d}", "v": i} for i in range(200)}
    frame = SnapshotEncoder().frame(world)
    parts = sender.encode_frame(500, frame, 1_160)
    assert len(parts) >= 3
    for i in range(len(parts) - 1):
        sender.on_ack(500 + i)
    assert sender.baseline_for(500 + len(parts)) is None
    sender.on_ack(500 + len(parts) - 1)
    assert sender.baseline_for(500 + len(parts)) == 500


def test_assembler_refuses_mismatched_or_oversized_fragments() -> None:
    asm = FragmentAssembler(Limits(max_snapshot_entities=10))
    assert asm.add(5, 0, 2, {1: {"a": 1}}) is None
    with pytest.raises(DecodeError):
        asm.add(6, 1, 3, {2: {"a": 1}})  # count changed mid-frame
    with pytest.raises(DecodeError):
        asm.add(9, 1, 2, {i: {"a": 1} for i in range(11)})  # over the entity limit
    assert asm.add(20, 0, 2, {1: {"a": 1}}) is None
    with pytest.raises(DecodeError):
        asm.add(21, 1, 2, {1: {"a": 2}})  # the same entity twice


def test_assembler_keeps_at_most_two_partial_frames() -> None:
    asm = FragmentAssembler(Limits())
    for frame in range(50):
        asm.add(frame * 10, 0, 2, {frame: {"a": 1}})
    assert len(asm._partial) == 2


def test_bad_fragment_headers_are_decode_errors() -> None:
    rx = SnapshotReceiver()
    for f in ([0, 1], [2, 2], [-1, 3], [0, MAX_FRAGMENTS + 1], "x", [0]):
        with pytest.raises(DecodeError):
            rx.receive(1, {"e": {}, "f": f})
    with pytest.raises(DecodeError):
        rx.receive(1, {"e": {}, "b": 0, "f": [0, 2]})  # fragments are full snapshots only
    with pytest.raises(DecodeError):
        rx.decode(1, {"e": {}, "f": [0, 2]})  # decode() takes no fragments


def test_encoder_refuses_what_a_receiver_would() -> None:
    with pytest.raises(EncodeError):
        ENC.frame({1: {"x": "not a number"}})
    with pytest.raises(EncodeError):
        SnapshotEncoder(limits=Limits(max_str_len=4)).frame({1: {"name": "too long"}})
