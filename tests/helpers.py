"""Shared test helpers: a lobby on 127.0.0.1:0, loopback sessions, waits and domain asserts.

Everything here waits for events, never for time; timeouts are generous and
scaled by ``NETCODE_TEST_TIMESCALE`` (tests/conftest.py) on slow machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from netcode.config import LobbyConfig, SessionConfig
from netcode.events import Event, PeerConnected
from netcode.net.lobby_server import LobbyServer, serve_lobby
from netcode.net.rtc import LinkView, PeerLink
from netcode.net.session import Session, connect
from tests.conftest import TIMESCALE

__all__ = [
    "LOOPBACK",
    "TIMEOUT",
    "EventLog",
    "assert_link_freed",
    "assert_ordered_subsequence",
    "connected_events",
    "connected_pairs",
    "link_of",
    "lobby_in_thread",
    "loopback_config",
    "mesh",
    "running_lobby",
    "silence_link",
    "view",
]

# One generous unit for waits that only matter when something is broken.
TIMEOUT = 10.0 * TIMESCALE
LOOPBACK = SessionConfig(host_addresses=("127.0.0.1",))

E = TypeVar("E")


def loopback_config(**overrides: Any) -> SessionConfig:
    """SessionConfig pinned to 127.0.0.1 with ``iceServers=[]`` (no internet), plus overrides."""
    return dataclasses.replace(LOOPBACK, **overrides)


@contextlib.asynccontextmanager
async def running_lobby(config: LobbyConfig | None = None) -> AsyncIterator[LobbyServer]:
    """A real lobby server on 127.0.0.1, ephemeral port; closed on exit."""
    server = await serve_lobby(host="127.0.0.1", port=0, config=config or LobbyConfig())
    try:
        yield server
    finally:
        await server.close()


class EventLog:
    """Drains one session's events into a list and waits for conditions on it.

    Lets a test wait for "PeerLost from X" without losing the events that came
    before it (``next_event`` consumes).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[Event] = []

    def of(self, cls: type[E], peer_id: str | None = None) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, cls) and (peer_id is None or getattr(e, "peer_id", None) == peer_id)
        ]

    async def wait_for(
        self, cond: Callable[[list[Event]], bool], within: float = TIMEOUT
    ) -> list[Event]:
        """Pull events until ``cond(self.events)`` holds; TimeoutError otherwise."""
        async with asyncio.timeout(within):
            while not cond(self.events):
                self.events.append(await self.session.next_event())
        return self.events

    async def wait_count(
        self, cls: type[Any], n: int, peer_id: str | None = None, within: float = TIMEOUT
    ) -> None:
        """Wait until at least ``n`` events of ``cls`` (from ``peer_id``) arrived."""
        await self.wait_for(lambda _: len(self.of(cls, peer_id)) >= n, within)

    async def wait_event(
        self, cls: type[E], peer_id: str | None = None, within: float = TIMEOUT
    ) -> E:
        """The first event of ``cls`` (from ``peer_id``), waiting for it if needed."""
        await self.wait_for(lambda _: bool(self.of(cls, peer_id)), within)
        return self.of(cls, peer_id)[0]


@contextlib.asynccontextmanager
async def mesh(
    url: str, n: int, config: SessionConfig = LOOPBACK, within: float = TIMEOUT
) -> AsyncIterator[list[Session]]:
    """``n`` sessions in one new room, every pair connected; all closed on exit.

    Peers join one after another (each newcomer offers to everyone already there).
    """
    sessions: list[Session] = []
    try:
        sessions.append(await connect(url, create=True, max_players=max(n, 2), config=config))
        for _ in range(n - 1):
            sessions.append(await connect(url, room=sessions[0].room, config=config))
        async with asyncio.timeout(within):
            await asyncio.gather(*(s.wait_for_peers(n - 1) for s in sessions))
        yield sessions
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


def view(session: Session, peer_id: str) -> LinkView:
    """The public diagnostic view of ``session``'s live link to ``peer_id`` (must exist)."""
    v = session.link_view(peer_id)
    assert v is not None, f"no live link to {peer_id}"
    return v


def link_of(session: Session, peer_id: str) -> PeerLink:
    """The live link of ``session`` to ``peer_id`` (white box, for fault injection)."""
    link = session._link(peer_id)
    assert link is not None, f"no live link to {peer_id}"
    return link


def silence_link(link: PeerLink) -> None:
    """Make a link die silently, like a crashed process or a pulled cable.

    Closes the UDP sockets under its ICE connection: no goodbye, no SCTP ABORT, no
    more STUN consent replies. The lobby connection stays up, so only the peers'
    heartbeat can notice.
    """
    ice = link.pc.sctp.transport.transport  # RTCDtlsTransport -> RTCIceTransport
    for protocol in list(ice._connection._protocols):
        if protocol.transport is not None:
            protocol.transport.close()


async def assert_link_freed(session: Session, peer_id: str, link: PeerLink) -> None:
    """The session holds no live link to the peer and the peer connection is closed.

    Awaits the link's own close (idempotent) rather than polling its state.
    """
    async with asyncio.timeout(TIMEOUT):
        await link.close()
    assert session.link_view(peer_id) is None, f"session still holds a link to {peer_id}"
    assert link.pc.connectionState == "closed", link.pc.connectionState


def assert_ordered_subsequence(received: Sequence[Any], sent: Sequence[Any]) -> None:
    """``received`` is exactly ``sent``: complete and in order (reliable ordered channel)."""
    assert len(received) == len(sent), f"received {len(received)} of {len(sent)}"
    for i, (got, want) in enumerate(zip(received, sent, strict=True)):
        assert got == want, f"message {i}: got {got!r}, want {want!r}"


def connected_pairs(sessions: Sequence[Session]) -> set[tuple[str, str]]:
    """Every (a, b) where session a sees peer b as connected."""
    return {
        (s.peer_id, p) for s in sessions for p, info in s.peers.items() if info.state == "connected"
    }


def connected_events(events: Sequence[Event]) -> set[str]:
    return {e.peer_id for e in events if isinstance(e, PeerConnected)}


@contextlib.contextmanager
def lobby_in_thread(config: LobbyConfig | None = None) -> Iterator[str]:
    """A lobby on its own event loop in a daemon thread, for tests of synchronous code.

    Yields the lobby URL; stops the server and the thread on exit.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-lobby", daemon=True)
    thread.start()
    try:
        start = serve_lobby(host="127.0.0.1", port=0, config=config or LobbyConfig())
        server = asyncio.run_coroutine_threadsafe(start, loop).result(TIMEOUT)
        try:
            yield server.url
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
