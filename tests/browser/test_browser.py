"""Browser players in the same match as Python players: js/ in a real Chromium.

A real lobby and real Python sessions on 127.0.0.1; the page (js/test/harness.html)
joins the same room through the JS client. Everything waits for events; timeouts
only matter when something is broken.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netcode.events import (
    EventReceived,
    PeerConnected,
    PeerLeft,
    PeerLost,
    SnapshotReceived,
    StateReceived,
)
from netcode.net.lobby_server import LobbyServer
from netcode.net.session import Session, connect
from tests.browser.conftest import open_harness
from tests.conftest import TIMESCALE
from tests.helpers import (
    TIMEOUT,
    EventLog,
    link_of,
    loopback_config,
    silence_link,
)

__all__: list[str] = []

pytestmark = pytest.mark.timeout(90 * TIMESCALE)

QUANTIZE = {"x": 0.01}
CONFIG = loopback_config(snapshot_quantize=QUANTIZE)
MS = int(TIMEOUT * 1000)
BIG = "z" * 5_000  # an event over 1,200 B: travels as CHUNKs both ways


async def join(page: Any, url: str, **opts: Any) -> dict[str, Any]:
    """The page joins (``room=``) or creates a room; {index, peerId, room}."""
    opts = {"quantize": QUANTIZE, **opts}
    info: dict[str, Any] = await page.evaluate("([u, o]) => window.join(u, o)", [url, opts])
    return info


async def wait_log(page: Any, index: int, predicate: str) -> None:
    """Wait in the page until ``predicate`` (JS, over ``log``) holds."""
    await page.evaluate(f"([i, ms]) => window.waitLog(i, (log) => {predicate}, ms)", [index, MS])


async def wait_connected(page: Any, index: int, n: int) -> None:
    await wait_log(page, index, f"log.filter((e) => e.type === 'PeerConnected').length >= {n}")


async def exchange_both_ways(page: Any, index: int, py: Session, log: EventLog) -> None:
    """State, events (one chunked) and snapshots from Python to the tab and back."""
    bid = await page.evaluate("(i) => window.sessions[i].peerId", index)
    for i in range(20):
        py.send_state({"i": i, "f": 2.0})
        await asyncio.sleep(0)  # let the state go out one packet at a time
    py.send_event({"chat": "hi", "n": 2**60})
    py.send_event({"blob": BIG})
    world: dict[int | str, dict[str, Any]] = {1: {"x": 1.5, "hp": 100}, "p2": {"name": "ann"}}
    py.send_snapshot(world)
    await wait_log(
        page,
        index,
        "log.some((e) => e.type === 'StateReceived') &&"
        " log.filter((e) => e.type === 'EventReceived').length >= 2 &&"
        " log.some((e) => e.type === 'SnapshotReceived')",
    )
    got = await page.evaluate(
        """(i) => { const log = window.sessions[i].log;
           const ev = log.filter((e) => e.type === 'EventReceived');
           const snap = log.find((e) => e.type === 'SnapshotReceived');
           return { state: window.plain(log.find((e) => e.type === 'StateReceived').data),
                    events: ev.map((e) => window.plain(e.data)), size: ev[1].size,
                    snap: window.plain(snap.entities), bigIsBigInt: typeof ev[0].data.n }; }""",
        index,
    )
    assert got["state"]["f"] == 2 and 0 <= got["state"]["i"] < 20
    assert got["events"][0] == {"chat": "hi", "n": str(2**60)}
    assert got["bigIsBigInt"] == "bigint"
    assert got["events"][1] == {"blob": BIG} and got["size"] > 5_000
    assert got["snap"]["$map"][0] == [1, {"x": 1.5, "hp": 100}], "int entity id stays an int"
    assert got["snap"]["$map"][1] == ["p2", {"name": "ann"}]

    await page.evaluate(
        """(i) => { const s = window.sessions[i]; const N = window.netcode;
           s.sendState({ from: 'browser', v: new N.Float(-2), k: new Map([[7, 'seven']]) });
           s.sendEvent({ chat: 'yo', big: 2n ** 60n });
           s.sendEvent({ blob: 'w'.repeat(5000) });
           s.sendSnapshot(new Map([[5, { x: 0.25, name: 'b' }], ['me', { hp: 3 }]])); }""",
        index,
    )
    await log.wait_for(
        lambda _: (
            bool(log.of(StateReceived, bid))
            and len(log.of(EventReceived, bid)) >= 2
            and bool(log.of(SnapshotReceived, bid))
        )
    )
    state = log.of(StateReceived, bid)[0].data
    assert state == {"from": "browser", "v": -2.0, "k": {7: "seven"}}
    assert type(state["v"]) is float, "Float() arrives as a Python float"
    events = [e.data for e in log.of(EventReceived, bid)]
    assert events[0] == {"chat": "yo", "big": 2**60}
    assert events[1] == {"blob": "w" * 5000}
    snap = log.of(SnapshotReceived, bid)[0].entities
    assert snap == {5: {"x": 0.25, "name": "b"}, "me": {"hp": 3}}


async def test_browser_joins_python_room_as_offerer(lobby: LobbyServer, page: Any) -> None:
    async with connect(lobby.url, create=True, config=CONFIG) as py:
        log = EventLog(py)
        me = await join(page, lobby.url, room=py.room)
        await wait_connected(page, me["index"], 1)
        await log.wait_event(PeerConnected, me["peerId"])
        await exchange_both_ways(page, me["index"], py, log)
        assert page.page_errors == []


async def test_browser_creates_room_python_offers(lobby: LobbyServer, page: Any) -> None:
    me = await join(page, lobby.url, create=True)
    async with connect(lobby.url, room=me["room"], config=CONFIG) as py:
        log = EventLog(py)
        await log.wait_event(PeerConnected, me["peerId"])
        await wait_connected(page, me["index"], 1)
        await exchange_both_ways(page, me["index"], py, log)


_LIFECYCLE = """window.sessions[0].log.filter((e) => /^Peer/.test(e.type))
    .map((e) => `${e.type} ${e.peerId} ${e.reason ?? ''} ${e.detail ?? ''}`)"""


async def test_mixed_mesh_and_tab_close(lobby: LobbyServer, browser: Any, js_server: str) -> None:
    """Python A, two browsers, Python B in one room; closing a tab is seen by all."""
    a = await connect(lobby.url, create=True, config=CONFIG)
    b: Session | None = None
    tabs = [await open_harness(browser, js_server) for _ in range(2)]
    try:
        logs = {"a": EventLog(a)}
        joined = [await join(t, lobby.url, room=a.room) for t in tabs]
        b = await connect(lobby.url, room=a.room, config=CONFIG)
        logs["b"] = EventLog(b)
        try:
            async with asyncio.timeout(TIMEOUT):
                await asyncio.gather(a.wait_for_peers(3), b.wait_for_peers(3))
            for t, j in zip(tabs, joined, strict=True):
                await wait_connected(t, j["index"], 3)
        except Exception as exc:  # a TimeoutError, or playwright's when the page's wait failed
            seen = [await t.evaluate("window.sessions[0].peers") for t in tabs]
            events = [await t.evaluate(_LIFECYCLE) for t in tabs]
            raise AssertionError(
                f"mesh incomplete: a {a.peers} b {b.peers} tabs {seen} {events}"
            ) from exc
        await tabs[0].evaluate("window.sessions[0].sendEvent({hello: 'all'})")
        for log in logs.values():
            await log.wait_for(lambda ev: any(_is_event(e, {"hello": "all"}) for e in ev))
        a.send_event({"from": "a"})
        await wait_log(
            tabs[1], 0, "log.some((e) => e.type === 'EventReceived' && e.data.from === 'a')"
        )
        await wait_log(  # browser <-> browser, directly
            tabs[1], 0, "log.some((e) => e.type === 'EventReceived' && e.data.hello === 'all')"
        )
        gone = joined[0]["peerId"]
        await tabs[0].close()
        for log in logs.values():
            await log.wait_for(lambda ev: any(_ended(e, gone) for e in ev))
        await wait_log(
            tabs[1], 0, f"log.some((e) => e.peerId === '{gone}' && /Peer(Left|Lost)/.test(e.type))"
        )
    finally:
        for t in tabs:
            await t.close()
        await asyncio.gather(a.close(), *([b.close()] if b else []), return_exceptions=True)


def _is_event(event: object, data: object) -> bool:
    return isinstance(event, EventReceived) and event.data == data


def _ended(event: object, peer: str) -> bool:
    return isinstance(event, PeerLeft | PeerLost) and event.peer_id == peer


async def _echo_states(py: Session, peer: str, n: int) -> None:
    """Python sends {"t": i}; the peer echoes it back as state; one in flight at a time."""
    for i in range(n):
        py.send_state({"t": i}, to=peer)
        async with asyncio.timeout(TIMEOUT):
            while True:
                ev = await py.next_event()
                if isinstance(ev, StateReceived) and ev.peer_id == peer and ev.data == {"e": i}:
                    break


async def test_stats_sane_on_both_sides_after_echoes(lobby: LobbyServer, page: Any) -> None:
    """200 state round trips Python -> tab -> Python: both sides' stats are sane.

    Timing lives in ``python -m benchmarks.browser`` (connect and echo RTT beside
    Python <-> Python); this checks only what must hold: every echo arrives, RTT is
    measured on both sides, and the tab acks like Python does, so Python counts
    none of its 200 packets as lost.
    """
    n = 200
    async with connect(lobby.url, create=True, config=CONFIG) as py:
        me = await join(page, lobby.url, room=py.room)
        await wait_connected(page, me["index"], 1)
        await page.evaluate(
            """(i) => { const s = window.sessions[i];
               s.on('StateReceived', (e) => {
                 if ('t' in e.data) s.sendState({ e: e.data.t }, e.peerId); }); }""",
            me["index"],
        )
        await EventLog(py).wait_event(PeerConnected, me["peerId"])
        await _echo_states(py, me["peerId"], n)
        stats = py.stats(me["peerId"])
        js_stats = await page.evaluate(
            "([i, p]) => window.sessions[i].stats(p)", [me["index"], py.peer_id]
        )
    assert 0 < js_stats["rttMs"] < 1000 and 0 < stats.rtt_ms < 1000
    assert js_stats["packetsReceived"] >= n and js_stats["badPackets"] == 0
    # The browser acks every 16 accepted packets, so none of Python's 200 count as lost.
    assert stats.bad_packets == 0 and stats.loss < 0.5


@pytest.mark.parametrize("browser_offers", [True, False], ids=["browser-offers", "python-offers"])
async def test_browser_sending_no_candidates_still_connects(
    lobby: LobbyServer, page: Any, browser_offers: bool
) -> None:
    """A real browser's host candidates are mDNS names netcode can't use: none are sent.

    The Python side then learns the browser's address from its ICE checks
    (peer-reflexive); the client withholds end_of_candidates so an offering aioice
    does not give up before those checks arrive (it did, in ~1 of 3 runs).
    """
    for _ in range(3):
        if browser_offers:
            async with connect(lobby.url, create=True, config=CONFIG) as py:
                me = await join(page, lobby.url, room=py.room, sendNoCandidates=True)
                await EventLog(py).wait_event(PeerConnected, me["peerId"])
                await wait_connected(page, me["index"], 1)
        else:
            me = await join(page, lobby.url, create=True, sendNoCandidates=True)
            async with connect(lobby.url, room=me["room"], config=CONFIG) as py:
                await EventLog(py).wait_event(PeerConnected, me["peerId"])
                await wait_connected(page, me["index"], 1)
            await page.evaluate("(i) => window.sessions[i].close()", me["index"])


def _world(step: int) -> dict[int | str, dict[str, Any]]:
    """64 entities (a full snapshot of ~3 KB: fragments); entity ``step % 64`` moves."""
    return {
        i: {"x": i * 1.25 + (step if i == step % 64 else 0), "y": -0.5 * i, "name": f"e{i}"}
        for i in range(64)
    }


async def test_snapshot_deltas_and_fragments_both_ways(lobby: LobbyServer, page: Any) -> None:
    """Full fragmented snapshots, then deltas against acked ones, quantized, both ways."""
    async with connect(lobby.url, create=True, config=CONFIG) as py:
        log = EventLog(py)
        me = await join(page, lobby.url, room=py.room)
        await wait_connected(page, me["index"], 1)
        await log.wait_event(PeerConnected, me["peerId"])
        # Count the deltas each side decodes / builds (white box: the link's codecs).
        await page.evaluate(
            """(i) => { const link = [...window.sessions[i].links.values()][0];
               window.deltas = { rx: 0, tx: 0 };
               for (const [obj, key] of [[link.snapRx, 'rx'], [link.snapTx, 'tx']]) {
                 const orig = obj._delta.bind(obj);
                 obj._delta = (...a) => { window.deltas[key]++; return orig(...a); };
               } }""",
            me["index"],
        )
        steps = 40
        for step in range(steps):
            py.send_snapshot(_world(step))
            await asyncio.sleep(0.01)  # pacing: one snapshot per 10 ms, like a 100 Hz host
        await wait_log(
            page,
            me["index"],
            f"log.some((e) => e.type === 'SnapshotReceived' && e.entities.get({(steps - 1) % 64})"
            f".x > {((steps - 1) % 64) * 1.25 + steps - 1.5})",
        )
        got = await page.evaluate(
            """(i) => { const s = window.sessions[i];
               const snaps = s.log.filter((e) => e.type === 'SnapshotReceived');
               const last = snaps[snaps.length - 1];
               return { n: snaps.length, size: last.entities.size, e5: last.entities.get(5) }; }""",
            me["index"],
        )
        assert got["size"] == 64 and got["e5"]["name"] == "e5"
        assert abs(got["e5"]["y"] + 2.5) < 1e-9
        assert got["n"] >= 2
        assert await page.evaluate("window.deltas.rx") > 0, "Python sent deltas after acks"
        # Browser -> Python: the same world from JS (int ids in a Map), 40 steps.
        await page.evaluate(
            """async ([i, steps]) => { const s = window.sessions[i];
               for (let step = 0; step < steps; step++) {
                 const w = new Map();
                 for (let k = 0; k < 64; k++) w.set(k, { x: k * 1.25 + (k === step % 64 ? step : 0),
                                                         y: -0.5 * k, name: 'e' + k });
                 s.sendSnapshot(w);
                 await new Promise((r) => setTimeout(r, 10));
               } }""",
            [me["index"], steps],
        )
        want = _world(steps - 1)

        def arrived(_: object) -> bool:
            snaps = log.of(SnapshotReceived, me["peerId"])
            return (
                bool(snaps)
                and snaps[-1].entities.keys() == want.keys()
                and all(abs(snaps[-1].entities[k]["x"] - v["x"]) < 0.006 for k, v in want.items())
            )

        await log.wait_for(arrived)
        stats = py.stats(me["peerId"])
        assert stats.bad_packets == 0
        js = await page.evaluate(
            "([i, p]) => window.sessions[i].stats(p)", [me["index"], py.peer_id]
        )
        assert js["badPackets"] == 0
        assert await page.evaluate("window.deltas.tx") > 0, "the browser sent deltas too"


async def test_bye_and_heartbeat_timeout(lobby: LobbyServer, page: Any) -> None:
    """close() says BYE (PeerLeft "left"); a silent peer is PeerLost "timeout" after 3 s."""
    async with connect(lobby.url, create=True, config=CONFIG) as py:
        log = EventLog(py)
        me = await join(page, lobby.url, room=py.room)
        await wait_connected(page, me["index"], 1)
        await log.wait_event(PeerConnected, me["peerId"])
        await page.evaluate("(i) => window.sessions[i].close()", me["index"])
        left = await log.wait_event(PeerLeft, me["peerId"])
        assert left.reason == "left"
        assert not log.of(PeerLost, me["peerId"])

        again = await join(page, lobby.url, room=py.room)
        await wait_connected(page, again["index"], 1)
        await log.wait_event(PeerConnected, again["peerId"])
        silence_link(link_of(py, again["peerId"]))  # Python goes quiet, lobby stays up
        await wait_log(
            page,
            again["index"],
            "log.some((e) => e.type === 'PeerLost' && e.reason === 'timeout')",
        )
        lost = await log.wait_event(PeerLost, again["peerId"])
        assert lost.reason in ("timeout", "closed")


async def test_kicked_by_the_owner(lobby: LobbyServer, page: Any) -> None:
    """The room's owner kicks the tab: it gets Kicked and drops its links."""
    async with connect(lobby.url, create=True, config=CONFIG) as py:
        log = EventLog(py)
        me = await join(page, lobby.url, room=py.room)
        await wait_connected(page, me["index"], 1)
        await log.wait_event(PeerConnected, me["peerId"])
        await py.kick(me["peerId"], "test")
        await wait_log(page, me["index"], "log.some((e) => e.type === 'Kicked')")
        assert await page.evaluate("(i) => window.sessions[i].links.size", me["index"]) == 0
        await log.wait_for(lambda ev: any(_ended(e, me["peerId"]) for e in ev))


async def test_lobby_errors_reach_the_caller(lobby: LobbyServer, page: Any) -> None:
    """A room that does not exist: connect() rejects with the lobby's error code."""
    code = await page.evaluate(
        """async (url) => { try { await window.netcode.connect(url, { room: 'ZZZZZZ' }); }
           catch (e) { return [e.name, e.code]; } return null; }""",
        lobby.url,
    )
    assert code == ["LobbyError", "room_not_found"]
