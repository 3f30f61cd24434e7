"""Delta snapshots: exact reconstruction under any delivery pattern, strict decoding."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.config import Limits
from netcode.errors import (
    ConfigError,
    DecodeError,
    DeltaBaselineMissing,
    EncodeError,
    ProtocolError,
)
from netcode.protocol.reliability import ReliabilityEndpoint
from netcode.protocol.snapshot import (
    EntityId,
    SnapshotReceiver,
    SnapshotSender,
    apply_delta,
    check_entities,
    encode_delta,
    encode_full,
)

State = dict[EntityId, dict[str, Any]]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.binary(max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
entity_ids = st.one_of(st.integers(0, 6), st.sampled_from(["p1", "p2", "7"]))
field_names = st.sampled_from(["x", "y", "hp", "name", "inv"])
states = st.dictionaries(entity_ids, st.dictionaries(field_names, values, max_size=4), max_size=5)
# Flat states for the delivery-pattern test, where the pattern is what varies.
small_values = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, "a", None, True, [1, 2]]))
flat_states = st.dictionaries(
    entity_ids, st.dictionaries(field_names, small_values, max_size=3), max_size=5
)


def typed_eq(a: Any, b: Any) -> bool:
    """== that also requires equal types all the way down (1 vs 1.0 vs True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(typed_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(typed_eq(v, b[k]) for k, v in a.items())
    return bool(a == b)


def msgpack_round_trip(obj: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(obj), raw=False, strict_map_key=False)


@given(states, states)
def test_apply_of_encode_is_the_new_state(baseline: State, new: State) -> None:
    payload = encode_delta(baseline, new, 7)
    assert typed_eq(apply_delta(baseline, payload), new)
    wire = msgpack_round_trip(payload)
    assert typed_eq(apply_delta(baseline, wire), new)
    assert typed_eq(msgpack_round_trip(encode_full(new))["e"], new)


int_states = st.dictionaries(
    entity_ids,
    st.dictionaries(st.sampled_from(["x", "y", "name"]), st.integers(-(2**62), 2**62), max_size=3),
    max_size=5,
)


@given(int_states, int_states)
def test_relative_fields_round_trip(baseline: State, new: State) -> None:
    payload = msgpack_round_trip(encode_delta(baseline, new, 1, relative={"x", "y"}))
    assert typed_eq(apply_delta(baseline, payload, relative={"x", "y"}), new)


def test_relative_fields_are_sent_as_differences() -> None:
    base: State = {1: {"x": 100000, "y": 5}, 2: {"y": 1}}
    new: State = {1: {"x": 100007, "y": 5}, 2: {"x": 300, "y": 0}, 3: {"x": 9}}
    payload = encode_delta(base, new, 4, relative={"x", "y"})
    # 1.x moved by 7; 2.x is new to the entity (absolute); 3 is a new entity (absolute)
    assert payload == {"b": 4, "e": {1: {"x": 7}, 2: {"x": 300, "y": -1}, 3: {"x": 9}}}


@pytest.mark.parametrize("step", [1.5, "1", None, 2**62])
def test_bad_relative_step_is_a_decode_error(step: object) -> None:
    with pytest.raises(DecodeError):
        apply_delta(
            {1: {"x": 2**62 - 1 if step == 2**62 else 5}}, {"b": 0, "e": {1: {"x": step}}}, {"x"}
        )


@settings(max_examples=30)
@given(states)
def test_delta_of_identical_state_is_empty(state: State) -> None:
    assert encode_delta(state, state, 3) == {"b": 3, "e": {}}


@given(states, states)
def test_apply_does_not_mutate_the_baseline(baseline: State, new: State) -> None:
    before = msgpack_round_trip(baseline)
    apply_delta(baseline, encode_delta(baseline, new, 1))
    assert typed_eq(msgpack_round_trip(baseline), before)


def test_delta_lists_only_what_changed() -> None:
    base: State = {1: {"x": 1, "y": 2, "tag": "a"}, 2: {"x": 0}, "s": {"hp": 3}}
    new: State = {1: {"x": 1, "y": 3}, "s": {"hp": 3}, 4: {"x": 9}}
    payload = encode_delta(base, new, 10)
    assert payload == {"b": 10, "e": {1: {"y": 3}, 4: {"x": 9}}, "r": [2], "x": {1: ["tag"]}}


# -- sender/receiver under arbitrary delivery ---------------------------------

deliveries = st.lists(
    st.tuples(
        st.sampled_from(["ok", "ok", "ok", "drop", "dup", "late"]),  # sender -> receiver
        st.sampled_from(["ok", "ok", "drop", "late"]),  # receiver's ack packet -> sender
    ),
    min_size=1,
    max_size=40,
)


@given(st.lists(flat_states, min_size=1, max_size=10), deliveries, st.sampled_from([4, 8, 64]))
def test_receiver_reconstructs_exactly_what_was_sent(
    seq_states: list[State], pattern: list[tuple[str, str]], ring: int
) -> None:
    """Loss, duplication and reordering of snapshots and of acks, over real endpoints."""
    tx_ep, rx_ep = ReliabilityEndpoint(initial_seq=65530), ReliabilityEndpoint()
    sender, receiver = SnapshotSender(ring_size=ring), SnapshotReceiver(ring_size=ring)
    sent: dict[int, State] = {}
    late_data: list[tuple[Any, bytes]] = []
    late_acks: list[Any] = []
    decoded = 0
    for i, (fwd, back) in enumerate(pattern):
        now = i / 60
        state = seq_states[i % len(seq_states)]
        seq = tx_ep.next_seq
        payload = sender.encode(seq, state)
        hdr = tx_ep.next_header(now)
        sent[seq] = state
        assert typed_eq(sender.sent(seq), state)
        packets = {"ok": [(hdr, payload)], "dup": [(hdr, payload)] * 2, "drop": []}.get(fwd, [])
        if fwd == "late":
            late_data.append((hdr, msgpack.packb(payload)))
        elif late_data and i % 3 == 0:
            h, data = late_data.pop(0)
            packets.append((h, msgpack.unpackb(data, strict_map_key=False)))
        for h, p in packets:
            if rx_ep.receive(h, now):
                got = receiver.decode(h.seq, msgpack_round_trip(p))  # never DeltaBaselineMissing
                assert typed_eq(got, sent[h.seq])
                decoded += 1
        ack = rx_ep.next_header(now)
        arrivals = {"ok": [ack], "drop": [], "late": []}[back]
        if back == "late":
            late_acks.append(ack)
        elif late_acks:
            arrivals.append(late_acks.pop())
        for a in arrivals:
            tx_ep.receive(a, now)
        for acked in tx_ep.take_acked():
            sender.on_ack(acked)
    assert sender.full_count + sender.delta_count == len(pattern)
    if all(f == "ok" and b == "ok" for f, b in pattern) and len(pattern) > 1:
        assert sender.full_count == 1  # clean link: one full snapshot, then deltas


def test_full_when_nothing_acked_and_delta_after_ack() -> None:
    tx, rx = SnapshotSender(), SnapshotReceiver()
    p0 = tx.encode(0, {1: {"x": 1}})
    assert "b" not in p0
    p1 = tx.encode(1, {1: {"x": 2}})
    assert "b" not in p1  # still nothing acked
    assert rx.decode(0, p0) == {1: {"x": 1}}
    tx.on_ack(0)
    p2 = tx.encode(2, {1: {"x": 2}, 2: {"y": 0}})
    assert p2 == {"b": 0, "e": {1: {"x": 2}, 2: {"y": 0}}}
    assert rx.decode(2, p2) == {1: {"x": 2}, 2: {"y": 0}}


def test_falls_back_to_full_when_the_acked_baseline_is_too_old() -> None:
    tx = SnapshotSender(ring_size=8)
    tx.encode(100, {1: {"x": 0}})
    tx.on_ack(100)
    assert tx.baseline_for(107) == 100
    assert "b" in tx.encode(107, {1: {"x": 1}})
    assert tx.baseline_for(108) is None
    assert "b" not in tx.encode(108, {1: {"x": 2}})


def test_on_ack_of_non_snapshot_or_older_seq_is_ignored() -> None:
    tx = SnapshotSender()
    tx.encode(5, {1: {"x": 0}})
    tx.encode(6, {1: {"x": 1}})
    tx.on_ack(4)  # a plain state packet
    assert tx.baseline_for(7) is None
    tx.on_ack(6)
    tx.on_ack(5)  # older ack arriving late does not move the baseline back
    assert tx.baseline_for(7) == 6


def test_missing_baseline_raises_and_withdrawn_ack_heals_the_stream() -> None:
    tx, rx = SnapshotSender(ring_size=4), SnapshotReceiver(ring_size=4)
    tx_ep, rx_ep = ReliabilityEndpoint(), ReliabilityEndpoint()
    p0 = tx.encode(tx_ep.next_seq, {1: {"x": 0}})
    h0 = tx_ep.next_header(0.0)
    assert rx_ep.receive(h0, 0.0)
    rx.decode(h0.seq, p0)
    rx.reset()  # e.g. the receiver lost its state
    tx_ep.receive(rx_ep.next_header(0.0), 0.0)
    for s in tx_ep.take_acked():
        tx.on_ack(s)
    failures = fulls = 0
    for i in range(1, 12):
        payload = tx.encode(tx_ep.next_seq, {1: {"x": i}})
        hdr = tx_ep.next_header(i)
        assert rx_ep.receive(hdr, i)
        try:
            assert rx.decode(hdr.seq, payload) == {1: {"x": i}}
            fulls += "b" not in payload
        except DeltaBaselineMissing:
            failures += 1
            rx_ep.discard_received(hdr.seq)
        tx_ep.receive(rx_ep.next_header(i), i)
        for s in tx_ep.take_acked():
            tx.on_ack(s)
    assert 1 <= failures <= 3  # until the stale baseline ages out of the ring
    assert fulls == 1  # then one full snapshot and deltas again


def test_sender_copies_input_so_later_mutation_does_not_leak() -> None:
    tx = SnapshotSender()
    world: dict[EntityId, dict[str, Any]] = {1: {"pos": [0, 0]}}
    tx.encode(0, world)
    tx.on_ack(0)
    world[1]["pos"][0] = 5  # the game mutates in place
    assert tx.encode(1, world) == {"b": 0, "e": {1: {"pos": [5, 0]}}}


def test_receiver_returns_a_copy_the_game_may_mutate() -> None:
    tx, rx = SnapshotSender(), SnapshotReceiver()
    got = rx.decode(0, tx.encode(0, {1: {"pos": [1, 2]}}))
    got[1]["pos"].append(3)
    got[1]["new"] = 1
    tx.on_ack(0)
    assert rx.decode(1, tx.encode(1, {1: {"pos": [1, 2]}})) == {1: {"pos": [1, 2]}}


@given(
    st.lists(
        st.dictionaries(
            st.integers(0, 5),
            st.fixed_dictionaries(
                {"x": st.floats(-1e6, 1e6), "y": st.integers(-1000, 1000), "k": st.text(max_size=2)}
            ),
            max_size=5,
        ),
        min_size=1,
        max_size=10,
    )
)
def test_quantized_fields_round_to_the_step_on_both_ends(frames: list[State]) -> None:
    q = {"x": 0.01, "y": 0.5}
    tx, rx = SnapshotSender(quantize=q), SnapshotReceiver(quantize=q)
    for seq, frame in enumerate(frames):
        got = rx.decode(seq, msgpack_round_trip(tx.encode(seq, frame)))
        assert got == tx.sent(seq)
        assert got.keys() == frame.keys()
        for eid, fields in frame.items():
            assert abs(got[eid]["x"] - fields["x"]) <= 0.005 + 1e-9 * abs(fields["x"])
            assert abs(got[eid]["y"] - fields["y"]) <= 0.25
            assert got[eid]["k"] == fields["k"]
        tx.on_ack(seq)


def test_quantized_payload_carries_ints() -> None:
    tx = SnapshotSender(quantize={"x": 0.01})
    assert tx.encode(0, {1: {"x": 1.234, "y": 1.234}}) == {"e": {1: {"x": 123, "y": 1.234}}}
    with pytest.raises(ValueError):
        tx.encode(1, {1: {"x": "left"}})
    with pytest.raises(ValueError):
        tx.encode(1, {1: {"x": float("inf")}})
    with pytest.raises(ValueError):
        SnapshotSender(quantize={"x": 0})


@pytest.mark.parametrize(
    "entities",
    [
        {True: {"x": 1}},
        {1.5: {"x": 1}},
        {(1,): {"x": 1}},
        {1: {2: 1}},
        {1: 5},
        {1: None},
        {1: ["x"]},
        [1, 2],
        "entities",
        None,
    ],
)
def test_sender_rejects_bad_entities_with_encode_error(entities: Any) -> None:
    """A game's mistake is an EncodeError (a ValueError) at the send call, never a
    TypeError/AttributeError from deep inside, and it leaves the sender usable."""
    tx = SnapshotSender(quantize={"x": 0.5})
    with pytest.raises(EncodeError):
        tx.encode(0, entities)
    with pytest.raises(EncodeError):
        check_entities(entities)
    check_entities({1: {"x": [1, {"k": b"v"}]}, "p": {}})
    with pytest.raises(EncodeError, match="cannot be encoded"):
        check_entities({1: {"x": object()}})  # the size check packs it: msgpack-able only
    with pytest.raises(EncodeError):
        tx.encode(0, {1: {"x": "not a number"}})
    assert tx.encode(0, {1: {"x": 1.0}}) == {"e": {1: {"x": 2}}}


def test_bad_constructor_arguments_are_config_errors() -> None:
    for kwargs in ({"ring_size": 3}, {"ring_size": 1}, {"ring_size": "64"}, {"quantize": {"x": 0}}):
        with pytest.raises(ConfigError):
            SnapshotSender(**kwargs)
    for cls in (SnapshotSender, SnapshotReceiver):
        with pytest.raises(ConfigError, match="limits"):
            cls(limits={"max_snapshot_entities": 3})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {},
        {"e": []},
        {"e": {}, "z": 1},
        {"e": {1.5: {}}},
        {"e": {True: {}}},
        {"e": {1: {2: 3}}},
        {"e": {1: []}},
        {"e": {}, "r": [1]},
        {"b": -1, "e": {}},
        {"b": "0", "e": {}},
        {"b": 0, "e": {}, "r": {}},
        {"b": 0, "e": {}, "r": [None]},
        {"b": 0, "e": {}, "x": {1: "f"}},
        {"b": 0, "e": {}, "r": [9]},
        {"b": 0, "e": {}, "x": {9: ["f"]}},
        {"b": 10, "e": {}},
    ],
)
def test_malformed_payloads_are_decode_errors(payload: object) -> None:
    rx = SnapshotReceiver()
    rx.decode(0, {"e": {1: {"f": 1}}})
    with pytest.raises(DecodeError):
        rx.decode(5, payload)


