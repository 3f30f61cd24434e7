"""PeerLink without a lobby: two links in one process, signals wired directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aioice.ice
import pytest

from netcode.config import SessionConfig
from netcode.events import (
    EventReceived,
    PeerConnected,
    PeerConnectFailed,
    StateReceived,
)
from netcode.net.rtc import PeerLink, _remote_candidate, pinned_host_addresses
from netcode.protocol import wire
from netcode.protocol.link import LinkEvent
from tests.helpers import LOOPBACK, TIMEOUT, loopback_config

pytestmark = pytest.mark.timeout(60)

Rewrite = Callable[[str, dict[str, Any]], list[tuple[str, dict[str, Any]]]]


class Pair:
    """Two links ``a`` (offerer) and ``b`` (answerer) whose signals go straight across."""

    def __init__(self, config: SessionConfig, rewrite_offer: Rewrite | None = None) -> None:
        self.events: dict[str, list[LinkEvent]] = {"a": [], "b": []}
        self.changed = asyncio.Event()
        self.rewrite = rewrite_offer
        self.a = PeerLink("b", config, emit=self._emit("a"), send_signal=self._to_b)
        self.b = PeerLink("a", config, emit=self._emit("b"), send_signal=self._to_a)

    def _emit(self, side: str) -> Callable[[LinkEvent], None]:
        def emit(event: LinkEvent) -> None:
            self.events[side].append(event)
            self.changed.set()

        return emit

    async def _to_b(self, kind: str, data: dict[str, Any]) -> None:
        signals = self.rewrite(kind, data) if self.rewrite else [(kind, data)]
        for k, d in signals:
            self.b.handle_signal(k, d)

    async def _to_a(self, kind: str, data: dict[str, Any]) -> None:
        self.a.handle_signal(kind, data)

    async def wait(self, cond: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT):
            while not cond():
                self.changed.clear()
                await self.changed.wait()

    def of(self, side: str, cls: type[Any]) -> list[Any]:
        return [e for e in self.events[side] if isinstance(e, cls)]

    async def close(self) -> None:
        await asyncio.gather(self.a.close(), self.b.close())


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    p = Pair(LOOPBACK)
    p.b.start(offer=False)
    p.a.start(offer=True)
    try:
        yield p
    finally:
        await p.close()


async def test_direct_links_connect_and_carry_traffic(pair: Pair) -> None:
    await pair.wait(lambda: bool(pair.of("a", PeerConnected) and pair.of("b", PeerConnected)))
    assert pair.a.state == pair.b.state == "connected"
    assert pair.a.send_state(wire.pack_payload({"x": 1.5}))
    pair.a.send_reliable("events", wire.encode_reliable("hello", 0))
    await pair.wait(lambda: bool(pair.of("b", StateReceived) and pair.of("b", EventReceived)))
    assert pair.of("b", StateReceived)[0] == StateReceived("a", {"x": 1.5}, 0)
    assert pair.of("b", EventReceived)[0] == EventReceived("a", "hello", "events")


async def test_close_frees_the_peer_connection(pair: Pair) -> None:
    await pair.wait(lambda: pair.a.state == "connected")
    await pair.a.close()
    assert pair.a.state == "closed"
    assert pair.a.pc.connectionState == "closed"
    assert pair.a.send_state(wire.pack_payload(1)) is False
    await pair.a.close()  # idempotent


async def test_trickled_candidates_are_accepted_and_mdns_dropped() -> None:
    def trickle(kind: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Turn aiortc's all-in-SDP offer into a browser-style trickled one."""
        if kind != "offer":
            return [(kind, data)]
        lines = data["sdp"].splitlines()
        cands = [ln.removeprefix("a=") for ln in lines if ln.startswith("a=candidate:")]
        kept = [ln for ln in lines if not ln.startswith(("a=candidate:", "a=end-of-candidates"))]
        offer = {"type": "offer", "sdp": "\r\n".join(kept) + "\r\n"}
        mdns = "candidate:1 1 udp 2130706431 3f2a-0b1c.local 5000 typ host"
        out: list[tuple[str, dict[str, Any]]] = [("offer", offer)]
        out.append(("candidate", {"candidate": mdns, "sdpMid": "0", "sdpMLineIndex": 0}))
        out += [("candidate", {"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0}) for c in cands]
        return out

    p = Pair(LOOPBACK, rewrite_offer=trickle)
    try:
        p.b.start(offer=False)
        p.a.start(offer=True)
        await p.wait(lambda: bool(p.of("a", PeerConnected) and p.of("b", PeerConnected)))
    finally:
        await p.close()


async def test_garbage_offer_fails_cleanly() -> None:
    def corrupt(kind: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, {"type": "offer", "sdp": 42} if kind == "offer" else data)]

    p = Pair(loopback_config(connect_timeout_s=1.5), rewrite_offer=corrupt)
    try:
        p.b.start(offer=False)
        p.a.start(offer=True)
        await p.wait(lambda: bool(p.of("b", PeerConnectFailed)))
        assert "negotiation failed" in p.of("b", PeerConnectFailed)[0].reason
        assert p.b.state == "failed"
        # The offerer never gets an answer: its own connect timeout fires.
        await p.wait(lambda: bool(p.of("a", PeerConnectFailed)))
    finally:
        await p.close()


def test_remote_candidate_parsing() -> None:
    line = "candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx raddr 0.0.0.0 rport 0"
    cand = _remote_candidate({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0})
    assert cand is not None
    assert (cand.ip, cand.port, cand.type, cand.sdpMid) == ("192.0.2.7", 46154, "srflx", "0")
    no_mid = _remote_candidate({"candidate": line.removeprefix("candidate:")})
    assert no_mid is not None and no_mid.sdpMLineIndex == 0
    for bad in (
        {"candidate": "candidate:1 1 udp 1 abcd.local 5000 typ host"},
        {"candidate": "candidate:garbage"},
        {"candidate": ""},
        {"candidate": 42},
        {},
    ):
        assert _remote_candidate(bad) is None


def test_host_filter_is_scoped_to_the_pinned_context() -> None:
    with pinned_host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    # Outside the block aioice's own behaviour is back (it never returns loopback).
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    with pinned_host_addresses(None):
        assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_pin_does_not_leak_into_other_tasks() -> None:
    seen: list[list[str]] = []

    async def other() -> None:
        seen.append(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False))

    with pinned_host_addresses(["127.0.0.1"]):
        inside = asyncio.create_task(other())  # created inside: inherits the pin
        await inside
    outside = asyncio.create_task(other())
    await outside
    assert seen[0] == ["127.0.0.1"]
    assert "127.0.0.1" not in seen[1]
