"""The session's event queue (no I/O): per-peer caps, coalescing, bounded memory, order."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from netcode.events import (
    Event,
    EventReceived,
    PeerJoined,
    SnapshotReceived,
    StateReceived,
    StatsUpdated,
)
from netcode.net.event_queue import EventQueue
from netcode.protocol.reliability import PeerStats


def state(peer: str, i: int) -> StateReceived:
    return StateReceived(peer, i, i & 0xFFFF)


def data_of(events: list[Event], peer: str) -> list[object]:
    return [
        e.data for e in events if isinstance(e, StateReceived | EventReceived) and e.peer_id == peer
    ]


def test_state_coalesces_per_peer_newest_wins() -> None:
    q = EventQueue(max_states=4, max_events=100)
    for i in range(50):
        assert q.push(state("a", i)) is None
    q.push(state("b", 0))
    assert len(q) == 5
    events = q.pop_all()
    assert data_of(events, "a") == [46, 47, 48, 49]
    assert data_of(events, "b") == [0]
    assert q.coalesced == 46


def test_other_events_keep_their_order_among_state() -> None:
    q = EventQueue(max_states=2, max_events=100)
    seq: list[Event] = [
        PeerJoined("a"),
        state("a", 1),
        EventReceived("a", "x"),
        state("a", 2),
        state("a", 3),
        EventReceived("a", "y"),
    ]
    for e in seq:
        q.push(e)
    assert q.pop_all() == [PeerJoined("a"), EventReceived("a", "x"), *seq[3:]]


def test_event_cap_refuses_and_names_the_peer() -> None:
    q = EventQueue(max_states=2, max_events=3)
    for i in range(3):
        assert q.push(EventReceived("rogue", i)) is None
    assert q.push(EventReceived("rogue", 3)) == "rogue"
    assert q.push(EventReceived("honest", 0)) is None
    assert len(q) == 4
    assert q.pop() == EventReceived("rogue", 0)
    assert q.push(EventReceived("rogue", 4)) is None  # room again after a pop


def test_snapshots_and_stats_coalesce_like_state() -> None:
    q = EventQueue(max_states=1, max_events=10)
    q.push(SnapshotReceived("a", 1, {}))
    q.push(StatsUpdated("a", PeerStats()))
    q.push(SnapshotReceived("a", 2, {}))
    assert q.pop_all() == [SnapshotReceived("a", 2, {})]


@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["state", "event", "pop", "pop_all"]), st.sampled_from("abc")),
        max_size=400,
    )
)
def test_memory_and_counts_stay_bounded_for_any_sequence(ops: list[tuple[str, str]]) -> None:
    max_states, max_events = 3, 5
    q = EventQueue(max_states=max_states, max_events=max_events)
    live: list[Event] = []  # a model: what poll() must return, in order
    for i, (op, peer) in enumerate(ops):
        if op == "state":
            q.push(state(peer, i))
            live.append(state(peer, i))
            mine = [e for e in live if isinstance(e, StateReceived) and e.peer_id == peer]
            if len(mine) > max_states:
                live.remove(mine[0])
        elif op == "event":
            queued = sum(1 for e in live if isinstance(e, EventReceived) and e.peer_id == peer)
            refused = q.push(EventReceived(peer, i))
            assert (refused == peer) == (queued >= max_events)
            if refused is None:
                live.append(EventReceived(peer, i))
        elif op == "pop":
            assert q.pop() == (live.pop(0) if live else None)
        else:
            assert q.pop_all() == live
            live = []
        assert len(q) == len(live)
        # Dropped entries linger at most until compaction: memory within 2x the caps + slack.
        assert len(q._deque) <= 2 * 3 * (max_states + max_events) + 64


def test_poll_from_another_thread_loses_and_duplicates_nothing() -> None:
    q = EventQueue(max_states=10_000, max_events=10_000)
    got: list[Event] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set() or len(q):
            got.extend(q.pop_all())

    t = threading.Thread(target=reader)
    t.start()
    for i in range(5_000):
        q.push(EventReceived("a", i))
    done.set()
    t.join(timeout=30)
    assert data_of(got, "a") == list(range(5_000))


def test_event_bytes_cap_refuses_the_push_that_goes_over() -> None:
    q = EventQueue(max_states=2, max_events=100, max_bytes=1_000)
    assert q.push(EventReceived("a", "x", "events", 600)) is None
    assert q.push(EventReceived("a", "y", "events", 600)) == "a"
    assert q.push(EventReceived("b", "z", "events", 900)) is None  # per peer
    q.pop_all()
    assert q.push(EventReceived("a", "y", "events", 1_000)) is None  # freed by the poll
