"""``connect_sync()``: a session for game loops that are not asyncio (pygame, arcade, ...).

The event loop runs in a background thread; every method here is called from
the game's thread. Sends are encoded in the caller's thread (so a bad payload
raises right there) and handed to the loop with ``call_soon_threadsafe``; events
are drained from the session's queue, which is safe across threads::

    with netcode.connect_sync("ws://127.0.0.1:8765", create=True) as session:
        while running:
            session.send_state({"x": x, "y": y})
            for event in session.poll():
                ...
            clock.tick(60)
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from ..config import DEFAULT_MAX_PLAYERS, NetworkConditions, SessionConfig
from ..errors import ConfigError, ConnectionClosed
from ..events import Event
from ..lobby.messages import RoomSummary
from ..protocol import wire
from ..protocol.impairment import KEEP, Keep
from ..protocol.reliability import PeerStats
from ..protocol.snapshot import Entities
from .rtc import LinkView
from .session import (
    EVENTS_LABEL,
    PeerInfo,
    Session,
    Topology,
    check_conditions_arg,
    check_connect_args,
    connect,
    list_rooms,
)

__all__ = ["SyncSession", "connect_sync", "list_rooms_sync"]

_T = TypeVar("_T")
# Slack on top of the session's own timeouts when the caller blocks on the loop.
_CALL_SLACK_S = 5.0


class _LoopThread:
    """A private event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="netcode-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        """Run ``coro`` on the loop and block for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=_CALL_SLACK_S)
        if not self._thread.is_alive():
            self.loop.close()


class SyncSession:
    """Thread-safe, blocking-free facade over a :class:`Session` (see :func:`connect_sync`)."""

    def __init__(self, runner: _LoopThread, session: Session) -> None:
        self._runner = runner
        self._session = session
        self._lobby_wait = session.config.lobby_timeout_s + _CALL_SLACK_S
        self._limits = session.config.limits
        self._closed = False

    @property
    def peer_id(self) -> str:
        return self._session.peer_id

    @property
    def room(self) -> str:
        return self._session.room

    @property
    def peers(self) -> dict[str, PeerInfo]:
        return self._session.peers

    @property
    def session(self) -> Session:
        """The asyncio session underneath; only touch it from its loop's thread."""
        return self._session

    def _post(self, fn: Any, *args: Any) -> None:
        if self._closed:
            raise ConnectionClosed("session closed")
        self._runner.loop.call_soon_threadsafe(fn, *args)

    def _any_connected(self, to: str | None) -> bool:
        peers = self._session.peers
        infos = peers.values() if to is None else [p for p in (peers.get(to),) if p]
        return any(p.state == "connected" for p in infos)

    def send_state(self, data: Any, to: str | None = None) -> bool:
        """Queue state for the loop thread. False if no target peer is connected.

        Backpressure drops happen later in the loop thread and show in
        ``stats(peer).state_drops``.
        """
        packed = wire.pack_payload(data, self._limits)  # EncodeError raised here
        if not self._any_connected(to):
            return False
        self._post(self._session.send_state, packed, to)
        return True

    def send_event(self, data: Any, to: str | None = None, *, channel: str = EVENTS_LABEL) -> None:
        """Reliable ordered message (see :meth:`Session.send_event`)."""
        packets = self._session.encode_event(data, channel)  # pure: safe in this thread
        if self._session.topology == "star" and not self._session.is_host:
            # Relayed through the host: the loop thread decides (and sizes) the relay.
            self._post(functools.partial(self._session.send_event, data, to, channel=channel))
            return
        self._post(self._session.send_packets, packets, to, channel)

    # Match lifecycle: read from the session (thread-safe views) or run on its loop.

    @property
    def topology(self) -> str:
        return self._session.topology

    @property
    def host_id(self) -> str | None:
        return self._session.host_id

    @property
    def is_host(self) -> bool:
        return self._session.is_host

    @property
    def reconnect_token(self) -> str | None:
        """See :attr:`Session.reconnect_token` (persist it to rejoin after a crash)."""
        return self._session.reconnect_token

    @property
    def metadata(self) -> dict[str, Any]:
        return self._session.metadata

    @property
    def locked(self) -> bool:
        return self._session.locked

    def kick(self, peer_id: str, reason: str = "") -> None:
        """See :meth:`Session.kick` (blocks until the lobby answers)."""
        self._runner.call(self._session.kick(peer_id, reason), self._lobby_wait)

    def lock(self, locked: bool = True) -> None:
        """See :meth:`Session.lock`."""
        self._runner.call(self._session.lock(locked), self._lobby_wait)

    def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """See :meth:`Session.update_metadata`."""
        self._runner.call(self._session.update_metadata(metadata), self._lobby_wait)

    def send_snapshot(self, entities: Entities, to: str | None = None) -> bool:
        """Snapshot (see :meth:`Session.send_snapshot`); validated, quantized and copied
        here, so the game may mutate its entity dicts right after the call, and a
        malformed map raises :class:`EncodeError` here, in the caller's thread."""
        frame = self._session.snapshot_frame(entities)  # validated and copied here
        if not self._any_connected(to):
            return False
        self._post(self._session.send_frame, frame, to)
        return True

    def poll(self) -> list[Event]:
        """Events since the last call; never blocks."""
        return self._session.poll()

    def next_event(self, timeout: float | None = None) -> Event:
        """Block until the next event (at most ``timeout`` s: then ``TimeoutError``);
        :class:`ConnectionClosed` once the session is closed and drained."""
        wait = None if timeout is None else timeout + _CALL_SLACK_S
        return self._runner.call(self._session.next_event(timeout), wait)

    def stats(self, peer_id: str) -> PeerStats:
        async def get() -> PeerStats:
            return self._session.stats(peer_id)

        return self._runner.call(get(), _CALL_SLACK_S)

    def link_view(self, peer_id: str) -> LinkView | None:
        """:meth:`Session.link_view` (state, buffers, ICE ``path``) from this thread."""

        async def get() -> LinkView | None:
            return self._session.link_view(peer_id)

        return self._runner.call(get(), _CALL_SLACK_S)

    def set_conditions(
        self,
        conditions: NetworkConditions | Keep | None = KEEP,
        peer: str | None = None,
        *,
        inbound: NetworkConditions | Keep | None = KEEP,
    ) -> None:
        """See :meth:`Session.set_conditions`; a bad value raises here, not in the loop."""
        check_conditions_arg(conditions)
        check_conditions_arg(inbound)
        self._post(lambda: self._session.set_conditions(conditions, peer, inbound=inbound))

    def wait_for_peers(self, n: int, timeout: float | None = None) -> None:
        """Block until ``n`` peers are connected (:class:`ConnectTimeout` otherwise)."""
        wait = None if timeout is None else timeout + _CALL_SLACK_S
        self._runner.call(self._session.wait_for_peers(n, timeout), wait)

    def close(self) -> None:
        """Leave cleanly and stop the background loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.call(self._session.close(), self._session.config.lobby_timeout_s + 10)
        finally:
            self._runner.stop()

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_no_running_loop() -> None:
    """Blocking this thread would freeze its event loop, and with it a lobby or session
    running there (connect_sync would then wait for lobby_timeout_s and fail): say so."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigError(
        "connect_sync() was called from a running asyncio event loop: it would block that "
        "loop (and a lobby embedded in it). Use 'await netcode.connect(...)' there, or call "
        "connect_sync from another thread"
    )


