"""Envelope codec: round trips, strict bounded decoding, chunking, spec test vectors."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import Limits
from netcode.errors import DecodeError, EncodeError
from netcode.protocol import wire
from netcode.protocol.wire import (
    CHUNK_OVERHEAD,
    Ack,
    Bye,
    Chunk,
    ChunkAssembler,
    Event,
    Message,
    MsgType,
    Packed,
    Ping,
    Pong,
    Snapshot,
    State,
    encode_reliable,
    encode_stamped,
    pack_payload,
    parse,
    parse_reassembled,
    serialize,
    split_chunks,
    timestamp_us,
    us_elapsed,
)

U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFF_FFFF)

# Payloads as they come back from msgpack: lists, not tuples; str or int keys.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
payloads = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(-1000, 1000), inner, max_size=5)
    ),
    max_leaves=20,
)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(State, U16, U16, U32, U32, payloads),
    st.builds(Snapshot, U16, U16, U32, U32, payloads),
    st.builds(Ack, U16, U16, U32, U32),
    st.builds(Event, payloads),
    st.builds(Ping, U32),
    st.builds(Pong, U32, U32),
    st.builds(Bye, st.text(max_size=50)),
    st.integers(1, 5).flatmap(
        lambda n: st.builds(Chunk, U32, st.integers(0, n - 1), st.just(n), st.binary(max_size=50))
    ),
)


@given(messages)
def test_round_trip(msg: Message) -> None:
    assert parse(serialize(msg)) == msg


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse(data)


@given(messages, st.data())
def test_mutated_packets_raise_only_decode_error(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(serialize(msg))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    with contextlib.suppress(DecodeError):
        parse(bytes(raw[:cut]))


@given(st.lists(st.integers(-(2**63), 2**64 - 1) | st.text() | st.none(), max_size=8))
def test_arbitrary_arrays_raise_only_decode_error(items: list[Any]) -> None:
    with contextlib.suppress(DecodeError):
        parse(msgpack.packb(items))


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit_enforced_both_ways() -> None:
    limits = Limits(max_depth=4)
    ok = Event(_nested(4))
    assert parse(serialize(ok, limits), limits) == ok
    with pytest.raises(EncodeError, match="max_depth"):
        serialize(Event(_nested(5)), limits)
    # A peer that ignores the limit: hand-built envelope.
    raw = msgpack.packb([1, 2, _nested(5)])
    with pytest.raises(DecodeError, match="max_depth"):
        parse(raw, limits)


def test_very_deep_nesting_is_a_decode_error_not_a_crash() -> None:
    raw = b"\x93\x01\x02" + b"\x91" * 5000 + b"\xc0"
    with pytest.raises(DecodeError):
        parse(raw)


def test_size_limits_enforced() -> None:
    limits = Limits(max_packet_bytes=100, max_str_len=10, max_container_len=3)
    with pytest.raises(DecodeError, match="exceeds"):
        parse(b"\x00" * 101, limits)
    with pytest.raises(DecodeError):
        parse(msgpack.packb([1, 2, "x" * 11]), limits)
    with pytest.raises(DecodeError):
        parse(msgpack.packb([1, 2, [1, 2, 3, 4]]), limits)
    with pytest.raises(DecodeError):
        parse(msgpack.packb([1, 2, {"a": 1, "b": 2, "c": 3, "d": 4}]), limits)
    with pytest.raises(EncodeError, match="max_str_len"):
        serialize(Event("é" * 6), limits)  # 12 UTF-8 bytes


def test_container_limit_enforced_both_ways_at_the_boundary() -> None:
    """Payload arrays/maps are capped per message (the envelope is not counted): a
    sender refuses exactly what a receiver drops."""
    limits = Limits(max_containers=40)
    ok = ["x" * 5000, *({"k": []} for _ in range(13)), *([] for _ in range(13))]  # 40
    assert parse(serialize(Event(ok), limits), limits) == Event(ok)
    assert parse(serialize(State(1, 0, 0, 0, ok), limits), limits) == State(1, 0, 0, 0, ok)
    over = [*ok, []]
    with pytest.raises(EncodeError, match="max_containers=40"):
        serialize(Event(over), limits)
    with pytest.raises(EncodeError, match="max_containers=40"):
        pack_payload(over, limits)
    with pytest.raises(DecodeError, match="max_containers=40"):
        parse(msgpack.packb([1, 2, over]), limits)
    with pytest.raises(DecodeError, match="max_containers=40"):
        parse(msgpack.packb([1, 1, 0, 0, 0, 0, over]), limits)


def test_only_packets_longer_than_the_container_limit_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each container takes a byte, so a packet of at most max_containers bytes
    cannot exceed it: the per-packet path decodes without counting hooks."""
    made: list[int] = []
    real = wire._container_budget

    def spy(limit: int) -> Any:
        made.append(limit)
        return real(limit)

    monkeypatch.setattr(wire, "_container_budget", spy)
    limits = Limits(max_containers=8)
    small = msgpack.packb([1, 2, [[], [], [], []]])
    assert len(small) == 8
    assert parse(small, limits) == Event([[], [], [], []])
    assert made == []
    assert parse(msgpack.packb([1, 2, [[]] * 5]), limits) == Event([[]] * 5)  # 9 bytes
    assert made == [8]
    with pytest.raises(DecodeError, match="max_containers=8"):
        parse(msgpack.packb([1, 2, [[]] * 8]), limits)  # 9 payload containers


