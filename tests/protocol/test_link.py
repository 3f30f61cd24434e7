"""The pure peer-link core: two LinkCores wired together with a fake clock, no sockets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.config import PeerBudget, SessionConfig
from netcode.events import (
    EventReceived,
    PeerConnected,
    PeerConnectFailed,
    PeerLeft,
    PeerLost,
    SnapshotReceived,
    StateReceived,
    StatsUpdated,
)
from netcode.protocol import wire
from netcode.protocol.link import (
    MAX_OUTSTANDING_PINGS,
    STATE_LABEL,
    TRANSITIONS,
    LinkCore,
    LinkEvent,
    RelayReceived,
)

CFG = SessionConfig()


class Pair:
    """Two cores and a perfect in-memory link between them; time moves only when told."""

    def __init__(self, config: SessionConfig = CFG, *, open_: bool = True) -> None:
        self.now = 0.0
        self.a = LinkCore("b", config, self.now)  # a's view of peer b
        self.b = LinkCore("a", config, self.now)
        self.events: dict[str, list[LinkEvent]] = {"a": [], "b": []}
        self.wire: dict[str, list[tuple[str, bytes]]] = {"a": [], "b": []}  # sent by each
        if open_:
            self.a.channels_open(self.now)
            self.b.channels_open(self.now)
            self.pump()

    def core(self, name: str) -> LinkCore:
        return self.a if name == "a" else self.b

    def pump(self, *, deliver: bool = True) -> None:
        """Move every queued message across (both ways) until nothing is left."""
        for _ in range(100):
            moved = False
            for src, dst in (("a", "b"), ("b", "a")):
                out = self.core(src).take_outgoing()
                self.events[src].extend(self.core(src).take_events())
                for label, data in out:
                    self.wire[src].append((label, data))
                    if deliver:
                        self.core(dst).receive(label, data, self.now)
                    moved = True
            if not moved:
                return
        raise AssertionError("messages kept bouncing")

    def advance(self, seconds: float, *, deliver: bool = True) -> None:
        """Run both cores' timers up to ``now + seconds``, at each deadline in turn."""
        end = self.now + seconds
        while True:
            due = min(self.a.next_deadline(), self.b.next_deadline())
            if due > end:
                break
            self.now = max(self.now, due)
            self.a.tick(self.now)
            self.b.tick(self.now)
            self.pump(deliver=deliver)
        self.now = end
        self.pump(deliver=deliver)

    def of(self, name: str, cls: type[Any]) -> list[Any]:
        return [e for e in self.events[name] if isinstance(e, cls)]


def send_state(p: Pair, src: str, payload: Any) -> None:
    data = p.core(src).send_state(wire.pack_payload(payload), p.now)
    assert data is not None
    other = "b" if src == "a" else "a"
    p.core(other).receive(STATE_LABEL, data, p.now)
    p.pump()


def test_open_connects_and_state_flows_both_ways() -> None:
    p = Pair()
    assert p.a.state == p.b.state == "connected"
    assert p.of("a", PeerConnected) == [PeerConnected("b")]
    send_state(p, "a", {"x": 1})
    send_state(p, "b", {"y": 2})
    assert [e.data for e in p.of("b", StateReceived)] == [{"x": 1}]
    assert [e.data for e in p.of("a", StateReceived)] == [{"y": 2}]


def test_heartbeat_pings_acks_and_rtt_from_matched_pongs() -> None:
    p = Pair()
    p.advance(1.0)
    kinds = [wire.parse(d) for label, d in p.wire["a"] if label == STATE_LABEL]
    pings = [m for m in kinds if isinstance(m, wire.Ping)]
    acks = [m for m in kinds if isinstance(m, wire.Ack)]
    assert 4 <= len(pings) <= 5  # every 250 ms over 1 s
    # No state went out: an ACK each heartbeat but the first (connecting counts as sent).
    assert len(acks) == len(pings) - 1
    assert p.a.stats(p.now).unmatched_pongs == 0
    assert p.a.stats(p.now).packets_acked >= 3


def test_no_ack_while_state_flows() -> None:
    p = Pair()
    for _ in range(60):
        send_state(p, "a", {"x": 1})
        p.advance(1 / 60)
    acks = [wire.parse(d) for _, d in p.wire["a"]]
    assert sum(isinstance(m, wire.Ack) for m in acks) <= 1