def test_too_many_entities_is_a_decode_error() -> None:
    rx = SnapshotReceiver(limits=Limits(max_snapshot_entities=3))
    with pytest.raises(DecodeError):
        rx.decode(0, {"e": {i: {} for i in range(4)}})
    rx.decode(0, {"e": {i: {} for i in range(3)}})
    with pytest.raises(DecodeError):
        rx.decode(1, {"b": 0, "e": {9: {}}})


def test_unknown_baseline_is_delta_baseline_missing() -> None:
    rx = SnapshotReceiver()
    with pytest.raises(DeltaBaselineMissing):
        rx.decode(5, {"b": 4, "e": {}})
    assert not rx.has(5)


def test_quantized_field_that_is_not_an_int_on_the_wire_is_rejected() -> None:
    rx = SnapshotReceiver(quantize={"x": 0.1})
    with pytest.raises(DecodeError):
        rx.decode(0, {"e": {1: {"x": 1.5}}})
    assert not rx.has(0)


junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=2), st.integers(-2, 9)), inner, max_size=3)
    ),
    max_leaves=8,
)
# Payload-shaped junk: the real keys with wrong or half-right values, so the
# decoder's checks past the first one are reached too (pure junk rarely gets there).
entity_maps = st.dictionaries(
    st.one_of(entity_ids, scalars), st.one_of(junk, st.dictionaries(field_names, junk)), max_size=3
)
payloads = st.one_of(
    junk,
    st.dictionaries(
        st.sampled_from(["b", "e", "r", "x", "z"]),
        st.one_of(junk, st.integers(0, 70_000), entity_maps, st.lists(entity_ids, max_size=3)),
        max_size=4,
    ),
)


