"""Sessions end to end: real lobby + real aiortc peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from netcode.config import ChannelConfig, NetworkConditions, SessionConfig
from netcode.errors import ConfigError, ConnectTimeout, EncodeError
from netcode.events import (
    EventReceived,
    PeerConnected,
    PeerConnectFailed,
    PeerJoined,
    PeerLeft,
    PeerLost,
    SnapshotReceived,
    StateReceived,
)
from netcode.lobby.messages import SignalMsg
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from netcode.net.signaling import SignalingClient
from netcode.protocol import wire
from tests.helpers import (
    LOOPBACK,
    TIMEOUT,
    EventLog,
    assert_link_freed,
    assert_ordered_subsequence,
    connected_pairs,
    link_of,
    loopback_config,
    mesh,
    running_lobby,
    silence_link,
    view,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


def events_from(log: EventLog, peer_id: str) -> list[Any]:
    return [e.data for e in log.of(EventReceived, peer_id)]


async def test_two_peers_exchange_state_and_events(lobby: LobbyServer) -> None:
    # A burst of 100 states with nobody polling: let the queue hold them all.
    async with mesh(lobby.url, 2, loopback_config(max_queued_states=100)) as (a, b):
        assert a.peers[b.peer_id].state == b.peers[a.peer_id].state == "connected"
        logs = {a.peer_id: EventLog(a), b.peer_id: EventLog(b)}
        n = 100
        for i in range(n):
            assert a.send_state({"i": i, "from": "a"})
            assert b.send_state({"i": i, "from": "b"})
            a.send_event({"seq": i})
            b.send_event({"seq": i})
        for me, other in ((a, b), (b, a)):
            log = logs[me.peer_id]
            await log.wait_count(EventReceived, n, other.peer_id)
            assert_ordered_subsequence(
                events_from(log, other.peer_id), [{"seq": i} for i in range(n)]
            )
            states = [e.data for e in log.of(StateReceived, other.peer_id)]
            assert len(states) >= 0.8 * n, f"only {len(states)} of {n} states arrived"
            assert {s["from"] for s in states} == {"b" if me is a else "a"}
            # Newest wins: every delivered state is newer than the one before.
            seen = [s["i"] for s in states]
            assert seen == sorted(set(seen))


async def test_four_peer_mesh_all_pairs_connected(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 4) as sessions:
        ids = [s.peer_id for s in sessions]
        expected = {(x, y) for x in ids for y in ids if x != y}
        assert connected_pairs(sessions) == expected
        logs = [EventLog(s) for s in sessions]
        for s in sessions:
            for i in range(20):
                s.send_event([s.peer_id, i])
            s.send_state({"hello": s.peer_id})
        for log in logs:
            others = [p for p in ids if p != log.session.peer_id]
            for p in others:
                await log.wait_count(EventReceived, 20, p)
            for p in others:
                assert_ordered_subsequence(events_from(log, p), [[p, i] for i in range(20)])
            # Joined and connected events for exactly the three others, once each.
            joined = sorted(e.peer_id for e in log.of(PeerJoined))
            connected = sorted(e.peer_id for e in log.of(PeerConnected))
            assert joined == connected == sorted(others)


async def test_clean_leave_gives_peer_left_and_frees_the_link(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 3) as (a, b, c):
        log_a, log_c = EventLog(a), EventLog(c)
        link = link_of(a, b.peer_id)
        b.send_event("last words")
        await b.close()
        left = await log_a.wait_event(PeerLeft, b.peer_id)
        assert left.reason == "left"
        await log_c.wait_event(PeerLeft, b.peer_id)
        # The event queued just before leaving was flushed before the goodbye.
        assert events_from(log_a, b.peer_id) == ["last words"]
        assert log_a.of(PeerLost) == []
        assert b.peer_id not in a.peers
        await assert_link_freed(a, b.peer_id, link)
        # Exactly one PeerLeft, although both the goodbye and the lobby said so. A later
        # join is relayed by the lobby after its peer_left, so by then both were handled.
        async with connect(lobby.url, room=a.room, config=LOOPBACK) as d:
            await log_a.wait_event(PeerJoined, d.peer_id)
            assert len(log_a.of(PeerLeft, b.peer_id)) == 1


async def test_silent_death_is_detected_by_heartbeat(lobby: LobbyServer) -> None:
    cfg = loopback_config(heartbeat_interval_s=0.1, peer_timeout_s=1.0)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log = EventLog(a)
        link = link_of(a, b.peer_id)
        start = asyncio.get_running_loop().time()
        silence_link(link_of(b, a.peer_id))  # b's process "dies"; its lobby socket stays
        await log.wait_event(PeerLost, b.peer_id, within=cfg.peer_timeout_s + 5.0)
        elapsed = asyncio.get_running_loop().time() - start
        assert elapsed >= cfg.peer_timeout_s * 0.9  # not before the timeout...
        assert elapsed < cfg.peer_timeout_s + 5.0  # ...and not aiortc's ~30 s
        assert a.peers[b.peer_id].state == "lost"
        await assert_link_freed(a, b.peer_id, link)
        a.stats(b.peer_id)  # stats outlive the link (KeyError otherwise)


async def test_abrupt_close_without_goodbye_is_peer_lost(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log = EventLog(a)
        link = link_of(a, b.peer_id)
        await link_of(b, a.peer_id).pc.close()  # no BYE, lobby still says b is here
        await log.wait_event(PeerLost, b.peer_id, within=LOOPBACK.peer_timeout_s + 5.0)
        assert log.of(PeerLeft) == []
        await assert_link_freed(a, b.peer_id, link)


async def test_unanswered_offer_gives_connect_failed(lobby: LobbyServer) -> None:
    cfg = loopback_config(connect_timeout_s=2.0)
    async with await SignalingClient.connect(lobby.url) as mute:
        info = await mute.create_room(max_players=4)  # joins, then ignores every offer
        start = asyncio.get_running_loop().time()
        async with connect(lobby.url, room=info.room, config=cfg) as session:
            log = EventLog(session)
            failed = await log.wait_event(PeerConnectFailed, mute.peer_id, within=10.0)
            elapsed = asyncio.get_running_loop().time() - start
            assert 1.5 <= elapsed < 8.0
            assert "2.0" in failed.reason
            assert session.peers[mute.peer_id].state == "failed"
            assert session.link_view(mute.peer_id) is None
            assert session.send_state({"x": 1}) is False
            # The mute peer did get our offer (and end-of-candidates) through the lobby.
            kinds = []
            async with asyncio.timeout(TIMEOUT):
                while "end_of_candidates" not in kinds:
                    msg = await mute.next_event()
                    if isinstance(msg, SignalMsg):
                        kinds.append(msg.kind)
            assert kinds == ["offer", "end_of_candidates"]


async def test_unreachable_lobby_raises_connect_timeout() -> None:
    async with running_lobby() as server:
        url = server.url
    with pytest.raises(ConnectTimeout):
        await asyncio.wait_for(connect(url, config=LOOPBACK), TIMEOUT)


async def test_malformed_packets_are_counted_and_dropped(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log = EventLog(b)
        link = link_of(a, b.peer_id)
        state_ch, events_ch = link._channels["state"], link._channels["events"]
        junk = [
            (state_ch, b"\xc1"),  # never-used msgpack byte
            (state_ch, b"not msgpack at all \xff"),
            (state_ch, "a text message"),
            (state_ch, b"\x93\x01\x02" + b"\x91" * 2000 + b"\xc0"),  # absurd depth
            (state_ch, wire.serialize(wire.Event("event on the state channel"))),
            (events_ch, wire.serialize(wire.Ping(1))),  # ping on a reliable channel
            (events_ch, wire.serialize(wire.Chunk(9, 1, 3, b"x"))),  # chunk out of order
            (events_ch, b"\x92\x07\x01"),  # wrong version
        ]
        for ch, data in junk:
            ch.send(data)
        a.send_event("still works")
        assert a.send_state({"ok": True})
        await log.wait_event(EventReceived, a.peer_id)
        await log.wait_event(StateReceived, a.peer_id)
        assert b.stats(a.peer_id).bad_packets == len(junk)
        assert b.peers[a.peer_id].state == "connected"
        # A stale state (older seq than one delivered) is counted, not delivered.
        state_ch.send(wire.serialize(wire.State(0, 0, 0, 0, {"stale": True})))
        b.send_event("sync")
        a.send_event("sync")
        await log.wait_for(lambda _: len(log.of(EventReceived)) >= 2)
        assert all(e.data != {"stale": True} for e in log.of(StateReceived))
        assert b.stats(a.peer_id).stale_drops >= 1
        # A well-formed SNAPSHOT whose payload is not a snapshot: counted, not delivered.
        seq = link.endpoint.next_seq
        state_ch.send(wire.serialize(wire.Snapshot(seq, 0, 0, 0, "not a snapshot")))
        a.send_state({"n": 1})  # same seq as the junk: stale on arrival
        a.send_state({"n": 2})
        await log.wait_for(lambda _: any(e.data == {"n": 2} for e in log.of(StateReceived)))
        assert b.stats(a.peer_id).bad_packets == len(junk) + 1
        assert log.of(SnapshotReceived) == []


async def test_large_event_is_chunked_and_arrives_intact(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log = EventLog(b)
        blob = bytes(range(256)) * 1200  # 300 KiB
        a.send_event("before")
        a.send_event({"blob": blob, "tag": "big"})
        a.send_event("after")
        await log.wait_for(lambda _: len(log.of(EventReceived)) >= 3)
        got = events_from(log, a.peer_id)
        assert got[0] == "before" and got[2] == "after"
        assert got[1]["tag"] == "big" and got[1]["blob"] == blob
        assert b.stats(a.peer_id).bad_packets == 0
        with pytest.raises(EncodeError, match="max_event_bytes"):
            a.send_event(b"x" * (LOOPBACK.limits.max_event_bytes + 1))


async def test_state_backpressure_drops_instead_of_queueing(lobby: LobbyServer) -> None:
    cfg = loopback_config(state_buffer_threshold=8_000)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        payload = {"pad": b"x" * 1000}
        results = [a.send_state(payload) for _ in range(500)]  # no yield: nothing drains
        assert results[0] is True
        assert results.count(False) > 0
        link = link_of(a, b.peer_id)
        # Bounded: at most one message over the threshold ever waits in aiortc.
        assert link.buffered_amount("state") <= cfg.state_buffer_threshold + 1200
        assert a.stats(b.peer_id).state_drops == results.count(False)


async def test_reliable_queue_stays_bounded_and_delivers_everything(lobby: LobbyServer) -> None:
    cfg = loopback_config(reliable_buffer_limit=32_768)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log = EventLog(b)
        link = link_of(a, b.peer_id)
        n = 200
        for i in range(n):
            a.send_event({"i": i, "pad": b"y" * 2000})  # 400 KB offered at once
        # aiortc holds at most the limit plus one packet; the rest waits in our queue.
        assert link._channels["events"].bufferedAmount <= cfg.reliable_buffer_limit + 2100
        await log.wait_for(lambda _: len(log.of(EventReceived)) >= n)
        assert [e["i"] for e in events_from(log, a.peer_id)] == list(range(n))


async def test_oversize_state_is_sent_with_one_warning(
    lobby: LobbyServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log = EventLog(b)
        with caplog.at_level(logging.WARNING, logger="netcode.link"):
            assert a.send_state({"pad": b"z" * 2000, "n": 1})
            assert a.send_state({"pad": b"z" * 2000, "n": 2})
        await log.wait_for(lambda _: any(e.data["n"] == 2 for e in log.of(StateReceived)))
        assert a.oversize_states == 2
        warnings = [r for r in caplog.records if "max_state_bytes" in r.getMessage()]
        assert len(warnings) == 1


async def test_rtt_and_acks_are_measured(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log_a, log_b = EventLog(a), EventLog(b)
        for i in range(30):  # a few event round trips: heartbeats and acks flow meanwhile
            a.send_state({"i": i})
            b.send_state({"i": i})
            a.send_event(i)
            await log_b.wait_count(EventReceived, i + 1)
            b.send_event(i)
            await log_a.wait_count(EventReceived, i + 1)
        stats = a.stats(b.peer_id)
        # Loopback: well under one heartbeat interval (250 ms). RTT that included the
        # peer's ack hold time read 110-125 ms on an idle link.
        assert 0.0 < stats.rtt_ms < 100.0
        assert stats.packets_sent >= 30  # plus header-only ACKs on idle heartbeat ticks
        assert stats.packets_received >= 24
        assert stats.packets_acked >= 1
        with pytest.raises(KeyError):
            a.stats("nobody")


async def test_snapshots_arrive_whole_and_use_deltas(lobby: LobbyServer) -> None:
    async with mesh(lobby.url, 2) as (a, b):
        log_a, log_b = EventLog(a), EventLog(b)
        entities: dict[int, dict[str, Any]] = {1: {"x": 0.0, "name": "p1"}, 2: {"x": 5.0}}
        for tick in range(30):
            entities[1]["x"] = float(tick)
            assert a.send_snapshot(entities)
            b.send_state({"tick": tick})  # carries acks back to a
            a.send_event(tick)  # round trip so acks arrive before the next tick
            await log_b.wait_count(EventReceived, tick + 1)
            b.send_event(tick)
            await log_a.wait_count(EventReceived, tick + 1)
        snaps = log_b.of(SnapshotReceived, a.peer_id)
        assert len(snaps) >= 24
        xs = [s.entities[1]["x"] for s in snaps]
        assert xs == sorted(set(xs)) and set(xs) <= {float(t) for t in range(30)}
        for snap in snaps:  # whole entities every time, although most were deltas
            assert snap.entities == {1: {"x": snap.entities[1]["x"], "name": "p1"}, 2: {"x": 5.0}}
        assert view(a, b.peer_id).delta_snapshots > 0


async def test_custom_channel_and_targeted_send(lobby: LobbyServer) -> None:
    channels = (
        ChannelConfig.unreliable(),
        ChannelConfig.reliable_ordered(),
        ChannelConfig(label="chat", id=5),
    )
    cfg = loopback_config(channels=channels)
    async with mesh(lobby.url, 3, cfg) as (a, b, c):
        log_b, log_c = EventLog(b), EventLog(c)
        a.send_event("hi b", to=b.peer_id, channel="chat")
        a.send_event("hi all")
        await log_b.wait_for(lambda _: len(log_b.of(EventReceived)) >= 2)
        await log_c.wait_event(EventReceived, a.peer_id)
        assert [(e.data, e.channel) for e in log_b.of(EventReceived)] in (
            [("hi b", "chat"), ("hi all", "events")],
            [("hi all", "events"), ("hi b", "chat")],
        )
        assert [e.data for e in log_c.of(EventReceived)] == ["hi all"]
        with pytest.raises(ConfigError):
            a.send_event("x", channel="state")
        with pytest.raises(ConfigError):
            a.send_event("x", channel="nope")
        assert a.send_state({"x": 1}, to="nobody") is False


async def test_async_iteration_ends_when_closed(lobby: LobbyServer) -> None:
    session = await connect(lobby.url, create=True, config=LOOPBACK)
    seen: list[Any] = []

    async def consume(s: Session) -> None:
        async for ev in s:
            seen.append(ev)

    task = asyncio.create_task(consume(session))
    other = await connect(lobby.url, room=session.room, config=LOOPBACK)
    await session.wait_for_peers(1, TIMEOUT)
    await other.close()
    await session.close()
    await asyncio.wait_for(task, TIMEOUT)
    assert any(isinstance(e, PeerJoined) for e in seen)


async def test_wait_for_peers_times_out(lobby: LobbyServer) -> None:
    async with connect(lobby.url, create=True, config=LOOPBACK) as session:
        with pytest.raises(ConnectTimeout):
            await session.wait_for_peers(1, timeout=0.2)
        with pytest.raises(TimeoutError):
            await session.next_event(timeout=0.05)


async def test_config_checked_before_connecting(lobby: LobbyServer) -> None:
    with pytest.raises(ConfigError, match="state"):
        await connect(lobby.url, config=SessionConfig(channels=(ChannelConfig.reliable_ordered(),)))
    with pytest.raises(ConfigError, match="not both"):
        await connect(lobby.url, room="ABCDEF", create=True, config=LOOPBACK)


async def test_set_conditions_adds_latency_to_one_link(lobby: LobbyServer) -> None:
    cfg = loopback_config(heartbeat_interval_s=0.05)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log_a, log_b = EventLog(a), EventLog(b)
        a.set_conditions(NetworkConditions(latency_ms=60.0, seed=1), peer=b.peer_id)
        b.set_conditions(NetworkConditions(latency_ms=60.0, seed=2))
        loop = asyncio.get_running_loop()
        for i in range(6):  # event round trips under ~120 ms RTT; heartbeats meanwhile
            start = loop.time()
            a.send_event(i)
            await log_b.wait_count(EventReceived, i + 1)
            b.send_event(i)
            await log_a.wait_count(EventReceived, i + 1)
            assert loop.time() - start >= 0.1
        assert a.stats(b.peer_id).rtt_ms >= 80.0
        a.set_conditions(None)
        b.set_conditions(None, peer=a.peer_id)
        a.send_event("flush")  # datagrams already delayed keep their order: let them pass
        await log_b.wait_count(EventReceived, 7)
        before = view(a, b.peer_id).impairment
        assert before is not None and before.delayed > 0
        a.send_event("clean again")
        await log_b.wait_count(EventReceived, 8)
        after = view(a, b.peer_id).impairment
        assert after is not None
        assert after.outbound.offered > before.outbound.offered
        assert after.delayed == before.delayed  # nothing delayed any more


async def test_receive_only_peer_still_acks_on_heartbeat(lobby: LobbyServer) -> None:
    """b never sends state; its heartbeat ACKs still give a delta baselines and stats."""
    cfg = loopback_config(heartbeat_interval_s=0.05)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        log_a, log_b = EventLog(a), EventLog(b)
        tick = 0
        async with asyncio.timeout(TIMEOUT):
            while (
                view(a, b.peer_id).delta_snapshots == 0
            ):  # one event round trip per tick as the clock
                a.send_snapshot({1: {"x": float(tick)}})
                a.send_event(tick)
                await log_b.wait_count(EventReceived, tick + 1)
                b.send_event(tick)
                await log_a.wait_count(EventReceived, tick + 1)
                tick += 1
        assert a.stats(b.peer_id).packets_acked > 0
        assert b.stats(a.peer_id).packets_sent > 0  # header-only ACK packets...
        assert log_a.of(StateReceived) == [] and log_a.of(SnapshotReceived) == []  # ...only
