"""Network conditioner on real aiortc peers over 127.0.0.1 (no netcode session needed)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from netcode.config import NetworkConditions
from netcode.errors import ConfigError
from netcode.net.conditioner import Conditioner, DatagramLink
from tests.conftest import TIMESCALE

TIMEOUT = 15.0 * TIMESCALE


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice never gathers 127.0.0.1 by itself (AIORTC_NOTES trap 2).
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda *_a, **_k: ["127.0.0.1"])


@dataclass
class Pair:
    a: RTCPeerConnection
    b: RTCPeerConnection
    a_state: RTCDataChannel
    b_state: RTCDataChannel
    a_events: RTCDataChannel
    b_events: RTCDataChannel
    cond: Conditioner
    b_received: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    a_received: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


def _channels(pc: RTCPeerConnection) -> tuple[RTCDataChannel, RTCDataChannel]:
    state = pc.createDataChannel("state", ordered=False, maxRetransmits=0, negotiated=True, id=1)
    events = pc.createDataChannel("events", ordered=True, negotiated=True, id=2)
    return state, events


async def _opened(channel: RTCDataChannel) -> None:
    if channel.readyState == "open":
        return
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), TIMEOUT)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    config = RTCConfiguration(iceServers=[])
    a, b = RTCPeerConnection(config), RTCPeerConnection(config)
    cond = Conditioner(NetworkConditions(seed=1), inbound=NetworkConditions(seed=2))
    cond.attach(a)
    try:
        a_state, a_events = _channels(a)
        b_state, b_events = _channels(b)
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        for ch in (a_state, a_events, b_state, b_events):
            await _opened(ch)
        p = Pair(a, b, a_state, b_state, a_events, b_events, cond)
        for ch in (b_state, b_events):
            ch.on("message", p.b_received.put_nowait)
        for ch in (a_state, a_events):
            ch.on("message", p.a_received.put_nowait)
        yield p
    finally:
        await a.close()
        await b.close()


async def _drain_until(queue: asyncio.Queue[Any], stop: Callable[[Any], bool]) -> list[Any]:
    got: list[Any] = []
    while True:
        item = await asyncio.wait_for(queue.get(), TIMEOUT)
        if stop(item):
            return got
        got.append(item)


async def test_attach_hooks_the_ice_connection(pair: Pair) -> None:
    # Outbound data flowed through the conditioner (DTLS handshake + SCTP setup).
    counters = pair.cond.counters
    assert counters.outbound.offered > 0
    assert counters.inbound.offered > 0
    assert counters.dropped == 0


async def test_loss_rate_on_unreliable_channel(pair: Pair) -> None:
    pair.cond.set(outbound=NetworkConditions(loss=0.1, seed=42))
    n = 1200
    b_state_msgs: list[bytes] = []
    pair.b_state.remove_all_listeners("message")
    pair.b_state.on("message", b_state_msgs.append)
    for i in range(n):
        pair.a_state.send(i.to_bytes(4, "big") + bytes(96))
        if i % 5 == 4:
            # Pacing, not synchronisation: ~1000 msg/s. A burst fills aiortc's
            # congestion window, and under loss the abandoned chunks then drain
            # at ~150 msg/s (measured), making this test slow for no benefit.
            await asyncio.sleep(0.005)
    pair.a_events.send(b"done")
    # The reliable marker is retransmitted until it arrives; it was queued after
    # every state message, and nothing is delayed or reordered, so once it is
    # here every surviving state message is too.
    await _drain_until(pair.b_received, lambda m: m == b"done")
    unique = {m[:4] for m in b_state_msgs}
    loss = 1 - len(unique) / n
    assert 0.06 <= loss <= 0.14, loss
    assert pair.cond.counters.outbound.dropped > 0


async def _rtt_p50(pair: Pair, count: int = 15) -> float:
    samples = []
    pair.b_state.remove_all_listeners("message")
    pair.b_state.on("message", pair.b_state.send)  # echo
    for i in range(count):
        sent = time.monotonic()
        pair.a_state.send(b"ping" + i.to_bytes(4, "big"))
        while True:
            reply = await asyncio.wait_for(pair.a_received.get(), TIMEOUT)
            if reply == b"ping" + i.to_bytes(4, "big"):
                break
        samples.append((time.monotonic() - sent) * 1000.0)
    return statistics.median(samples)


async def test_latency_shifts_rtt_and_changes_at_run_time(pair: Pair) -> None:
    clean = await _rtt_p50(pair)
    delayed = NetworkConditions(latency_ms=20.0, seed=3)
    pair.cond.set(outbound=delayed, inbound=delayed)
    slow = await _rtt_p50(pair)
    assert 30.0 <= slow - clean <= 80.0, (clean, slow)
    pair.cond.set(outbound=None, inbound=None)
    await _rtt_p50(pair, 3)  # flush what was decided under the old conditions
    back = await _rtt_p50(pair)
    assert back < slow - 25.0, (clean, slow, back)


async def test_reliable_channel_in_order_under_loss(pair: Pair) -> None:
    lossy = NetworkConditions(loss=0.1, seed=7)
    pair.cond.set(outbound=lossy, inbound=NetworkConditions(loss=0.1, seed=8))
    n = 300
    for i in range(n):
        pair.a_events.send(i.to_bytes(4, "big"))
    pair.a_events.send(b"done")
    got = await _drain_until(pair.b_received, lambda m: m == b"done")
    assert [int.from_bytes(m, "big") for m in got] == list(range(n))
    assert pair.cond.counters.dropped > 0


async def test_detach_stops_impairment(pair: Pair) -> None:
    pair.cond.set(outbound=NetworkConditions(loss=1.0, seed=1))
    pair.cond.detach()
    dropped = pair.cond.counters.dropped
    pair.a_events.send(b"after")
    assert await asyncio.wait_for(pair.b_received.get(), TIMEOUT) == b"after"
    assert pair.cond.counters.dropped == dropped


async def test_datagram_link_delivers_in_order_after_delay() -> None:
    got: list[bytes] = []
    done = asyncio.Event()

    def deliver(data: bytes) -> None:
        got.append(data)
        if len(got) == 50:
            done.set()

    link = DatagramLink(NetworkConditions(latency_ms=10.0, jitter_ms=5.0, seed=9), deliver)
    start = time.monotonic()
    for i in range(50):
        link.send(bytes([i]))
    assert got == []  # nothing is due yet: at least 5 ms away
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert got == [bytes([i]) for i in range(50)]
    assert time.monotonic() - start >= 0.004
    assert link.counters.delayed == 50
    link.close()


async def test_datagram_link_close_drops_queue() -> None:
    got: list[bytes] = []
    link = DatagramLink(NetworkConditions(latency_ms=5.0, seed=1), got.append)
    link.send(b"x")
    assert link.pending == 1
    link.close()
    link.send(b"y")
    assert link.pending == 0
    assert got == []


def _pattern(link: DatagramLink, got: list[bytes], n: int = 400) -> list[bool]:
    before = len(got)
    out = []
    for i in range(n):
        link.send(i.to_bytes(2, "big"))
        out.append(len(got) > before)
        before = len(got)
    return out


async def test_datagram_link_same_seed_same_losses_and_reseed_on_set() -> None:
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    a = DatagramLink(NetworkConditions(loss=0.3, seed=5), got_a.append)
    b = DatagramLink(NetworkConditions(loss=0.3, seed=5), got_b.append)
    first = _pattern(a, got_a)
    assert first == _pattern(b, got_b)
    assert 0.2 < first.count(False) / len(first) < 0.4
    # A new seed at run time restarts the stream: same pattern as a fresh link.
    a.set_conditions(NetworkConditions(loss=0.3, seed=6))
    fresh_got: list[bytes] = []
    fresh = DatagramLink(NetworkConditions(loss=0.3, seed=6), fresh_got.append)
    assert _pattern(a, got_a) == _pattern(fresh, fresh_got)


async def test_reliable_channel_exactly_once_under_reorder_and_duplication(pair: Pair) -> None:
    messy = NetworkConditions(latency_ms=5.0, jitter_ms=5.0, reorder=0.2, duplicate=0.2, seed=11)
    pair.cond.set(outbound=messy, inbound=messy)
    n = 100
    for i in range(n):
        pair.a_events.send(i.to_bytes(4, "big"))
    pair.a_events.send(b"done")
    got = await _drain_until(pair.b_received, lambda m: m == b"done")
    assert [int.from_bytes(m, "big") for m in got] == list(range(n))
    counters = pair.cond.counters
    assert counters.duplicated > 0
    assert counters.outbound.reordered > 0


def test_wrong_conditions_type_is_a_config_error_and_changes_nothing() -> None:
    """A dict or a float instead of NetworkConditions fails at the call, not in a timer."""
    with pytest.raises(ConfigError):
        Conditioner({"loss": 0.1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Conditioner(NetworkConditions(), inbound=0.1)  # type: ignore[arg-type]
    cond = Conditioner(NetworkConditions(loss=0.2))
    with pytest.raises(ConfigError):
        cond.set(outbound=NetworkConditions(), inbound="bad")  # type: ignore[arg-type]
    assert cond.outbound == NetworkConditions(loss=0.2)  # not half-applied
    cond.set(inbound=None)
    assert cond.inbound.is_clean
    with pytest.raises(ConfigError):
        DatagramLink("bad", lambda data: None)  # type: ignore[arg-type]
