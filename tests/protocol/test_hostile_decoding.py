"""Hostile input against the pure decoders (issue 9): the work done and the memory
built or retained are bounded by the input size and ``Limits``.

Work is measured with counters, never with time: Python lines executed inside
``netcode/protocol`` (a deterministic trace count), bytes allocated (tracemalloc
peak), objects built, and comparisons made. Each attack of the issue is replayed
as an example, with the numbers it had before the fix in its docstring.
"""

from __future__ import annotations

import contextlib
import sys
import tracemalloc
from collections.abc import Callable
from types import FrameType
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from netcode.config import Limits
from netcode.errors import DecodeError, EncodeError, ProtocolError
from netcode.protocol import wire
from netcode.protocol.snapshot import EntityId, SnapshotReceiver, SnapshotSender, apply_delta

State = dict[EntityId, dict[str, Any]]
DEFAULT = Limits()


# -- counters -------------------------------------------------------------------------


class LineCounter:
    """Lines of Python executed inside netcode/protocol while running a function.

    A loop over n items executes O(n) lines, so a decoder that is O(bytes) shows
    lines <= a * bytes + b, whatever the machine's speed.
    """

    def __init__(self) -> None:
        self.lines = 0

    def _call(self, frame: FrameType, event: str, arg: object) -> Any:
        if "netcode/protocol" in frame.f_code.co_filename.replace("\\", "/"):
            return self._line
        return None

    def _line(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.lines += 1
        return self._line

    def run(self, fn: Callable[[], object]) -> object:
        """``fn()``, or the ProtocolError it raised (returned, not raised)."""
        previous = sys.gettrace()
        sys.settrace(self._call)
        try:
            return fn()
        except ProtocolError as exc:
            return exc
        finally:
            sys.settrace(previous)


def peak_allocated(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while ``fn`` runs (a ProtocolError it raises is expected)."""
    tracemalloc.start()
    try:
        with contextlib.suppress(ProtocolError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def containers_and_elements(obj: object) -> tuple[int, int]:
    """(arrays + maps, their elements) in a decoded value: the objects decoding built."""
    stack, containers, elements = [obj], 0, 0
    while stack:
        value = stack.pop()
        if type(value) is list or type(value) is dict:
            containers += 1
            elements += len(value)
            stack.extend(value.values() if type(value) is dict else value)
    return containers, elements


def snapshot_fields(state: State) -> int:
    """Fields as ``max_snapshot_fields`` counts them: every field, plus every array/map
    inside a value and every element of one (computed here independently)."""
    total = 0
    for entity in state.values():
        total += len(entity)
        for value in entity.values():
            containers, elements = containers_and_elements(value)
            total += containers + elements
    return total


def snapshot_packet(seq: int, payload: object) -> bytes:
    """A SNAPSHOT envelope built by hand, as a rogue peer would (no sender checks)."""
    return bytes(msgpack.packb([1, 3, seq, 0, 0, 0, payload]))


def receive(rx: SnapshotReceiver, data: bytes, limits: Limits = DEFAULT) -> State:
    """The pure receive path of a snapshot packet: parse, then decode."""
    msg = wire.parse(data, limits)
    assert isinstance(msg, wire.Snapshot)
    return rx.decode(msg.seq, msg.payload)


# -- wire: O(bytes) work and memory, at most max_containers containers -----------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
# Container-heavy structures: the cheap-to-send, expensive-to-build kind.
nested: st.SearchStrategy[Any] = st.recursive(
    scalars | st.just([]) | st.just({}),
    lambda inner: (
        st.lists(inner, max_size=12)
        | st.dictionaries(st.text(max_size=3) | st.integers(-9, 9), inner, max_size=6)
    ),
    max_leaves=80,
)


# Measured worst cases (test_the_costliest_shapes...): ~13 lines and ~110 bytes of Python
# objects per input byte (nested one-byte arrays; empty maps).
LINES_PER_BYTE = 16
BYTES_PER_BYTE = 128


@given(st.binary(max_size=3000))
def test_any_bytes_build_at_most_one_object_per_byte(data: bytes) -> None:
    counter = LineCounter()
    result = counter.run(lambda: wire.parse(data))
    if isinstance(result, (wire.State, wire.Snapshot, wire.Event)):
        containers, elements = containers_and_elements(result.payload)
        assert containers + elements <= len(data)
    assert counter.lines <= LINES_PER_BYTE * len(data) + 200


@given(nested, st.integers(1, 48), st.sampled_from([wire.MsgType.EVENT, wire.MsgType.STATE]))
def test_decoding_is_linear_in_the_input_and_capped_in_containers(
    payload: Any, max_containers: int, kind: wire.MsgType
) -> None:
    """Any payload, with any container budget: decoding either refuses it or builds
    at most max_containers containers, in work and memory linear in its size."""
    limits = Limits(max_containers=max_containers)
    head = [1, 2] if kind is wire.MsgType.EVENT else [1, 1, 0, 0, 0, 0]
    data = bytes(msgpack.packb([*head, payload]))
    counter = LineCounter()
    result = counter.run(lambda: wire.parse(data, limits))
    containers, _ = containers_and_elements(payload)
    if isinstance(result, ProtocolError):
        assert isinstance(result, DecodeError)
    else:
        assert isinstance(result, (wire.Event, wire.State))
        assert containers <= max_containers  # what is delivered respects the budget
    if containers > max_containers:
        assert isinstance(result, DecodeError)
    assert counter.lines <= LINES_PER_BYTE * len(data) + 200
    assert peak_allocated(lambda: wire.parse(data, limits)) <= BYTES_PER_BYTE * len(data) + 16_384


@pytest.mark.parametrize(
    "payload",
    [
        [[[]] for _ in range(2700)],  # the most walk per byte: 2 containers in 2 bytes
        [{j: [] for j in range(100)} for _ in range(40)],
        [{} for _ in range(4000)],
        [None] * 4000,
    ],
    ids=["pairs", "maps", "empty-maps", "nils"],
)
def test_the_costliest_shapes_stay_within_the_linear_bound(payload: Any) -> None:
    data = bytes(msgpack.packb([1, 2, payload]))
    counter = LineCounter()
    assert counter.run(lambda: wire.parse(data)) == wire.Event(payload)
    assert counter.lines <= LINES_PER_BYTE * len(data) + 200
    assert peak_allocated(lambda: wire.parse(data)) <= BYTES_PER_BYTE * len(data) + 16_384


BOMB_MAPS: list[list[Any]] = [[{} for _ in range(4000)] for _ in range(15)]
BOMB_LISTS: list[list[Any]] = [[[] for _ in range(4000)] for _ in range(15)]


@pytest.mark.parametrize(
    "data",
    [
        bytes(msgpack.packb([1, 2, BOMB_MAPS])),
        bytes(msgpack.packb([1, 2, BOMB_LISTS])),
        snapshot_packet(1, {"e": BOMB_MAPS}),
    ],
    ids=["event-maps", "event-arrays", "snapshot-maps"],
)
def test_attack_61_kb_of_nested_empty_containers(data: bytes) -> None:
    """Before: a 61 KB EVENT of nested empty maps decoded into ~4.5 MB of objects
    and a walk over 60,000 containers (~20 ms). Now decoding stops at the budget."""
    assert 60_000 <= len(data) <= DEFAULT.max_packet_bytes
    counter = LineCounter()
    err = counter.run(lambda: wire.parse(data))
    assert isinstance(err, DecodeError) and "max_containers" in str(err)
    # The budget hook runs once per container up to the cap; no walk follows.
    assert counter.lines <= 4 * DEFAULT.max_containers + 200
    assert peak_allocated(lambda: wire.parse(data)) < 1_500_000


def test_attack_1_mib_chunked_event_of_empty_maps() -> None:
    """Before: a 1 MiB chunked event of empty maps built ~70 MB in 0.4 s. Now the
    reassembled event is refused after max_containers maps (~0.6 MB)."""
    event = bytes(msgpack.packb([1, 2, [[{} for _ in range(4000)] for _ in range(256)]]))
    assert 1_000_000 <= len(event) <= DEFAULT.max_event_bytes
    asm = wire.ChunkAssembler()
    whole = None
    for chunk in wire.split_chunks(event, 7, DEFAULT.max_packet_bytes - wire.CHUNK_OVERHEAD):
        parsed = wire.parse(wire.serialize(chunk))
        assert isinstance(parsed, wire.Chunk)
        whole = asm.feed(parsed)
    assert whole == event
    counter = LineCounter()
    err = counter.run(lambda: wire.parse_reassembled(event))
    assert isinstance(err, DecodeError) and "max_containers" in str(err)
    assert counter.lines <= 4 * DEFAULT.max_containers + 200  # not per map of the 1 MiB
    assert peak_allocated(lambda: wire.parse_reassembled(event)) < 1_500_000


def test_an_event_the_sender_accepts_is_never_refused_for_containers() -> None:
    limits = Limits(max_containers=100)
    payload: list[Any] = [{"id": i, "pos": [i, i]} for i in range(49)] + [
        []
    ]  # 1 + 49 * 2 + 1 = 100
    packets = wire.encode_reliable(payload, 1, limits)
    assert wire.parse(packets[0], limits) == wire.Event(payload)
    with pytest.raises(EncodeError, match="max_containers"):
        wire.encode_reliable([*payload, []], 1, limits)


# -- snapshots: the attacks of the issue ------------------------------------------------


def test_attack_deltas_adding_4000_fields_to_one_entity() -> None:
    """Before: 270 deltas each adding ~4,000 fields (~40 KB) to one entity took the
    victim from 70 to 980 MB, every ring slot holding its own copy of the growing
    entity. Now each is refused and nothing is retained."""
    rx = SnapshotReceiver()
    receive(rx, snapshot_packet(0, {"e": {1: {"x": 0}}}))
    for seq in range(1, 271):
        fields = {f"f{seq}.{j}": j for j in range(4000)}
        data = snapshot_packet(seq, {"b": 0, "e": {1: fields}})
        assert 40_000 <= len(data) <= DEFAULT.max_packet_bytes
        with pytest.raises(DecodeError, match="max_entity_fields"):
            receive(rx, data)
    assert [(seq, state) for seq, state in rx.retained()] == [(0, {1: {"x": 0}})]


def test_attack_growing_an_entity_under_the_per_packet_limit() -> None:
    """The same attack in steps a single packet allows: the entity and the snapshot
    stop growing at the limits, and the ring holds at most ring_size of them."""
    rx = SnapshotReceiver()
    receive(rx, snapshot_packet(0, {"e": {0: {}}}))
    newest, refused = 0, 0
    for seq in range(1, 300):
        eid = seq % 40  # 200 new fields to one of 40 entities, on the newest accepted
        fields = {f"f{seq}.{j}": j for j in range(200)}
        try:
            receive(rx, snapshot_packet(seq, {"b": newest, "e": {eid: fields}}))
            newest = seq
        except DecodeError as exc:
            assert "max_entity_fields" in str(exc) or "max_snapshot_fields" in str(exc)
            refused += 1
    assert refused >= 270
    held = rx.retained()
    assert len(held) <= 64
    distinct: dict[int, dict[str, Any]] = {}
    for _, state in held:
        assert snapshot_fields(state) <= DEFAULT.max_snapshot_fields
        assert all(len(e) <= DEFAULT.max_entity_fields for e in state.values())
        distinct.update((id(e), e) for e in state.values())
    # Shared, not copied: every accepted delta built only the entity it changed.
    assert sum(map(len, distinct.values())) <= DEFAULT.max_snapshot_fields


class CountingStr(str):
    """A field name that counts how often it is compared or hashed."""

    calls = 0

    def __eq__(self, other: object) -> bool:
        CountingStr.calls += 1
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        CountingStr.calls += 1
        return str.__hash__(self)


def test_attack_removal_list_naming_4000_missing_fields() -> None:
    """Before: an 'x' list of 3,000-4,000 names was checked field by field against a
    list (O(n*m)): each < 64 KB packet blocked the loop ~500 ms. Now it is refused
    by length, and removals are set lookups (O(n + m))."""
    rx = SnapshotReceiver()
    receive(rx, snapshot_packet(0, {"e": {1: {f"f{j}": j for j in range(200)}}}))
    names = [f"missing.{j}" for j in range(4000)]
    data = snapshot_packet(1, {"b": 0, "e": {}, "x": {1: names}})
    assert len(data) <= DEFAULT.max_packet_bytes
    counter = LineCounter()
    err = counter.run(lambda: receive(rx, data))
    assert isinstance(err, DecodeError) and "max_entity_fields" in str(err)
    assert counter.lines <= 4 * len(data) + 200  # the wire walk over the packet, once
    # Within the limits, missing names are refused after one set lookup each at most
    # (test_removals_cost_one_lookup_per_name_and_field counts them).
    few = snapshot_packet(2, {"b": 0, "e": {}, "x": {1: names[:256]}})
    err = LineCounter().run(lambda: receive(rx, few))
    assert isinstance(err, DecodeError) and "unknown fields" in str(err)
    assert [seq for seq, _ in rx.retained()] == [0]


def test_removals_cost_one_lookup_per_name_and_field() -> None:
    m, n = 4000, 2000  # fields, names removed (every other field)
    baseline: State = {1: {f"f{j}": j for j in range(m)}}
    CountingStr.calls = 0
    payload = {"b": 0, "e": {}, "x": {1: [CountingStr(f"f{j}") for j in range(0, m, 2)]}}
    state = apply_delta(baseline, payload)
    assert sorted(state[1]) == sorted(f"f{j}" for j in range(1, m, 2))
    assert CountingStr.calls <= 3 * (n + m)  # a list scan made ~n * m / 2 = 4,000,000


def test_unchanged_entities_are_shared_with_the_baseline() -> None:
    tx, rx = SnapshotSender(), SnapshotReceiver()
    world: State = {i: {f"f{j}": i * j for j in range(10)} for i in range(200)}
    rx.decode(0, tx.encode(0, world))
    tx.on_ack(0)
    world[7]["f3"] = -1
    assert rx.decode(1, tx.encode(1, world))[7]["f3"] == -1
    (_, base), (_, new) = rx.retained()
    assert [eid for eid in new if new[eid] is not base[eid]] == [7]
    assert new[7] == {**base[7], "f3": -1}


# -- snapshots: properties over hostile payloads ----------------------------------------

SMALL = Limits(
    max_snapshot_entities=6,
    max_entity_fields=5,
    max_snapshot_fields=16,
    max_snapshot_bytes=300,
    max_depth=6,
    max_containers=64,
)
RING = 4

ids = st.integers(0, 8) | st.sampled_from(["a", "p1", "zz"])
names = st.sampled_from(["y", "hp", "n", "inv", "z"]) | st.text(min_size=1, max_size=30)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-300, 300)
    | st.floats(-1e3, 1e3)
    | st.text(max_size=60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
# Sizes around SMALL's limits (6 entities of 5 fields), so both sides of each are hit.
entity_maps = st.dictionaries(ids, st.dictionaries(names, values, max_size=5), max_size=7)
small_entity_maps = st.dictionaries(ids, st.dictionaries(names, values, max_size=3), max_size=3)
delta_bodies = st.fixed_dictionaries(
    {"e": entity_maps},
    optional={
        "r": st.lists(ids, max_size=8),
        "x": st.dictionaries(ids, st.lists(names, max_size=8), max_size=4),
    },
)


def check_within_limits(rx: SnapshotReceiver, limits: Limits, ring: int) -> None:
    held = rx.retained()
    assert len(held) <= ring
    distinct: dict[int, dict[str, Any]] = {}
    for _, state in held:
        assert len(state) <= limits.max_snapshot_entities
        assert snapshot_fields(state) <= limits.max_snapshot_fields
        assert len(msgpack.packb(state)) <= limits.max_snapshot_bytes
        for entity in state.values():
            assert len(entity) <= limits.max_entity_fields
            distinct[id(entity)] = entity
    assert sum(map(len, distinct.values())) <= ring * limits.max_snapshot_fields


class HostileSnapshotStream(RuleBasedStateMachine):
    """Any sequence of full and delta snapshots, against held baselines or not,
    removing what exists or not, growing entities past the limits: what the
    receiver retains stays within ring_size x the limits, and a refused snapshot
    is never stored."""

    def __init__(self) -> None:
        super().__init__()
        self.rx = SnapshotReceiver(ring_size=RING, quantize={"x": 0.5}, limits=SMALL)
        self.seq = 65530  # crosses the 16-bit wrap

    def _send(self, payload: dict[str, Any]) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        try:
            got = receive(self.rx, snapshot_packet(self.seq, payload), SMALL)
        except ProtocolError:
            assert not self.rx.has(self.seq)
            return
        newest = self.rx.retained()[-1]
        assert newest[0] == self.seq and newest[1].keys() == got.keys()

    def _baseline(self, data: st.DataObject) -> tuple[int, State]:
        """A held snapshot, mostly; sometimes a sequence that is not held."""
        held = self.rx.retained()
        use_held = data.draw(st.integers(0, 4)) > 0
        if held and use_held:
            seq, state = data.draw(st.sampled_from(held))
            return seq, state
        return (self.seq - data.draw(st.integers(-1, 2 * RING))) & 0xFFFF, {}

    @initialize()
    def start(self) -> None:
        self._send({"e": {1: {"y": 1, "x": 4}, "a": {"hp": 2}}})
        assert len(self.rx.retained()) == 1

    @rule(entities=entity_maps)
    def full(self, entities: State) -> None:
        self._send({"e": entities})

    @rule(body=delta_bodies, back=st.integers(1, RING + 1))
    def blind_delta(self, body: dict[str, Any], back: int) -> None:
        self._send({"b": (self.seq + 1 - back) & 0xFFFF, **body})

    @rule(data=st.data())
    def delta(self, data: st.DataObject) -> None:
        """Adds and changes, removals of existing entities and fields (and a few bogus)."""
        base_seq, base = self._baseline(data)
        payload: dict[str, Any] = {"b": base_seq, "e": data.draw(small_entity_maps)}
        known = sorted(base, key=str)
        if known:
            payload["r"] = data.draw(st.lists(st.sampled_from(known) | ids, max_size=2))
            eid = data.draw(st.sampled_from(known))
            fields = sorted(base[eid]) or ["nope"]
            payload["x"] = {eid: data.draw(st.lists(st.sampled_from(fields) | names, max_size=3))}
            payload["e"][data.draw(st.sampled_from(known))] = {"x": data.draw(st.integers(-9, 9))}
        self._send(payload)

    @rule(data=st.data(), count=st.integers(1, 6), size=st.integers(0, 120))
    def grow(self, data: st.DataObject, count: int, size: int) -> None:
        """The issue's attack in miniature: more and bigger fields on one entity."""
        base_seq, base = self._baseline(data)
        eid = data.draw(st.sampled_from(sorted(base, key=str)) if base else ids)
        fields = {f"g{self.seq}.{i}": "v" * size for i in range(count)}
        self._send({"b": base_seq, "e": {eid: fields}})

    @invariant()
    def retained_within_limits(self) -> None:
        check_within_limits(self.rx, SMALL, RING)


TestHostileSnapshotStream = HostileSnapshotStream.TestCase
TestHostileSnapshotStream.settings = settings(max_examples=50, stateful_step_count=25)


@given(entity_maps, delta_bodies)
def test_snapshot_decode_work_is_linear_in_the_payload_plus_the_limits(
    baseline: State, body: dict[str, Any]
) -> None:
    """Whatever the baseline held (at most the limits) and whatever the payload
    says, one decode executes O(payload bytes + limits) lines and allocates as much."""
    rx = SnapshotReceiver(ring_size=RING, limits=SMALL)
    with contextlib.suppress(ProtocolError):
        rx.decode(0, msgpack.unpackb(msgpack.packb({"e": baseline}), strict_map_key=False))
    payload = msgpack.unpackb(msgpack.packb({"b": 0, **body}), strict_map_key=False)
    size = len(msgpack.packb(payload))
    # What a baseline within SMALL can hold: entities + fields + bytes.
    held = SMALL.max_snapshot_entities + SMALL.max_snapshot_fields + SMALL.max_snapshot_bytes
    counter = LineCounter()
    counter.run(lambda: rx.decode(1, payload))
    assert counter.lines <= 4 * size + 2 * held + 200
    assert peak_allocated(lambda: rx.decode(2, payload)) <= 50 * (size + held) + 4096
    check_within_limits(rx, SMALL, RING)


@given(entity_maps)
def test_the_sender_refuses_exactly_what_the_receiver_refuses(entities: State) -> None:
    tx, rx = SnapshotSender(limits=SMALL), SnapshotReceiver(limits=SMALL)
    full = msgpack.unpackb(msgpack.packb({"e": entities}), strict_map_key=False)
    try:
        payload = tx.encode(0, entities)
    except EncodeError:
        with pytest.raises(DecodeError):
            rx.decode(0, full)
        return
    assert payload == full
    assert rx.decode(0, full) == full["e"]
