"""A real rogue peer against a victim session, with an honest third peer watching.

Everything runs in one process on 127.0.0.1: a lobby, the victim (creates the
room; a game loop that sends snapshots to the honest peer and polls at 60 Hz),
the honest peer (sends state to the victim at 60 Hz, counts the snapshots it
gets back) and the rogue (:mod:`benchmarks._rogue`: joins through the lobby,
connects to the victim and writes raw bytes to its channels).

For every attack class of issue 9 the tests assert, on counters and sizes only:
the honest peer keeps receiving the victim's state, the victim's queues and
memory stay bounded, nothing is logged at ERROR, and a flooding rogue is cut
off with ``PeerLost(reason="abuse")``. Pacing with ``asyncio.sleep`` below is
load generation (a 60 Hz game, a rogue's send rate), never synchronisation:
every wait is for an event or a condition, with a generous timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from benchmarks._rogue import ATTACKS, AttackResult, Rogue, RogueLink, churn
from netcode.config import NetworkConditions, PeerBudget, SessionConfig
from netcode.events import (
    Event,
    EventReceived,
    PeerLost,
    SnapshotReceived,
    StateReceived,
)
from netcode.net.session import Session, connect
from tests.conftest import TIMESCALE
from tests.helpers import TIMEOUT, loopback_config, running_lobby

pytestmark = pytest.mark.timeout(int(90 * TIMESCALE))

TICK_S = 1 / 60
RSS_GROWTH_MAX = 50 << 20  # the goal: an attack costs the victim at most 50 MB
# A loaded 2-core machine may stall the shared loop; half the victim's snapshots
# reaching the honest peer is far above what any attack managed before issue 9
# (0-10 %), far below what a clean loopback delivers (~100 %).
MIN_DELIVERY = 0.5
# Snapshots the honest peer got per nominal 60 Hz tick of the attack window: 0.8-0.9
# under attacks the victim shrugs off, 0.2-0.35 when decoding blocks its loop.
MIN_TICKS = 0.5
# Frames the honest game may go without a new snapshot (in frames, not ms: a loaded
# machine runs fewer frames, never more). A lost snapshot costs 1-2; before issue 9 a
# 300 KB event under 5 % loss stalled state for 130-180 frames, now 7-11.
MAX_DRY_FRAMES = 30
# A flood lasts until the victim cuts the rogue off: at most this long.
FLOOD_S = TIMEOUT
# 2.5x the default event budget, 7x the state budget. Not 5,000/s as in the benchmark:
# with rogue and victim on one event loop, that rate overflows the UDP receive buffer
# now and then, SCTP's congestion window collapses and fewer packets than the budget
# arrive at all (nothing to cut off). Across processes the benchmark sends 5,000/s.
FLOOD_RATE = 2500.0


def rss_bytes() -> int:
    """This process's resident set (VmRSS), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def every(n: int, cond: Callable[[], bool]) -> Callable[[], bool]:
    """``cond`` evaluated only on every ``n``-th call (for costly checks like a full gc)."""
    calls = 0

    def check() -> bool:
        nonlocal calls
        calls += 1
        return calls % n == 0 and cond()

    return check


def live_peer_connections(*, besides: RTCPeerConnection | None = None) -> int:
    """RTCPeerConnection objects alive after a full collection (``besides`` not counted)."""
    gc.collect()
    return sum(isinstance(o, RTCPeerConnection) and o is not besides for o in gc.get_objects())


@dataclass
class Window:
    """Counters over one attack window."""

    t0: float = 0.0
    t1: float | None = None  # end of the window (None: still open)
    sent: int = 0  # snapshots the victim handed to the honest link
    received: int = 0  # of those, what the honest peer got
    dry: int = 0  # honest frames in a row without a new snapshot, now
    max_dry: int = 0  # ... the longest such run in the window
    max_queued: int = 0  # victim.queued_events, sampled every tick
    rss0: int = 0
    rss_max: int = 0

    @property
    def delivery(self) -> float:
        return self.received / max(1, self.sent)

    @property
    def nominal_ticks(self) -> float:
        """Ticks a 60 Hz loop would have run in the window."""
        end = self.t1 if self.t1 is not None else asyncio.get_running_loop().time()
        return (end - self.t0) / TICK_S

    @property
    def rss_growth(self) -> int:
        return self.rss_max - self.rss0