def test_header_fields_are_range_checked() -> None:
    with pytest.raises(DecodeError, match="seq"):
        parse(msgpack.packb([1, 1, 65536, 0, 0, 0, None]))
    with pytest.raises(DecodeError):
        parse(msgpack.packb([1, 1, True, 0, 0, 0, None]))  # bool is not an int here
    with pytest.raises(DecodeError, match="version"):
        parse(msgpack.packb([2, 1, 0, 0, 0, 0, None]))
    with pytest.raises(DecodeError, match="unknown message type"):
        parse(msgpack.packb([1, 99]))
    with pytest.raises(DecodeError, match="fields"):
        parse(msgpack.packb([1, 4, 1, 2]))
    with pytest.raises(EncodeError):
        State(-1, 0, 0, 0, None)


def test_ext_types_and_bad_keys_rejected() -> None:
    ext = msgpack.packb([1, 2, msgpack.ExtType(1, b"x")])
    with pytest.raises(DecodeError):
        parse(ext)
    with pytest.raises(DecodeError, match="keys"):
        parse(msgpack.packb([1, 2, {1.5: 0}]))
    with pytest.raises(DecodeError):
        parse(msgpack.packb([1, 2, {True: 0}]))
    with pytest.raises(EncodeError, match="keys"):
        serialize(Event({(1, 2): 0}))
    with pytest.raises(EncodeError, match="cannot send"):
        serialize(Event({"x": object()}))
    with pytest.raises(DecodeError, match="binary"):
        parse("text")  # type: ignore[arg-type]


def test_int_keys_allowed_for_entity_maps() -> None:
    msg = Snapshot(1, 0, 0, 0, {7: {"x": 1.0}, 8: {"x": 2.0}})
    assert parse(serialize(msg)) == msg


@given(payloads, U16, U16, U32, U32)
def test_packed_payload_splices_identically(p: Any, seq: int, ack: int, bits: int, t: int) -> None:
    packed = pack_payload(p)
    assert serialize(State(seq, ack, bits, t, packed)) == serialize(State(seq, ack, bits, t, p))


SPEC_VECTORS: list[tuple[str, Message]] = [
    (
        "9701012a2903ce000f424082a178cb3ff8000000000000a179cbc000000000000000",
        State(seq=42, ack=41, ack_bits=3, sent_us=1_000_000, payload={"x": 1.5, "y": -2.0}),
    ),
    ("93010281a463686174a26869", Event({"chat": "hi"})),
    ("930104cd2710", Ping(10_000)),
    ("940105cd27100a", Pong(10_000, 10)),
    ("930106a46c656674", Bye("left")),
    ("960107000102c403616263", Chunk(0, 1, 2, b"abc")),
    ("970103070601cd01f4810181a178cb3fe0000000000000", Snapshot(7, 6, 1, 500, {1: {"x": 0.5}})),
    ("96010805040fcd03e8", Ack(seq=5, ack=4, ack_bits=15, sent_us=1000)),
]


@pytest.mark.parametrize(("hexstr", "msg"), SPEC_VECTORS)
def test_spec_vectors(hexstr: str, msg: Message) -> None:
    """The hex examples of docs/PROTOCOL.md section 2.10, both directions."""
    assert parse(bytes.fromhex(hexstr)) == msg
    assert serialize(msg).hex() == hexstr


def test_timestamps_wrap() -> None:
    a = timestamp_us(4294.967295)  # just below 2**32 us
    b = timestamp_us(4294.967295 + 0.001)
    assert b < a
    assert us_elapsed(b, a) == pytest.approx(1000, abs=2)


@given(st.binary(max_size=3000), st.integers(1, 700), U32)
def test_split_and_reassemble(data: bytes, size: int, msg_id: int) -> None:
    asm = ChunkAssembler(Limits(max_event_bytes=4096))
    chunks = split_chunks(data, msg_id, size)
    out = [asm.feed(parse(serialize(c))) for c in chunks]  # type: ignore[arg-type]
    assert out[:-1] == [None] * (len(chunks) - 1)
    assert out[-1] == data
    assert asm.pending_bytes == 0