def connect_sync(
    url: str,
    *,
    room: str | None = None,
    create: bool = False,
    max_players: int = DEFAULT_MAX_PLAYERS,
    private: bool = False,
    metadata: Mapping[str, Any] | None = None,
    config: SessionConfig | None = None,
    topology: Topology = "mesh",
    quick_match: Mapping[str, Any] | None = None,
    rejoin_token: str | None = None,
) -> SyncSession:
    """Like :func:`netcode.connect`, for code without asyncio; blocks until in the room."""
    cfg = config if config is not None else SessionConfig()
    check_connect_args(metadata, cfg)
    _check_no_running_loop()
    runner = _LoopThread()

    async def open_session() -> Session:
        return await connect(
            url,
            room=room,
            create=create,
            max_players=max_players,
            private=private,
            metadata=metadata,
            config=cfg,
            topology=topology,
            quick_match=quick_match,
            rejoin_token=rejoin_token,
        )

    try:
        session = runner.call(open_session(), cfg.lobby_timeout_s * 2 + _CALL_SLACK_S)
    except BaseException:
        runner.stop()
        raise
    return SyncSession(runner, session)


def list_rooms_sync(
    url: str, *, game: str | None = None, config: SessionConfig | None = None
) -> list[RoomSummary]:
    """:func:`netcode.list_rooms` for code without asyncio (blocks, at most the timeout)."""
    _check_no_running_loop()
    cfg = config if config is not None else SessionConfig()
    runner = _LoopThread()
    try:
        return runner.call(
            list_rooms(url, game=game, config=cfg), cfg.lobby_timeout_s * 2 + _CALL_SLACK_S
        )
    finally:
        runner.stop()