def test_silence_for_peer_timeout_is_lost_with_reason_timeout() -> None:
    p = Pair()
    p.advance(1.0)
    p.advance(CFG.peer_timeout_s + 0.5, deliver=False)  # nothing arrives any more
    lost = p.of("a", PeerLost)
    assert lost == [PeerLost("b", "timeout", lost[0].detail)]
    assert p.a.finished and p.a.next_deadline() == float("inf")


def test_connect_timeout_fails() -> None:
    cfg = dataclasses.replace(CFG, connect_timeout_s=2.0)
    p = Pair(cfg, open_=False)
    p.advance(1.9)
    assert p.of("a", PeerConnectFailed) == []
    p.advance(0.2)
    assert [e.peer_id for e in p.of("a", PeerConnectFailed)] == ["b"]
    assert "2.0" in p.of("a", PeerConnectFailed)[0].reason


def test_forged_and_replayed_pongs_never_touch_rtt() -> None:
    p = Pair()
    p.advance(0.5)
    rtt = p.a.stats(p.now).rtt_ms
    forged = wire.serialize(wire.Pong(echo_us=123_456_789, sent_us=1))
    for _ in range(50):
        p.a.receive(STATE_LABEL, forged, p.now)
    # Replays of a PONG that was already matched count as unmatched too.
    real = [d for label, d in p.wire["b"] if isinstance(wire.parse(d), wire.Pong)]
    for data in real:
        p.a.receive(STATE_LABEL, data, p.now + 5.0)
    stats = p.a.stats(p.now)
    assert stats.rtt_ms == rtt
    assert stats.unmatched_pongs == 50 + len(real)


def test_only_the_last_outstanding_pings_are_remembered() -> None:
    p = Pair(dataclasses.replace(CFG, peer_timeout_s=60.0))
    p.advance(0.25 * (MAX_OUTSTANDING_PINGS + 8), deliver=False)
    assert len(p.a._pings_out) == MAX_OUTSTANDING_PINGS


def test_ping_flood_gets_a_bounded_number_of_pongs() -> None:
    p = Pair()
    p.b.take_outgoing()
    ping = wire.serialize(wire.Ping(7))
    for i in range(300):  # 300 PINGs within one second
        p.b.receive(STATE_LABEL, ping, p.now + i / 300)
    pongs = [d for _, d in p.b.take_outgoing() if isinstance(wire.parse(d), wire.Pong)]
    budget = CFG.budget
    assert len(pongs) <= budget.pings_answered_per_s * (budget.burst_s + 1) + 1
    assert p.b.stats(p.now).pings_ignored == 300 - len(pongs)


def test_state_flood_is_dropped_then_disconnected_as_abuse() -> None:
    cfg = dataclasses.replace(CFG, budget=PeerBudget(state_msgs_per_s=100.0, abuse_after_s=1.0))
    p = Pair(cfg)
    data = p.a.send_state(wire.pack_payload(1), p.now)
    assert data is not None
    t = p.now
    for _ in range(3_000):  # 1,000 packets/s for 3 s
        t += 0.001
        p.b.receive(STATE_LABEL, data, t)
        if p.b.finished:
            break
    events = p.b.take_events()
    lost = [e for e in events if isinstance(e, PeerLost)]
    assert [e.reason for e in lost] == ["abuse"]
    assert p.b.stats(t).rate_limited > 0
    # It took at least abuse_after_s of overrun (the burst first absorbed 2 s worth).
    assert t >= 1.0


def test_reliable_flood_is_abuse_at_once() -> None:
    cfg = dataclasses.replace(CFG, budget=PeerBudget(event_msgs_per_s=50.0, burst_s=1.0))
    p = Pair(cfg)
    data = wire.serialize(wire.Event("spam"))
    for _ in range(60):
        p.b.receive("events", data, p.now)
    events = p.b.take_events()
    assert sum(isinstance(e, EventReceived) for e in events) == 50
    assert [e.reason for e in events if isinstance(e, PeerLost)] == ["abuse"]


def test_channel_rules_messages_on_the_wrong_channel_are_bad_packets() -> None:
    p = Pair()
    state = p.a.send_state(wire.pack_payload(1), p.now)
    assert state is not None
    p.b.receive("events", state, p.now)  # STATE on a reliable channel
    p.b.receive(STATE_LABEL, wire.serialize(wire.Event(1)), p.now)  # EVENT on state
    p.b.receive(STATE_LABEL, b"\xc1", p.now)
    assert p.b.stats(p.now).bad_packets == 3
    assert [e for e in p.b.take_events() if not isinstance(e, StatsUpdated)] == []


