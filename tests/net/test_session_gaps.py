"""Session-layer edges: closed sessions, argument checks, stats events, quantized
snapshots and per-direction impairment. Real lobby + real aiortc peers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from netcode.config import NetworkConditions, SessionConfig
from netcode.errors import ConfigError, ConnectionClosed, EncodeError
from netcode.events import EventReceived, SnapshotReceived, StateReceived, StatsUpdated
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import connect
from tests.helpers import LOOPBACK, TIMEOUT, EventLog, loopback_config, mesh, running_lobby, view

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def test_sends_after_close_raise_connection_closed(lobby: LobbyServer) -> None:
    session = await connect(lobby.url, create=True, config=LOOPBACK)
    assert session.send_state({"x": 1}) is False  # open, nobody there: no error
    session.send_event("fine")
    await session.close()
    with pytest.raises(ConnectionClosed):
        session.send_event("lost")
    with pytest.raises(ConnectionClosed):
        session.send_state({"x": 1})
    with pytest.raises(ConnectionClosed):
        session.send_snapshot({1: {"x": 1.0}})
    with pytest.raises(ConnectionClosed):
        session.send_packets(session.encode_event("lost"), None, "events")


async def test_bad_conditions_refused_before_a_peer_joins(lobby: LobbyServer) -> None:
    """A bad value used to be stored and blow up in the lobby loop when a peer joined."""
    async with connect(lobby.url, create=True, config=LOOPBACK) as a:
        with pytest.raises(ConfigError, match="NetworkConditions"):
            a.set_conditions("bad")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="NetworkConditions"):
            a.set_conditions(None, inbound={"loss": 0.5})  # type: ignore[arg-type]
        async with connect(lobby.url, room=a.room, config=LOOPBACK) as b:
            await a.wait_for_peers(1, TIMEOUT)
            await b.wait_for_peers(1, TIMEOUT)
            assert a.lobby_connected
            assert view(a, b.peer_id).impairment is None  # nothing was stored


async def test_connect_refuses_wrong_argument_types() -> None:
    """Checked at the call, before any I/O: no lobby needed."""
    url = "ws://127.0.0.1:9"
    with pytest.raises(ConfigError, match="config"):
        connect(url, config={"token": "x"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="metadata"):
        connect(url, metadata=[("k", "v")])  # type: ignore[arg-type]


async def test_bad_snapshot_raises_even_with_no_peer(lobby: LobbyServer) -> None:
    async with connect(lobby.url, create=True, config=LOOPBACK) as session:
        bad: list[Any] = [{1: 5}, {1: {"x": {1, 2}}}, {(1, 2): {"x": 1}}, [1, 2]]
        for entities in bad:
            with pytest.raises(EncodeError):
                session.send_snapshot(entities)
        assert session.send_snapshot({1: {"x": 1.0}}) is False  # valid, nobody to send to


async def test_stats_updated_events_carry_measured_rtt(lobby: LobbyServer) -> None:
    cfg = loopback_config(heartbeat_interval_s=0.05, stats_interval_s=0.1)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log = EventLog(a)
        # Several heartbeats (ping/pong) happen before an update reports an RTT.
        await log.wait_for(
            lambda _: any(e.stats.rtt_ms > 0 for e in log.of(StatsUpdated, b.peer_id))
        )
        updates = log.of(StatsUpdated, b.peer_id)
        assert all(isinstance(e, StatsUpdated) for e in updates)
        assert 0.0 < updates[-1].stats.rtt_ms < 1000.0
        assert not log.of(StatsUpdated, a.peer_id)  # only about remote peers


async def test_quantized_snapshot_field_arrives_rounded(lobby: LobbyServer) -> None:
    cfg = loopback_config(snapshot_quantize={"x": 0.5})
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log_b = EventLog(b)
        tick = 0
        while not log_b.of(SnapshotReceived, a.peer_id):  # unreliable: resend per round trip
            assert a.send_snapshot({1: {"x": 1.26, "y": 1.26, "name": "p1"}})
            a.send_event(tick)
            tick += 1
            await log_b.wait_count(EventReceived, tick)
            assert tick < 50
        snap = log_b.of(SnapshotReceived, a.peer_id)[0]
        assert snap.entities == {1: {"x": 1.5, "y": 1.26, "name": "p1"}}


async def test_inbound_loss_drops_only_received_datagrams(lobby: LobbyServer) -> None:
    # a's log is read only at the end: let a's queue hold every state (no coalescing).
    async with mesh(lobby.url, 2, loopback_config(max_queued_states=1000)) as (a, b):
        log_a, log_b = EventLog(a), EventLog(b)
        lossy = NetworkConditions(loss=0.25, seed=11)
        a.set_conditions(inbound=lossy, peer=b.peer_id)
        v = view(a, b.peer_id)
        assert v.inbound_conditions == lossy and v.conditions is not None
        assert v.conditions.is_clean
        rounds, per_round = 40, 5
        for r in range(rounds):  # a -> b is clean: a's events to b pace the rounds
            for i in range(per_round):
                a.send_state({"r": r, "i": i})
                b.send_state({"r": r, "i": i})
            a.send_event(r)
            await log_b.wait_count(EventReceived, r + 1)
        sent = rounds * per_round
        await log_b.wait_count(StateReceived, int(0.8 * sent), a.peer_id)
        await log_a.wait_count(StateReceived, sent // 2, b.peer_id)
        counters = view(a, b.peer_id).impairment
        assert counters is not None
        assert counters.outbound.dropped == 0
        assert counters.inbound.offered >= sent
        share = counters.inbound.dropped / counters.inbound.offered
        assert 0.15 <= share <= 0.35, f"inbound loss {share:.2f}, configured 0.25"
        assert len(log_a.of(StateReceived, b.peer_id)) < 0.95 * sent
        assert view(b, a.peer_id).impairment is None  # b's side untouched


async def test_conditions_per_direction_reach_future_peers(lobby: LobbyServer) -> None:
    async with connect(lobby.url, create=True, config=LOOPBACK) as a:
        inbound = NetworkConditions(latency_ms=1.0, seed=1)
        a.set_conditions(inbound=inbound)
        async with connect(lobby.url, room=a.room, config=LOOPBACK) as b:
            await a.wait_for_peers(1, TIMEOUT)
            v = view(a, b.peer_id)
            assert v.inbound_conditions == inbound and v.conditions == NetworkConditions()
            outbound = NetworkConditions(latency_ms=2.0, seed=2)
            a.set_conditions(outbound, b.peer_id)  # the old call form: inbound unchanged
            v = view(a, b.peer_id)
            assert (v.conditions, v.inbound_conditions) == (outbound, inbound)
            a.set_conditions(inbound=None)
            v = view(a, b.peer_id)
            assert v.conditions == outbound and v.inbound_conditions == NetworkConditions()


def test_session_config_defaults_for_new_fields() -> None:
    assert SessionConfig().stats_interval_s == 1.0
    assert SessionConfig().snapshot_quantize is None