@given(payloads)
def test_any_payload_decodes_or_raises_a_protocol_error(payload: object) -> None:
    rx = SnapshotReceiver(quantize={"x": 0.5})
    rx.decode(0, {"e": {1: {"x": 2, "hp": 3}, "p1": {"y": 1}}})  # a baseline for "b": 0
    try:
        result = rx.decode(1, payload)
    except ProtocolError:  # DecodeError or DeltaBaselineMissing, nothing else
        return
    assert isinstance(result, dict)
    assert all(isinstance(f, dict) for f in result.values())


# -- the test vectors of docs/STATE_SYNC.md section 4.5 -------------------------

VECTORS: list[tuple[int, dict[EntityId, dict[str, Any]], str]] = [
    (
        6,
        {1: {"x": 1.5, "hp": 100}, "p2": {"name": "ann"}},
        "81 a1 65 82 01 82 a1 78 cc 96 a2 68 70 64 a2 70 32 81 a4 6e 61 6d 65 a3 61 6e 6e",
    ),
    (7, {1: {"x": 1.51, "hp": 100}}, "83 a1 62 06 a1 65 81 01 81 a1 78 01 a1 72 91 a2 70 32"),
    (
        8,
        {1: {"x": 1.51}},
        "84 a1 62 06 a1 65 81 01 81 a1 78 01 a1 72 91 a2 70 32 a1 78 81 01 91 a2 68 70",
    ),
]


def test_documented_vectors_encode_and_decode() -> None:
    tx = SnapshotSender(quantize={"x": 0.01})
    rx = SnapshotReceiver(quantize={"x": 0.01})
    for i, (seq, entities, hexbytes) in enumerate(VECTORS):
        payload = tx.encode(seq, entities)
        assert msgpack.packb(payload).hex(" ") == hexbytes
        got = rx.decode(seq, msgpack.unpackb(bytes.fromhex(hexbytes), strict_map_key=False))
        assert got.keys() == entities.keys()
        for eid, fields in entities.items():
            assert got[eid] == pytest.approx(fields)
        if i == 0:
            tx.on_ack(seq)


def test_benchmark_runs_and_deltas_are_smaller_than_fulls() -> None:
    from benchmarks.snapshots import Scenario, simulate

    r = simulate(Scenario("t", "test", quantize=True, rtt_ticks=1), ticks=40)
    assert r["full_snapshots_sent"] >= 1 and r["delta_snapshots_sent"] >= 30
    assert r["delta_bytes_mean"] < r["full_bytes_mean"]
    assert json.loads(json.dumps(r)) == r  # goes into results/snapshots.json as is