def test_large_event_chunked_and_reassembled() -> None:
    limits = Limits()
    payload = {"blob": bytes(range(256)) * 1200, "n": list(range(100))}  # ~300 KiB
    packets = encode_reliable(payload, 5, limits)
    assert len(packets) > 1
    assert all(len(p) <= limits.max_packet_bytes for p in packets)
    asm = ChunkAssembler(limits)
    results = [asm.feed(m) for m in (parse(p, limits) for p in packets) if isinstance(m, Chunk)]
    assert results[-1] is not None
    assert parse_reassembled(results[-1], limits) == Event(payload)


def test_small_event_is_one_packet() -> None:
    assert encode_reliable({"a": 1}, 0) == [serialize(Event({"a": 1}))]


def test_event_over_max_event_bytes_refused() -> None:
    limits = Limits(max_packet_bytes=1000, max_event_bytes=5000)
    with pytest.raises(EncodeError, match="max_event_bytes"):
        encode_reliable(b"x" * 6000, 0, limits)
    packets = encode_reliable(b"x" * 4000, 0, limits)
    assert all(len(p) <= 1000 for p in packets)
    assert CHUNK_OVERHEAD < 1000


def test_assembler_rejects_out_of_order_and_oversize() -> None:
    asm = ChunkAssembler(Limits(max_event_bytes=10))
    with pytest.raises(DecodeError, match="unknown message"):
        asm.feed(Chunk(1, 1, 3, b"a"))
    asm.feed(Chunk(1, 0, 3, b"a"))
    with pytest.raises(DecodeError, match="expected index 1"):
        asm.feed(Chunk(1, 2, 3, b"a"))
    assert asm.pending_bytes == 0
    asm.feed(Chunk(2, 0, 3, b"aaaaaa"))
    with pytest.raises(DecodeError, match="max_event_bytes"):
        asm.feed(Chunk(2, 1, 3, b"aaaaaa"))
    asm.feed(Chunk(3, 0, 2, b"a"))
    with pytest.raises(DecodeError, match="before the previous"):
        asm.feed(Chunk(4, 0, 2, b"a"))
    # After every failure the assembler is clean and works again.
    assert asm.feed(Chunk(5, 0, 1, b"ok")) == b"ok"


def test_reassembled_must_be_event() -> None:
    with pytest.raises(DecodeError, match="EVENT"):
        parse_reassembled(serialize(Ping(1)))


def test_packed_passthrough() -> None:
    p = pack_payload({"a": 1})
    assert pack_payload(p) is p
    assert isinstance(p, Packed)


anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.builds(object)
    | st.sets(st.integers(), max_size=2)
    | st.complex_numbers(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.text(max_size=4) | st.integers() | st.booleans() | st.floats() | st.none(),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@given(anything)
def test_sender_check_raises_only_encode_error(value: Any) -> None:
    """Whatever a game passes: either it encodes and decodes back, or EncodeError."""
    try:
        data = serialize(Event(value))
    except EncodeError:
        return
    assert isinstance(parse(data), Event)


# -- the send path's direct encoder ------------------------------------------


@given(U16, U16, U32, U32, payloads, st.sampled_from([State, Snapshot]))
def test_encode_stamped_is_byte_identical_to_serialize(
    seq: int, ack: int, bits: int, sent: int, payload: Any, cls: type[State | Snapshot]
) -> None:
    packed = pack_payload(payload)
    kind = MsgType.STATE if cls is State else MsgType.SNAPSHOT
    data = encode_stamped(kind, seq, ack, bits, sent, packed)
    assert data == serialize(cls(seq, ack, bits, sent, packed))
    assert parse(data) == cls(seq, ack, bits, sent, payload)


@given(U16, U16, U32, U32)
def test_encode_stamped_ack_is_byte_identical_to_serialize(
    seq: int, ack: int, bits: int, sent: int
) -> None:
    assert encode_stamped(MsgType.ACK, seq, ack, bits, sent, None) == serialize(
        Ack(seq, ack, bits, sent)
    )


def test_encode_stamped_checks_header_and_kind_like_the_constructors() -> None:
    packed = pack_payload({"x": 1})
    with pytest.raises(EncodeError, match="seq"):
        encode_stamped(MsgType.STATE, 65536, 0, 0, 0, packed)
    with pytest.raises(EncodeError, match="ack_bits"):
        encode_stamped(MsgType.STATE, 0, 0, 2**32, 0, packed)
    with pytest.raises(EncodeError):
        encode_stamped(MsgType.ACK, 0, 0, 0, 0, packed)  # ACK carries no payload
    with pytest.raises(EncodeError):
        encode_stamped(MsgType.STATE, 0, 0, 0, 0, None)
    with pytest.raises(EncodeError):
        encode_stamped(MsgType.EVENT, 0, 0, 0, 0, packed)
