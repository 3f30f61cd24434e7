"""Per-peer receive budgets (pure): token buckets, verdicts, abuse timing, PONG rate."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import PeerBudget
from netcode.errors import ConfigError
from netcode.protocol.budget import ReceiveBudget, TokenBucket, Verdict

MAX_EVENT = 1_048_576


def budget(**kw: Any) -> ReceiveBudget:
    return ReceiveBudget(PeerBudget(**kw), 0.0, max_event_bytes=MAX_EVENT)


@given(
    rate=st.floats(0.5, 1e4),
    capacity=st.floats(1.0, 1e4),
    steps=st.lists(st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 50.0)), max_size=200),
)
def test_bucket_never_grants_more_than_capacity_plus_rate_times_time(
    rate: float, capacity: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, capacity, 0.0)
    now = granted = 0.0
    for dt, cost in steps:
        now += dt
        if bucket.take(cost, now):
            granted += cost
        assert 0.0 <= bucket.tokens <= capacity
    assert granted <= capacity + rate * now + 1e-6


def test_bucket_ignores_a_clock_stepping_back() -> None:
    bucket = TokenBucket(10.0, 10.0, 100.0)
    assert bucket.take(10.0, 100.0)
    assert not bucket.take(1.0, 50.0)  # earlier time: no refill, no crash
    assert bucket.take(1.0, 100.2)


def test_state_channel_over_budget_drops_then_abuse_after_sustained_overrun() -> None:
    b = budget(state_msgs_per_s=10.0, burst_s=1.0, abuse_after_s=1.0)
    verdicts = [b.admit("state", 10, 0.0, reliable=False) for _ in range(12)]
    assert verdicts.count(Verdict.ACCEPT) == 10
    assert verdicts[10:] == [Verdict.DROP, Verdict.DROP]
    # Flooding on: still dropped until the overrun has lasted abuse_after_s.
    now = 0.0
    seen: list[Verdict] = []
    while now < 1.5:
        now += 0.01
        seen.extend(b.admit("state", 10, now, reliable=False) for _ in range(5))
    assert Verdict.ABUSE in seen
    first_abuse = seen.index(Verdict.ABUSE)
    assert first_abuse > 0 and "state" in b.reason


def test_short_overruns_far_apart_never_add_up_to_abuse() -> None:
    b = budget(state_msgs_per_s=10.0, burst_s=1.0, abuse_after_s=1.0)
    for second in range(30):  # a burst of 15 every 5 s: 5 dropped each time, never abuse
        t = second * 5.0
        verdicts = [b.admit("state", 10, t, reliable=False) for _ in range(15)]
        assert Verdict.ABUSE not in verdicts
        assert verdicts.count(Verdict.DROP) == 5


def test_reliable_channel_over_budget_is_abuse_at_once() -> None:
    b = budget(event_msgs_per_s=5.0, burst_s=1.0)
    verdicts = [b.admit("events", 10, 0.0, reliable=True) for _ in range(6)]
    assert verdicts[:5] == [Verdict.ACCEPT] * 5
    assert verdicts[5] is Verdict.ABUSE and "events" in b.reason


def test_byte_budget_counts_bytes_and_a_refused_packet_costs_no_message_token() -> None:
    b = budget(state_bytes_per_s=1_000.0, burst_s=1.0)
    assert b.admit("state", 900, 0.0, reliable=False) is Verdict.ACCEPT
    assert b.admit("state", 200, 0.0, reliable=False) is Verdict.DROP
    assert b.admit("state", 100, 0.0, reliable=False) is Verdict.ACCEPT


def test_a_whole_max_size_event_fits_the_reliable_byte_burst() -> None:
    b = budget(event_bytes_per_s=1_000.0, burst_s=1.0, event_msgs_per_s=10_000.0)
    chunks = [b.admit("events", 1_200, 0.0, reliable=True) for _ in range(MAX_EVENT // 1_200)]
    assert set(chunks) == {Verdict.ACCEPT}


def test_channels_have_separate_buckets() -> None:
    b = budget(state_msgs_per_s=1.0, burst_s=1.0)
    assert b.admit("state", 1, 0.0, reliable=False) is Verdict.ACCEPT
    assert b.admit("state", 1, 0.0, reliable=False) is Verdict.DROP
    assert b.admit("events", 1, 0.0, reliable=True) is Verdict.ACCEPT


def test_pongs_are_rate_limited() -> None:
    b = budget(pings_answered_per_s=4.0, burst_s=1.0)
    answered = sum(b.allow_pong(0.0) for _ in range(100))
    assert answered == 4
    assert b.allow_pong(0.25)  # refilled one
    assert not b.allow_pong(0.25)


def test_defaults_carry_60hz_state_with_heartbeats_for_a_minute() -> None:
    b = budget()
    now = 0.0
    for tick in range(60 * 60):  # 60 s at 60 Hz: a state, plus 4 PING/PONG/ACK per second
        now = tick / 60
        assert b.admit("state", 1_160, now, reliable=False) is Verdict.ACCEPT
        if tick % 15 == 0:
            for _ in range(3):
                assert b.admit("state", 20, now, reliable=False) is Verdict.ACCEPT
        assert b.admit("events", 200, now, reliable=True) is Verdict.ACCEPT


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state_msgs_per_s", 0.0),
        ("event_bytes_per_s", -1.0),
        ("burst_s", float("nan")),
        ("pings_answered_per_s", True),
        ("abuse_after_s", -0.5),
    ],
)
def test_peer_budget_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        PeerBudget(**{field: value})  # type: ignore[arg-type]
