"""ReliabilityEndpoint: headers, acks under loss/reorder/duplication, and link stats."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from netcode.errors import ConfigError, DecodeError
from netcode.protocol.reliability import PacketHeader, PeerStats, ReliabilityEndpoint
from netcode.protocol.sequence import (
    SequenceBuffer,
    generate_ack_bits,
    iter_acked,
    seq_add,
    seq_greater_than,
)

# -- header -----------------------------------------------------------------


@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_header_round_trip(seq: int, ack: int, bits: int) -> None:
    hdr = PacketHeader(seq, ack, bits)
    assert PacketHeader.parse(hdr.serialize()) == hdr


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=5)))
def test_header_parse_rejects_garbage_with_decode_error(obj: object) -> None:
    try:
        hdr = PacketHeader.parse(obj)
    except DecodeError:
        return
    assert isinstance(obj, list) and hdr.serialize() == obj


@pytest.mark.parametrize(
    "fields", [(65536, 0, 0), (-1, 0, 0), (0, 0, 2**32), (True, 0, 0), (0, 1.0, 0)]
)
def test_header_out_of_range_is_a_decode_error(fields: tuple[object, ...]) -> None:
    with pytest.raises(DecodeError):
        PacketHeader.parse(list(fields))


def test_bad_config_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        ReliabilityEndpoint(rtt_gain=0)
    with pytest.raises(ConfigError):
        ReliabilityEndpoint(received_buffer_size=16)
    with pytest.raises(ConfigError):
        ReliabilityEndpoint(initial_seq=70000)


# -- basic exchange ---------------------------------------------------------


def test_first_header_acks_nothing_and_seqs_wrap() -> None:
    a = ReliabilityEndpoint(initial_seq=65534)
    h = [a.next_header(0.0, 10) for _ in range(3)]
    assert [x.seq for x in h] == [65534, 65535, 0]
    assert h[0].ack_bits == 0


def test_ack_across_wrap_gives_rtt_and_take_acked() -> None:
    a = ReliabilityEndpoint(initial_seq=65530)
    b = ReliabilityEndpoint(initial_seq=65000)
    now = 0.0
    for _ in range(12):  # a's seqs 65530..5, over the wrap
        assert b.receive(a.next_header(now, 50), now + 0.01, 50)
        now += 0.02
        assert a.receive(b.next_header(now, 50), now, 50)
    acked = a.take_acked()
    assert acked == [seq_add(65530, i) for i in range(12)]
    assert a.take_acked() == []
    assert a.rtt == pytest.approx(0.02)
    assert a.stats(now).packets_acked == 12


def test_duplicates_and_old_packets_are_stale_but_their_acks_count() -> None:
    a, b = ReliabilityEndpoint(), ReliabilityEndpoint()
    h0, h1 = a.next_header(0.0), a.next_header(0.0)
    assert b.receive(h1, 0.1)
    assert not b.receive(h0, 0.1)  # older than newest
    assert not b.receive(h1, 0.1)  # duplicate
    assert b.stats(0.1).stale_drops == 2
    # b never acks the stale h0: only accepted packets are acked
    reply = b.next_header(0.2)
    assert (reply.ack, reply.ack_bits) == (h1.seq, 1)
    # a late packet from b still delivers its acks
    b2 = b.next_header(0.3)
    assert a.receive(b2, 0.3)
    assert not a.receive(reply, 0.3)
    assert a.take_acked() == [h1.seq]


def test_discard_received_withdraws_the_ack() -> None:
    a, b = ReliabilityEndpoint(), ReliabilityEndpoint()
    for _ in range(3):
        b.receive(a.next_header(0.0), 0.0)
    b.discard_received(2)
    reply = b.next_header(0.0)
    assert reply.ack == 2 and reply.ack_bits == 0b110
    a.receive(reply, 0.0)
    assert sorted(a.take_acked()) == [0, 1]


def test_counters_filled_by_the_session() -> None:
    ep = ReliabilityEndpoint()
    ep.count_state_drop()
    s = ep.stats(0.0)
    assert (s.state_drops, s.bad_packets) == (1, 0)  # bad packets are the link's count
    assert PeerStats() == PeerStats(rtt_ms=0.0)


def test_kbps_over_a_sliding_second() -> None:
    a, b = ReliabilityEndpoint(), ReliabilityEndpoint()
    for i in range(60):
        t = 10.0 + i / 60
        b.receive(a.next_header(t, 100), t, 100)
    now = 10.0 + 59 / 60
    assert a.stats(now).kbps_sent == pytest.approx(48.0)
    assert b.stats(now).kbps_received == pytest.approx(48.0)
    assert a.stats(now + 0.5).kbps_sent == pytest.approx(24.0, abs=1.0)
    assert a.stats(now + 2.0).kbps_sent == 0.0


def test_rtt_and_jitter_from_heartbeat_samples() -> None:
    ep = ReliabilityEndpoint()
    for _ in range(200):
        ep.add_rtt_sample(0.050, 0.0)
    s = ep.stats(0.0)
    assert s.rtt_ms == pytest.approx(50.0)
    assert s.jitter_ms == pytest.approx(0.0)
    for i in range(400):
        ep.add_rtt_sample(0.040 if i % 2 else 0.060, 0.0)
    s = ep.stats(0.0)
    assert 45.0 < s.rtt_ms < 55.0
    assert s.jitter_ms == pytest.approx(20.0, rel=0.05)  # |60-40| every sample


# -- generated delivery patterns --------------------------------------------


@settings(max_examples=100)
@given(
    st.lists(st.booleans(), min_size=20, max_size=300),
    st.integers(0, 65535),
    st.sampled_from([0.0, 0.005, 0.04]),
)
def test_loss_matches_the_delivery_pattern(
    delivered: list[bool], first_seq: int, one_way: float
) -> None:
    """a sends at 60 Hz, the pattern drops some; b answers each arrival at once."""
    a = ReliabilityEndpoint(initial_seq=first_seq, loss_window_s=100.0)
    b = ReliabilityEndpoint()
    now = 0.0
    for ok in delivered:
        hdr = a.next_header(now, 40)
        if ok:
            assert b.receive(hdr, now + one_way, 40)
            a.receive(b.next_header(now + one_way, 40), now + 2 * one_way, 40)
        now += 1 / 60
    end = now + 1.0  # every packet is now older than the ack timeout
    stats = a.stats(end)
    assert math.isclose(stats.loss, delivered.count(False) / len(delivered), abs_tol=1e-9)
    assert stats.packets_acked == delivered.count(True)
    assert stats.packets_sent == len(delivered)
    if any(delivered):
        assert stats.rtt_ms == pytest.approx(2000 * one_way, abs=1e-6)


def test_recent_unacked_packets_do_not_count_as_lost_yet() -> None:
    a = ReliabilityEndpoint()
    for i in range(30):
        a.next_header(i / 60)
    assert a.loss(30 / 60) == pytest.approx(1.0)  # the oldest are past 0.25 s
    fresh = ReliabilityEndpoint()
    fresh.next_header(0.0)
    assert fresh.loss(0.1) == 0.0  # within the ack timeout: not lost yet
    assert fresh.loss(0.3) == 1.0


class LinkMachine(RuleBasedStateMachine):
    """Two endpoints over links that lose, reorder and duplicate, in both directions.

    Invariants: every sequence a peer reports acked was really accepted as new
    by the other side; receive() is True exactly for packets newer than all
    accepted so far (stale state never overwrites newer state).
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.eps = {"a": ReliabilityEndpoint(initial_seq=65520), "b": ReliabilityEndpoint()}
        self.in_flight: dict[str, list[PacketHeader]] = {"a": [], "b": []}  # to that peer
        self.accepted: dict[str, set[int]] = {"a": set(), "b": set()}  # seqs accepted by peer
        self.newest: dict[str, int | None] = {"a": None, "b": None}
        self.acked: dict[str, set[int]] = {"a": set(), "b": set()}  # own seqs reported acked

    @staticmethod
    def other(peer: str) -> str:
        return "b" if peer == "a" else "a"

    @rule(peer=st.sampled_from("ab"), dt=st.sampled_from([0.0, 0.004, 0.016]))
    def send(self, peer: str, dt: float) -> None:
        self.now += dt
        hdr = self.eps[peer].next_header(self.now, 30)
        self.in_flight[self.other(peer)].append(hdr)

    @precondition(lambda self: self.in_flight["a"] or self.in_flight["b"])
    @rule(
        peer=st.sampled_from("ab"),
        pick=st.integers(0, 1000),
        action=st.sampled_from(["deliver", "deliver", "duplicate", "drop"]),
    )
    def network(self, peer: str, pick: int, action: str) -> None:
        queue = self.in_flight[peer]
        if not queue:
            return
        hdr = queue[pick % len(queue)]  # any packet in flight: reordering
        if action != "duplicate":
            queue.remove(hdr)
        if action == "drop":
            return
        newest = self.newest[peer]
        expect_new = newest is None or seq_greater_than(hdr.seq, newest)
        assert self.eps[peer].receive(hdr, self.now, 30) == expect_new
        if expect_new:
            self.newest[peer] = hdr.seq
            self.accepted[peer].add(hdr.seq)
        self.acked[peer].update(self.eps[peer].take_acked())

    @invariant()
    def acks_are_true(self) -> None:
        assert self.acked["a"] <= self.accepted["b"]
        assert self.acked["b"] <= self.accepted["a"]

    @invariant()
    def stats_are_consistent(self) -> None:
        for peer in "ab":
            s = self.eps[peer].stats(self.now)
            assert 0.0 <= s.loss <= 1.0
            assert s.packets_acked == len(self.acked[peer])
            assert s.packets_acked <= s.packets_sent


LinkMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=60)
test_link_machine = LinkMachine.TestCase


def test_rtt_is_timed_on_the_ack_field_not_on_older_bits() -> None:
    """A peer that replies once per 4 packets must not inflate RTT by its send interval."""
    a, b = ReliabilityEndpoint(), ReliabilityEndpoint()
    for i in range(4):
        t = i * 0.010
        b.receive(a.next_header(t), t)
    a.receive(b.next_header(0.030), 0.030)  # acks all four at once
    assert len(a.take_acked()) == 4
    assert a.rtt == pytest.approx(0.0)  # only packet 3 (the ack field) was timed


def test_rtt_from_acks_can_be_turned_off_for_heartbeat_only_rtt() -> None:
    """Acks held by a rarely-sending peer must not feed RTT when the session measures it."""
    a, b = ReliabilityEndpoint(rtt_from_acks=False), ReliabilityEndpoint()
    b.receive(a.next_header(0.0), 0.0)
    a.receive(b.next_header(0.250), 0.250)  # the peer held the ack for 250 ms
    assert a.take_acked() == [0]
    assert a.rtt is None
    a.add_rtt_sample(0.002, 0.3)
    assert a.rtt == pytest.approx(0.002)


# -- incremental ack bookkeeping vs the reference computation ------------------
#
# The endpoint keeps (ack, ack_bits) and the set of unacked sent packets
# incrementally. The oracle below is the straightforward version it replaced: a
# SequenceBuffer of accepted packets read back with generate_ack_bits() (a
# 32-step loop), and iter_acked() over every header bit with a lookup per bit.