def test_bye_is_peer_left_and_nothing_after_it() -> None:
    p = Pair()
    p.a.send_bye("quit")
    p.pump()
    assert p.of("b", PeerLeft) == [PeerLeft("a", "quit")]
    assert p.b.finished
    send_state(p, "a", {"late": True})  # b has finished: ignored
    assert p.of("b", StateReceived) == []


def test_snapshots_become_deltas_once_acked() -> None:
    p = Pair()
    for tick in range(10):
        packets = p.a.send_snapshot({1: {"x": float(tick), "name": "p"}}, p.now)
        assert len(packets) == 1
        p.b.receive(STATE_LABEL, packets[0], p.now)
        send_state(p, "b", {"input": tick})  # carries b's acks back
        p.advance(1 / 60)
    full, delta = p.a.snapshots_sent
    assert full >= 1 and delta >= 5
    snaps = p.of("b", SnapshotReceived)
    assert [s.entities[1]["x"] for s in snaps] == [float(t) for t in range(10)]


def test_transitions_table_is_the_only_way_states_change() -> None:
    assert set(TRANSITIONS.values()) <= {"connected", "lost", "failed", "closed"}
    p = Pair()
    p.a.close()
    assert p.a.state == "closed"
    p.a.transport_closed("failed", p.now)  # final: no event, no change
    p.a.disconnect("overflow", "late")
    assert p.a.take_events() == [] and p.a.state == "closed"


@settings(max_examples=200)
@given(
    msgs=st.lists(
        st.tuples(st.sampled_from([STATE_LABEL, "events"]), st.binary(max_size=200)),
        max_size=40,
    )
)
def test_arbitrary_bytes_never_raise_and_at_most_one_terminal_event(
    msgs: list[tuple[str, bytes]],
) -> None:
    p = Pair()
    for i, (label, data) in enumerate(msgs):
        p.b.receive(label, data, p.now + i * 0.001)
    events = p.b.take_events()
    terminal = [e for e in events if isinstance(e, PeerLost | PeerLeft | PeerConnectFailed)]
    assert len(terminal) <= 1


@pytest.mark.parametrize("how", ["failed", "closed"])
def test_transport_closed_while_connected_is_lost_closed(how: str) -> None:
    p = Pair()
    p.a.transport_closed(how, p.now)
    assert [(e.reason, e.detail) for e in p.a.take_events() if isinstance(e, PeerLost)] == [
        ("closed", f"connection {how}")
    ]


def test_a_big_full_snapshot_travels_as_fragments_then_deltas_follow() -> None:
    p = Pair()
    world = {i: {"x": float(i), "y": float(-i), "name": f"entity-{i:04d}"} for i in range(120)}
    packets = p.a.send_snapshot(world, p.now)
    assert len(packets) > 2
    assert all(len(d) <= CFG.limits.max_state_bytes for d in packets)
    for data in packets:
        p.b.receive(STATE_LABEL, data, p.now)
    snaps = [e for e in p.b.take_events() if isinstance(e, SnapshotReceived)]
    assert len(snaps) == 1 and snaps[0].entities == world
    send_state(p, "b", {"ack": 1})  # carries b's acks of every fragment
    world[3]["x"] = 99.0
    delta = p.a.send_snapshot(world, p.now)
    assert len(delta) == 1 and len(delta[0]) < 100  # a delta against the fragmented frame
    p.b.receive(STATE_LABEL, delta[0], p.now)
    snaps = [e for e in p.b.take_events() if isinstance(e, SnapshotReceived)]
    assert snaps[-1].entities[3]["x"] == 99.0


def test_a_lost_fragment_means_no_snapshot_and_no_baseline() -> None:
    p = Pair()
    world = {i: {"x": float(i), "name": f"entity-{i:04d}"} for i in range(120)}
    packets = p.a.send_snapshot(world, p.now)
    for data in packets[1:]:  # the first fragment is lost
        p.b.receive(STATE_LABEL, data, p.now)
    assert not any(isinstance(e, SnapshotReceived) for e in p.b.take_events())
    send_state(p, "b", {"ack": 1})
    again = p.a.send_snapshot(world, p.now)
    assert len(again) == len(packets)  # still full: the lost frame never became a baseline