@dataclass
class Arena:
    victim: Session
    honest: Session
    rogue: Rogue
    link: RogueLink
    victim_events: list[Event] = field(default_factory=list)
    honest_events: list[Event] = field(default_factory=list)
    polling: bool = True
    window: Window = field(default_factory=Window)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def config(self) -> SessionConfig:
        return self.victim.config

    def lost(self, peer_id: str) -> list[PeerLost]:
        return [e for e in self.victim_events if isinstance(e, PeerLost) and e.peer_id == peer_id]

    def honest_lost(self) -> list[Event]:
        return [
            e
            for e in (*self.victim_events, *self.honest_events)
            if isinstance(e, PeerLost) and e.peer_id in (self.victim.peer_id, self.honest.peer_id)
        ]

    async def until(self, cond: Callable[[], bool], within: float = TIMEOUT) -> None:
        """Wait (on the game loops' ticks) until ``cond()`` holds."""
        async with asyncio.timeout(within):
            while not cond():
                self.changed.clear()
                await self.changed.wait()

    def begin(self) -> Window:
        now = asyncio.get_running_loop().time()
        self.window = Window(t0=now, rss0=rss_bytes(), rss_max=rss_bytes())
        return self.window

    # -- the two honest game loops ------------------------------------------------------

    async def victim_loop(self) -> None:
        n = 0
        while True:
            n += 1
            w = self.window
            w.max_queued = max(w.max_queued, self.victim.queued_events)
            w.rss_max = max(w.rss_max, rss_bytes())
            if self.polling:
                self.victim_events.extend(self.victim.poll())
            world: dict[int, dict[str, Any]] = {1: {"x": float(n), "y": 2.0}, 2: {"hp": n % 100}}
            if self.honest.peer_id in self.victim.peers:
                self.victim.send_snapshot(world, to=self.honest.peer_id)
                w.sent += 1
            self.changed.set()
            await asyncio.sleep(TICK_S)  # a 60 Hz game: load, not synchronisation

    async def honest_loop(self) -> None:
        n = 0
        while True:
            n += 1
            w, fresh = self.window, False
            for ev in self.honest.poll():
                self.honest_events.append(ev)
                if isinstance(ev, SnapshotReceived) and ev.peer_id == self.victim.peer_id:
                    w.received += 1
                    fresh = True
            w.dry = 0 if fresh else w.dry + 1
            w.max_dry = max(w.max_dry, w.dry)
            if self.victim.peer_id in self.honest.peers:
                self.honest.send_state({"n": n}, to=self.victim.peer_id)
            self.changed.set()
            await asyncio.sleep(TICK_S)


@contextlib.asynccontextmanager
async def arena(config: SessionConfig | None = None) -> AsyncIterator[Arena]:
    cfg = config or loopback_config()
    async with running_lobby() as lobby:
        victim = await connect(lobby.url, create=True, max_players=8, config=cfg)
        honest: Session | None = None
        rogue: Rogue | None = None
        try:
            honest = await connect(lobby.url, room=victim.room, config=cfg)
            await honest.wait_for_peers(1, timeout=TIMEOUT)
            rogue = await Rogue.join(lobby.url, victim.room)
            link = await rogue.connect(victim.peer_id, timeout=TIMEOUT)
            a = Arena(victim, honest, rogue, link)
            a.tasks = [
                asyncio.ensure_future(a.victim_loop()),
                asyncio.ensure_future(a.honest_loop()),
            ]
            await a.until(lambda: victim.peers[rogue.peer_id].state == "connected")
            try:
                yield a
            finally:
                for task in a.tasks:
                    task.cancel()
                await asyncio.gather(*a.tasks, return_exceptions=True)
        finally:
            if rogue is not None:
                await rogue.close()
            await asyncio.gather(
                victim.close(), *([honest.close()] if honest else []), return_exceptions=True
            )