class _ReferenceAcks:
    def __init__(self, initial_seq: int) -> None:
        self.next_seq = initial_seq
        self.sent: SequenceBuffer[list[bool]] = SequenceBuffer(1024)
        self.received: SequenceBuffer[bool] = SequenceBuffer(256)
        self.acked: list[int] = []

    def send(self) -> tuple[int, int, int]:
        seq = self.next_seq
        self.next_seq = seq_add(seq, 1)
        self.sent.insert(seq, [False])
        return (seq, *generate_ack_bits(self.received))

    def receive(self, seq: int, ack: int, bits: int) -> bool:
        for s in iter_acked(ack, bits):
            rec = self.sent.get(s)
            if rec is not None and not rec[0]:
                rec[0] = True
                self.acked.append(s)
        newest = self.received.newest
        if newest is not None and not seq_greater_than(seq, newest):
            return False
        self.received.insert(seq, True)
        return True


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 40)),
        # (seq step from the peer's last seq: mostly forward, sometimes back or far;
        #  ack offset behind our next seq, ack bits)
        st.tuples(
            st.just("recv"),
            st.one_of(st.integers(-40, 40), st.integers(-33000, 33000)),
            st.one_of(st.integers(-3, 70), st.integers(0, 65535)),
            st.one_of(st.integers(0, 2**32 - 1), st.just(2**32 - 1), st.just(0)),
        ),
        st.tuples(st.just("discard"), st.integers(-3, 40)),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(_ops, st.integers(0, 65535), st.integers(0, 65535))
def test_incremental_acks_equal_the_reference_computation(
    ops: list[tuple[object, ...]], initial: int, peer_seq: int
) -> None:
    ep, ref = ReliabilityEndpoint(initial_seq=initial), _ReferenceAcks(initial)
    for op in ops:
        if op[0] == "send":
            for _ in range(int(op[1])):  # type: ignore[call-overload]
                hdr = ep.next_header(0.0, 1)
                assert (hdr.seq, hdr.ack, hdr.ack_bits) == ref.send()
        elif op[0] == "recv":
            _, step, behind, bits = op
            peer_seq = seq_add(peer_seq, int(step))  # type: ignore[call-overload]
            ack = seq_add(ref.next_seq, -1 - int(behind))  # type: ignore[call-overload]
            hdr = PacketHeader(peer_seq, ack, int(bits))  # type: ignore[call-overload]
            assert ep.receive(hdr, 0.0) == ref.receive(peer_seq, ack, hdr.ack_bits)
            assert ep.take_acked() == ref.acked
            ref.acked = []
        else:
            newest = ref.received.newest
            if newest is not None:
                seq = seq_add(newest, -int(op[1]))  # type: ignore[call-overload]
                ep.discard_received(seq)
                ref.received.remove(seq)
    hdr = ep.next_header(0.0)
    assert (hdr.seq, hdr.ack, hdr.ack_bits) == ref.send()