def test_a_stream_of_malformed_messages_ends_the_link_as_abuse() -> None:
    p = Pair()
    burst = CFG.budget.bad_messages_burst
    for _ in range(burst):
        p.b.receive("events", b"\xc1", p.now)
    assert p.b.state == "connected"  # a few bad messages are only counted
    p.b.receive("events", b"\xc1", p.now)
    lost = [e for e in p.b.take_events() if isinstance(e, PeerLost)]
    assert [e.reason for e in lost] == ["abuse"] and "malformed" in lost[0].detail
    assert p.b.stats(p.now).bad_packets == burst + 1


def test_malformed_messages_spread_out_never_add_up() -> None:
    p = Pair(dataclasses.replace(CFG, peer_timeout_s=86_400.0))
    for i in range(100):  # one every 2 s, the refill rate is 1 per second
        p.b.receive(STATE_LABEL, b"\xc1", p.now + 2.0 * i)
    assert p.b.state == "connected"


def star_pair() -> Pair:
    p = Pair()
    p.a.star_role = "host"  # a is the host: its link to b is a link to a client
    p.b.star_role = "client"  # b's link to a is its link to the host
    return p


def test_star_relay_reaches_the_host_as_a_relay_and_forward_as_the_origin() -> None:
    p = star_pair()
    relay = p.b.send_relay("", wire.pack_payload({"hp": 3}), STATE_LABEL, p.now)
    assert relay is not None
    p.a.receive(STATE_LABEL, relay, p.now)
    (relayed,) = [e for e in p.a.take_events() if isinstance(e, RelayReceived)]
    # The host names the origin from the link it arrived on: b, whatever b claims.
    assert (relayed.peer_id, relayed.to, relayed.payload) == ("b", "", {"hp": 3})
    forward = p.a.send_forward(relayed)
    assert forward == wire.serialize(wire.Forward("b", relayed.n, relayed.sent_us, {"hp": 3}))
    # A client takes FORWARDs from its host, under the origin's name ...
    p.b.receive(STATE_LABEL, wire.serialize(wire.Forward("c", 1, 0, {"hp": 3})), p.now)
    got = [e for e in p.b.take_events() if isinstance(e, StateReceived)]
    assert [(e.peer_id, e.data) for e in got] == [("c", {"hp": 3})]
    # ... but not one naming the host itself (the host sends its own state directly).
    p.b.receive(STATE_LABEL, wire.serialize(wire.Forward("a", 2, 0, 1)), p.now)
    assert p.b.stats(p.now).bad_packets == 1


def test_relay_and_forward_are_refused_outside_their_roles() -> None:
    p = Pair()  # a mesh: neither is legal
    p.b.receive(STATE_LABEL, wire.serialize(wire.Relay("", 1, 0, 1)), p.now)
    p.b.receive(STATE_LABEL, wire.serialize(wire.Forward("x", 1, 0, 1)), p.now)
    assert p.b.stats(p.now).bad_packets == 2
    s = star_pair()
    # A client never accepts RELAY; the host never accepts FORWARD (origins can't be forged).
    s.b.receive(STATE_LABEL, wire.serialize(wire.Relay("", 1, 0, 1)), s.now)
    s.a.receive(STATE_LABEL, wire.serialize(wire.Forward("x", 1, 0, 1)), s.now)
    assert s.b.stats(s.now).bad_packets == 1 and s.a.stats(s.now).bad_packets == 1


def test_forwarded_state_is_newest_wins_per_origin() -> None:
    p = star_pair()
    for n in (5, 3, 6, 6, 2):
        p.b.receive(STATE_LABEL, wire.serialize(wire.Forward("c", n, 0, n)), p.now)
    p.b.receive(STATE_LABEL, wire.serialize(wire.Forward("d", 1, 0, 1)), p.now)
    got = [(e.peer_id, e.data) for e in p.b.take_events() if isinstance(e, StateReceived)]
    assert got == [("c", 5), ("c", 6), ("d", 1)]
    # Reliable forwards are events, all of them, in order.
    for i in range(3):
        p.b.receive("events", wire.serialize(wire.Forward("c", i, 0, f"e{i}")), p.now)
    events = [e.data for e in p.b.take_events() if isinstance(e, EventReceived)]
    assert events == ["e0", "e1", "e2"]