@pytest.fixture
def no_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Fails the test if anything was logged at ERROR or above (tracebacks included)."""
    caplog.set_level(logging.WARNING)
    yield caplog
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, "\n".join(r.getMessage() for r in errors[:5])


async def attack(a: Arena, name: str, seconds: float, **kw: Any) -> tuple[AttackResult, Window]:
    w = a.begin()
    result = await ATTACKS[name](a.link, seconds, **kw)
    return result, w


def assert_victim_healthy(a: Arena, w: Window) -> None:
    """The honest peer kept getting state, the victim stayed small, the honest link lives."""
    w.t1 = asyncio.get_running_loop().time()
    assert w.delivery >= MIN_DELIVERY, f"honest peer got {w.received} of {w.sent} snapshots"
    # Liveness, not latency: a victim whose loop an attack blocks (issue 9 saw 0.5 s
    # per packet) sends little; half the nominal 60 Hz holds on a loaded machine.
    floor = MIN_TICKS * w.nominal_ticks / TIMESCALE
    assert w.received >= floor, f"honest peer got {w.received} snapshots, expected >= {floor:.0f}"
    assert w.max_dry <= MAX_DRY_FRAMES, f"{w.max_dry} honest frames without a snapshot"
    assert w.rss_growth <= RSS_GROWTH_MAX, f"RSS grew {w.rss_growth >> 20} MB"
    assert w.max_queued <= a.config.max_queued_events + 64, w.max_queued
    assert not a.honest_lost(), a.honest_lost()
    assert not a.victim.closed


async def settle(a: Arena, ticks: int = 10) -> None:
    """Let the game loops run ``ticks`` more ticks (drains what the attack left queued)."""
    target = a.window.sent + ticks
    await a.until(lambda: a.window.sent >= target)


# --------------------------------------------------------------------------- 1, 2: snapshots


def cut_off_for_abuse(a: Any) -> bool:
    """The victim disconnected the rogue as abusive."""
    return any(
        isinstance(e, PeerLost) and e.peer_id == a.rogue.peer_id and e.reason == "abuse"
        for e in a.victim_events
    )


async def test_fat_deltas_do_not_grow_the_victim(no_errors: Any) -> None:
    """Attack 1: deltas each adding ~4,000 fields (~40 KB) to one entity."""
    async with arena() as a:
        result, w = await attack(a, "fat_delta", 3.0)
        await settle(a)
        # It kept attacking, or its malformed deltas got it cut off (bad_messages_burst).
        assert result.packets >= 20 or cut_off_for_abuse(a), result
        assert_victim_healthy(a, w)
        from_rogue = [
            e
            for e in a.victim_events
            if isinstance(e, SnapshotReceived) and e.peer_id == a.rogue.peer_id
        ]
        widest = max((len(f) for e in from_rogue for f in e.entities.values()), default=0)
        # However many deltas were accepted, no entity outgrew the field limit ...
        assert widest <= a.config.limits.max_entity_fields, widest
        # ... because every delta adding 4,000 fields was refused (counted, not decoded).
        refused = a.victim.stats(a.rogue.peer_id).bad_packets
        burst = a.config.budget.bad_messages_burst
        assert refused >= min(result.packets // 2, burst), (refused, result.packets)


async def test_phantom_removals_do_not_stall_the_victim(no_errors: Any) -> None:
    """Attack 2: deltas whose removal list names 3,500 fields that don't exist."""
    async with arena() as a:
        result, w = await attack(a, "phantom_removal", 3.0)
        await settle(a)
        assert result.packets >= 20 or cut_off_for_abuse(a), result
        assert_victim_healthy(a, w)
        refused = a.victim.stats(a.rogue.peer_id).bad_packets
        burst = a.config.budget.bad_messages_burst
        assert refused >= min(result.packets // 2, burst), (refused, result.packets)


# --------------------------------------------------------------------------- 3: object bombs


@pytest.mark.parametrize(
    ("name", "seconds"),
    [("nested_state", 2.0), ("nested_event", 2.0), ("nested_chunked", 3.0)],
)
async def test_nested_container_bombs_stay_bounded(
    name: str, seconds: float, no_errors: Any
) -> None:
    """Attack 3: ~61 KB of nested empty containers as STATE and EVENT, and 1 MiB chunked."""
    async with arena() as a:
        result, w = await attack(a, name, seconds)
        await settle(a)
        assert result.packets > 0, result
        assert_victim_healthy(a, w)
        # Whatever reached the game is bounded by what the decoder allows per message.
        delivered = [
            e
            for e in a.victim_events
            if isinstance(e, StateReceived | EventReceived) and e.peer_id == a.rogue.peer_id
        ]
        assert len(delivered) <= result.packets


# --------------------------------------------------------------------------- 4, 5: floods


async def test_ping_flood_is_ignored_then_cut_off(no_errors: Any) -> None:
    """Attack 4: a PING flood: answered at a small rate, then the rogue is disconnected."""
    async with arena() as a:
        result, w = await attack(a, "ping_flood", FLOOD_S, rate=FLOOD_RATE)
        assert result.disconnected, result
        await a.until(lambda: bool(a.lost(a.rogue.peer_id)))
        assert [e.reason for e in a.lost(a.rogue.peer_id)] == ["abuse"]
        stats = a.victim.stats(a.rogue.peer_id)
        assert stats.rate_limited + stats.pings_ignored > 0, stats
        budget = a.config.budget
        # PONGs the victim sent: its answer budget (burst + rate over the attack), never 1:1.
        pongs = a.link.victim.received["Pong"]
        elapsed = asyncio.get_running_loop().time() - w.t0
        assert pongs <= budget.pings_answered_per_s * (budget.burst_s + elapsed) + 4, pongs
        assert pongs < result.packets / 10, (pongs, result.packets)
        assert_victim_healthy(a, w)


async def test_event_flood_is_cut_off(no_errors: Any) -> None:
    """Attack 5: a reliable EVENT flood over the event budget: the rogue is disconnected.

    The budget is lowered to 250 events/s (10x under the flood): rogue and victim
    share one event loop, and on a loaded machine that loop delivers fewer than the
    default 1,000/s, which is then, rightly, within budget: nothing to cut off.
    """
    cfg = replace(loopback_config(), budget=PeerBudget(event_msgs_per_s=250.0))
    async with arena(cfg) as a:
        result, w = await attack(a, "event_flood", FLOOD_S, rate=FLOOD_RATE)
        assert result.disconnected, result
        await a.until(lambda: bool(a.lost(a.rogue.peer_id)))
        assert [e.reason for e in a.lost(a.rogue.peer_id)] == ["abuse"]
        delivered = sum(
            1
            for e in a.victim_events
            if isinstance(e, EventReceived) and e.peer_id == a.rogue.peer_id
        )
        assert delivered < result.packets, (delivered, result.packets)
        assert_victim_healthy(a, w)


async def test_game_not_polling_while_flooded_stays_bounded(no_errors: Any) -> None:
    """Attack 6: the game stops polling while a peer sends events within its rate budget.

    The queue is capped: the flooding peer is disconnected for overflow, the honest
    peer's state coalesces (newest wins) instead of piling up.
    """
    async with arena() as a:
        cfg = a.config
        a.polling = False
        w = a.begin()
        rate = min(500.0, cfg.budget.event_msgs_per_s / 2)
        seconds = 1.5 * cfg.max_queued_events / rate
        await ATTACKS["nopoll_flood"](a.link, seconds, rate=rate)
        await a.until(lambda: bool(a.victim.queued_events))
        assert w.max_queued <= cfg.max_queued_events + 64, w.max_queued
        assert w.rss_growth <= RSS_GROWTH_MAX
        backlog = a.victim.poll()  # the game comes back: one poll gets everything queued
        a.victim_events.extend(backlog)
        a.polling = True
        await a.until(lambda: bool(a.lost(a.rogue.peer_id)))
        assert [e.reason for e in a.lost(a.rogue.peer_id)] == ["overflow"]
        honest_states = [
            e for e in backlog if isinstance(e, StateReceived) and e.peer_id == a.honest.peer_id
        ]
        # The honest peer sent ~60/s all along; while nobody polled, only the newest stayed.
        assert 0 < len(honest_states) <= cfg.max_queued_states
        seqs = [e.seq for e in honest_states]
        assert seqs == sorted(seqs)
        assert not a.honest_lost()


# --------------------------------------------------------------------------- 7: forged PONG


async def test_forged_pongs_do_not_touch_rtt(no_errors: Any) -> None:
    """Attack 7: unsolicited PONGs echoing a time the victim never sent."""
    async with arena() as a:
        result, w = await attack(a, "forged_pong", 1.5, rate=40.0)
        await a.until(
            lambda: a.victim.stats(a.rogue.peer_id).unmatched_pongs >= result.packets * 0.9
        )
        stats = a.victim.stats(a.rogue.peer_id)
        assert stats.rtt_ms < 10_000, stats  # was 2,146,906 ms: the forged echo time
        assert_victim_healthy(a, w)


# --------------------------------------------------------------------------- 8: churn


async def test_churn_releases_peer_connections(no_errors: Any) -> None:
    """Attack 8: 25 goodbye-then-offer cycles under one id and 25 leave/join cycles.

    Once the rogue is gone, the only RTCPeerConnections alive in this process are
    the victim's and the honest peer's links to each other.
    """
    async with arena() as a:
        w = a.begin()
        await churn(a.rogue, a.victim.peer_id, 25, rejoin=False)
        await churn(a.rogue, a.victim.peer_id, 25, rejoin=True)
        await a.until(lambda: a.victim.peers[a.rogue.peer_id].state == "connected")
        await a.rogue.close()
        await a.until(lambda: a.rogue.peer_id not in a.victim.peers)
        await a.until(lambda: a.rogue.peer_id not in a.honest.peers)
        mine = a.link.pc  # the test still holds the rogue's first link object
        await a.until(every(10, lambda: live_peer_connections(besides=mine) <= 2))
        assert live_peer_connections(besides=mine) == 2
        assert_victim_healthy(a, w)


# --------------------------------------------------------------------------- 9: big event, loss


async def test_big_event_under_loss_does_not_stop_state(no_errors: Any) -> None:
    """Attack 9: a 300 KB reliable event at 5 % loss + 50 ms latency (each direction).

    While SCTP retransmits the event, the victim's snapshots to the same peer must
    keep flowing: events never delay state for long.
    """
    async with arena() as a:
        bad = NetworkConditions(loss=0.05, latency_ms=50.0, seed=9)
        a.victim.set_conditions(bad, peer=a.honest.peer_id, inbound=bad)
        await settle(a, 30)  # the conditioner's delay line fills
        w = a.begin()
        blob = bytes(range(256)) * 1200  # 300 KB
        a.victim.send_event({"map": blob}, to=a.honest.peer_id)

        def arrived() -> bool:
            return any(
                isinstance(e, EventReceived) and e.data == {"map": blob} for e in a.honest_events
            )

        await a.until(arrived, within=4 * TIMEOUT)
        assert w.sent >= 30, w  # the transfer took a while: SCTP retransmitted
        assert w.delivery >= MIN_DELIVERY, f"honest peer got {w.received} of {w.sent} snapshots"
        assert w.max_dry <= MAX_DRY_FRAMES, f"{w.max_dry} honest frames without a snapshot"
        assert not a.honest_lost()
