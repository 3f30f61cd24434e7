"""The async facade a game holds: ``async with netcode.connect(url, room=...) as session``.

A session is one seat in one lobby room, with a full mesh of peer links: on
joining, this side offers a connection to every peer already in the room (the
newcomer always offers, so there is no glare); peers that join later offer to
us. The lobby relays the offers and answers; game traffic then flows peer to
peer over the data channels of :mod:`netcode.net.rtc`.

Two ways to consume events, both fed from one queue (use one per session):

* ``session.poll()`` once per game frame, non-blocking (also safe to call from
  another thread, which is what :mod:`netcode.net.sync` relies on);
* ``await session.next_event()`` / ``async for event in session``.

The queue is bounded per peer (``SessionConfig.max_queued_states`` /
``max_queued_events``): while the game is not polling, a peer's state and
snapshots coalesce (the oldest queued ones are dropped, newest wins), and a
peer whose reliable events pile up beyond the cap is disconnected
(``PeerLost(reason="overflow")``) rather than growing memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

from ..config import DEFAULT_MAX_PLAYERS, ChannelConfig, NetworkConditions, SessionConfig
from ..errors import ConfigError, ConnectionClosed, ConnectTimeout, EncodeError
from ..events import Event, SnapshotReceived, StateReceived
from ..lobby.messages import RoomSummary
from ..protocol import wire
from ..protocol.impairment import KEEP, Keep
from ..protocol.reliability import PeerStats
from ..protocol.snapshot import Entities, SnapshotEncoder, SnapshotFrame
from ._lobby_seat import _LobbySeat, check_room_choice, first_lobby, lobby_urls
from .event_queue import EventQueue
from .peer_table import (
    CLOSE_DRAIN_S,
    EVENTS_LABEL,
    RELAY_OVERHEAD,
    PeerInfo,
    PeerRow,
    PeerState,
    Topology,
    check_channels,
    check_conditions_arg,
    check_connect_args,
    encode_event_packets,
)
from .rtc import STATE_LABEL, LinkView, PeerLink
from .signaling import RoomInfo, SignalingClient

__all__ = [
    "EVENTS_LABEL",
    "PeerInfo",
    "PeerState",
    "Session",
    "Topology",
    "check_conditions_arg",
    "check_connect_args",
    "connect",
    "list_rooms",
    "lobby_urls",
]

logger = logging.getLogger("netcode.session")


class Session(_LobbySeat):
    """A seat in a lobby room with peer-to-peer links to every other seat.

    Created by :func:`connect`; not constructed directly. Built in layers: the
    peer table and star routing (:mod:`netcode.net._peer_links`), the lobby side
    (:mod:`netcode.net._lobby_seat`), and here what the game calls.
    """

    def __init__(
        self,
        client: SignalingClient,
        info: RoomInfo,
        config: SessionConfig,
        *,
        url: str | Sequence[str] = "",
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = client
        # Lobby nodes to rejoin through, the one we are on first (several lobby nodes:
        # docs/LOBBY.md "Several nodes"); the rejoin rotates through them.
        self._urls = lobby_urls(url) if url else ()
        self._url = self._urls[0] if self._urls else ""
        self._room = info.room
        self._token = info.token
        self._token_ttl = info.token_expires_s
        self._metadata = dict(info.metadata)
        self._locked = info.locked
        self._kicked = False
        self._config = config
        self._channels: dict[str, ChannelConfig] = {c.label: c for c in config.channels}
        self._ice_servers = config.ice_servers or tuple(client.ice_servers)
        self._conditions: NetworkConditions | None = config.conditions
        self._inbound: NetworkConditions | None = None
        # The one peer table: every other peer in the room, with its link.
        self._peers: dict[str, PeerRow] = {}
        # Read-only copy for other threads (replaced, never mutated).
        self._peers_view: dict[str, PeerInfo] = {}
        # lost/failed/left: final (stats, oversize_states), kept for stats()
        self._retired: dict[str, tuple[PeerStats, int]] = {}
        self._closing: set[PeerLink] = set()
        self._queue = EventQueue(
            config.max_queued_states, config.max_queued_events, config.max_queued_event_bytes
        )
        self._handlers: dict[type[Event], Callable[[Any], None]] = {}
        # Events sent while no target peer had a link (see send_event): not delivered.
        self.events_unsent = 0
        self._encoder = SnapshotEncoder(quantize=config.snapshot_quantize, limits=config.limits)
        self.handler_errors = 0
        self._event_ready = asyncio.Event()
        self._peers_changed = asyncio.Event()
        self._msg_id = 0
        self._closed = False
        self.lobby_connected = True
        self._topology: Topology = "star" if info.topology == "star" else "mesh"
        self._host_id = info.host
        # Seated peers whose lobby connection is gone offer to us when they are back.
        for peer_id in info.peers:
            if peer_id not in info.reconnecting:
                self._add_peer(peer_id, offer=True)
        self._signal_task = self._loop.create_task(self._signal_loop())

    # -- properties (peer_id and is_host: in _peer_links, which routes by them) ----------

    @property
    def reconnect_token(self) -> str | None:
        """Takes this seat back (same peer id) after a crash or a dropped connection,
        within the lobby's grace period: persist it and pass ``rejoin_token=`` to
        :func:`connect`. The session also uses it itself when its lobby connection
        drops. Secret: whoever holds it can take the seat."""
        return self._token

    @property
    def metadata(self) -> dict[str, Any]:
        """The room's metadata, as last announced by the lobby."""
        return dict(self._metadata)

    @property
    def locked(self) -> bool:
        """True while the host keeps new players out of the room."""
        return self._locked

    @property
    def topology(self) -> Topology:
        """ "mesh" (everyone links to everyone) or "star" (everyone links to the host)."""
        return self._topology

    @property
    def host_id(self) -> str | None:
        """The room's host (the star's hub, or the mesh's owner), if the lobby named one."""
        return self._host_id

    @property
    def room(self) -> str:
        """The room code: share it so others can join."""
        return self._room

    @property
    def peers(self) -> dict[str, PeerInfo]:
        """The other peers in the room, by id (a fresh dict; safe from any thread)."""
        return dict(self._peers_view)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def config(self) -> SessionConfig:
        return self._config

    def stats(self, peer_id: str) -> PeerStats:
        """Link statistics for one peer (RTT, jitter, loss, kbps, drops, bad packets);
        for a peer that is gone, its statistics when the link ended."""
        link = self._link(peer_id)
        if link is not None:
            return link.stats()
        retired = self._retired.get(peer_id)
        if retired is None:
            raise KeyError(f"unknown peer {peer_id!r}")
        return retired[0]

    @property
    def oversize_states(self) -> int:
        """State/snapshot packets sent although larger than ``Limits.max_state_bytes``."""
        live = sum(link.oversize_states for link in self._live())
        return live + sum(n for _, n in self._retired.values())

    def link_view(self, peer_id: str) -> LinkView | None:
        """A diagnostic view of the live link to ``peer_id`` (None if there is none:
        never connected, or lost, failed or left)."""
        link = self._link(peer_id)
        return None if link is None else link.view()

    @property
    def queued_events(self) -> int:
        """Events waiting for :meth:`poll` / :meth:`next_event` (bounded per peer)."""
        return len(self._queue)

    # -- room control (the host only) -------------------------------------------------------

    async def kick(self, peer_id: str, reason: str = "") -> None:
        """Remove a peer from the room; it gets ``Kicked(reason)`` and cannot take its
        seat back. Only the host may: others get ``LobbyError(code="not_owner")``."""
        self._check_open()
        await self._client.kick(peer_id, reason)

    async def lock(self, locked: bool = True) -> None:
        """Keep new players out (``locked=False`` lets them in again); host only."""
        self._check_open()
        await self._client.lock_room(locked)
        self._locked = locked

    async def update_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Replace the room's metadata (what ``list_rooms`` shows); host only."""
        self._check_open()
        await self._client.update_room(dict(metadata))
        self._metadata = dict(metadata)

    # -- sending ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosed("session closed")
        if self._kicked:
            raise ConnectionClosed("kicked from the room")

    def _targets(self, to: str | None) -> list[PeerLink]:
        if to is None:
            return self._live()
        link = self._link(to)
        return [] if link is None else [link]

    def send_state(self, data: Any, to: str | None = None) -> bool:
        """Send game state unreliably and unordered (newest wins), to all peers or ``to``.

        Returns False if it reached no connected peer or was dropped for at least one
        peer by backpressure (counted in ``stats(peer).state_drops``); never queues.
        Raises :class:`EncodeError` for data msgpack cannot carry or over the limits,
        :class:`ConnectionClosed` after :meth:`close`.
        """
        self._check_open()
        packed = wire.pack_payload(data, self._config.limits)
        if self._relays(to):
            host = self._host_link()
            return host is not None and host.send_relay(to or "", packed, STATE_LABEL)
        if to is not None:  # one peer (the common case): no target list
            link = self._link(to)
            return link is not None and link.send_state(packed)
        results = [link.send_state(packed) for link in self._live()]
        return _all_sent(results)

    def send_snapshot(self, entities: Entities, to: str | None = None) -> bool:
        """Send ``{entity_id: {field: value}}``, delta-compressed per peer against the
        newest snapshot that peer acknowledged. Unreliable like :meth:`send_state`.

        Raises :class:`EncodeError` for a malformed map (checked once, up front, even
        with no peer connected), :class:`ConnectionClosed` after :meth:`close`.
        """
        self._check_open()
        return self.send_frame(self.snapshot_frame(entities), to)

    def snapshot_frame(self, entities: Entities) -> SnapshotFrame:
        """Validate and quantize ``entities`` once (:class:`EncodeError` if malformed);
        pure and thread-safe. The frame holds a copy: the game may mutate its dicts."""
        return self._encoder.frame(entities)

    def send_frame(self, frame: SnapshotFrame, to: str | None = None) -> bool:
        """Send a frame from :meth:`snapshot_frame`: encoded once per distinct
        baseline, whatever the number of peers (peers that acked the same tick
        share the bytes)."""
        self._check_open()
        if self._relays(to) and to is not None:
            raise EncodeError("in a star, a client sends snapshots to the host only")
        targets = [self._host_link()] if self._relays(to) else self._targets(to)
        results = [link.send_frame(frame) for link in targets if link is not None]
        return _all_sent(results)

    def _event_channel(self, channel: str) -> ChannelConfig:
        """The configuration of event channel ``channel`` (ConfigError if none)."""
        cfg = self._channels.get(channel)
        if cfg is None or channel == STATE_LABEL:
            raise ConfigError(f"send_event: no event channel {channel!r}")
        return cfg

    def encode_event(self, data: Any, channel: str = EVENTS_LABEL) -> list[bytes]:
        """The packets of one event (chunked when over a packet); pure, thread-safe."""
        cfg = self._event_channel(channel)
        self._msg_id = (self._msg_id + 1) & 0xFFFF_FFFF
        packets = encode_event_packets(data, self._msg_id, self._config.limits)
        if len(packets) > 1 and not (cfg.reliable and cfg.ordered):
            raise EncodeError(
                f"event of {sum(map(len, packets))} bytes needs chunking, which only a "
                f"reliable ordered channel can carry ({channel!r} is not)"
            )
        return packets

    def send_event(self, data: Any, to: str | None = None, *, channel: str = EVENTS_LABEL) -> None:
        """Send a reliable, ordered message to all peers or ``to``; never dropped.

        Messages over one packet (64 KiB) are split and reassembled transparently, up
        to ``Limits.max_event_bytes``. Peers still connecting get it once connected;
        peers that join later do not (an event sent with nobody there is counted in
        ``events_unsent`` and logged once).
        Raises :class:`ConnectionClosed` after :meth:`close` (the data would be lost).
        """
        self._check_open()
        if self._relays(to):
            self._relay_event(data, to, channel)
            return
        self.send_packets(self.encode_event(data, channel), to, channel)

    def _relay_event(self, data: Any, to: str | None, channel: str) -> None:
        self._event_channel(channel)
        packed = wire.pack_payload(data, self._config.limits)
        if len(packed.data) + RELAY_OVERHEAD > self._config.limits.max_packet_bytes:
            raise EncodeError(
                f"event of {len(packed.data)} bytes is too big to relay through the star's "
                "host (one packet at most): send it to the host (to=session.host_id)"
            )
        host = self._host_link()
        if host is None:
            self.events_unsent += 1
            return
        host.send_relay(to or "", packed, channel)

    def send_packets(self, packets: Sequence[bytes], to: str | None, channel: str) -> None:
        """Queue pre-encoded event packets (from :meth:`encode_event`)."""
        self._check_open()
        self._event_channel(channel)
        targets = self._targets(to)
        if not targets:
            # Nobody to deliver to (no peer yet, or ``to`` is gone): events are not kept
            # for peers that join later. Counted, and logged once, so it is never silent.
            self.events_unsent += 1
            log = logger.info if self.events_unsent == 1 else logger.debug
            log("send_event with no %s: not delivered", "peer" if to is None else f"peer {to!r}")
        for link in targets:
            link.send_reliable(channel, packets)

    def set_conditions(
        self,
        conditions: NetworkConditions | Keep | None = KEEP,
        peer: str | None = None,
        *,
        inbound: NetworkConditions | Keep | None = KEEP,
    ) -> None:
        """Simulate loss/latency/jitter per direction, for testing a game under bad networks.

        ``conditions`` applies to outbound datagrams, ``inbound`` to received ones (as
        if the remote's path were bad); ``None``: clean, omitted: unchanged. Without
        ``peer`` it also applies to future peers. Raises :class:`ConfigError` for
        anything but NetworkConditions/None, here rather than when a peer joins.
        """
        check_conditions_arg(conditions)
        check_conditions_arg(inbound)
        if peer is None:
            if not isinstance(conditions, Keep):
                self._conditions = conditions
            if not isinstance(inbound, Keep):
                self._inbound = inbound
        for link in self._targets(peer):
            link.set_conditions(conditions, inbound=inbound)

    # -- receiving ------------------------------------------------------------------------

    def on_state(self, handler: Callable[[StateReceived], None] | None) -> None:
        """Call ``handler(event)`` for every StateReceived, right in the receive path.

        For latency-critical games: no queue hop, the state is handled in the same
        event-loop step that received it. Those events then no longer go to
        :meth:`poll` / :meth:`next_event` (everything else still does). ``None``
        restores the queue. The handler runs on the session's loop and must be
        quick; an exception it raises is logged and counted (``handler_errors``),
        never breaks the link.
        """
        self._set_handler(StateReceived, handler)

    def on_snapshot(self, handler: Callable[[SnapshotReceived], None] | None) -> None:
        """:meth:`on_state` for SnapshotReceived."""
        self._set_handler(SnapshotReceived, handler)

    def _set_handler(self, kind: type[Event], handler: Callable[[Any], None] | None) -> None:
        if handler is None:
            self._handlers.pop(kind, None)
        elif not callable(handler):
            raise ConfigError(f"handler must be callable or None, got {type(handler).__name__}")
        else:
            self._handlers[kind] = handler

    def poll(self) -> list[Event]:
        """Every event received since the last call, oldest first; never blocks.

        Thread-safe: only atomic deque operations.
        """
        return self._queue.pop_all()

    async def next_event(self, timeout: float | None = None) -> Event:  # noqa: ASYNC109
        """The next event; raises TimeoutError after ``timeout`` s and
        :class:`ConnectionClosed` once the session is closed and drained."""
        event = self._queue.pop()
        if event is not None:  # already queued: no timeout scope, no suspension
            return event
        if timeout is None:
            return await self._wait_event()
        async with asyncio.timeout(timeout):
            return await self._wait_event()

    async def _wait_event(self) -> Event:
        while (event := self._queue.pop()) is None:
            if self._closed:
                raise ConnectionClosed("session closed")
            self._event_ready.clear()
            await self._event_ready.wait()
        return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.next_event()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def wait_for_peers(self, n: int, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until at least ``n`` peers are connected; :class:`ConnectTimeout` otherwise.

        Does not consume events.
        """
        try:
            async with asyncio.timeout(timeout):
                while self._connected_count() < n:
                    if self._closed:
                        raise ConnectionClosed("session closed")
                    self._peers_changed.clear()
                    await self._peers_changed.wait()
        except TimeoutError:
            raise ConnectTimeout(
                f"{self._connected_count()} of {n} peers connected after {timeout} s"
            ) from None

    def _connected_count(self) -> int:
        return sum(1 for p in self._peers.values() if self._state_of(p) == "connected")

    # -- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Leave cleanly: flush queued events, say goodbye, leave the room, free everything."""
        if self._closed:
            return
        self._closed = True
        links = self._live()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_DRAIN_S):
                await asyncio.gather(*(link.drain() for link in links))
        for link in links:
            link.send_bye()
        if self.lobby_connected:
            # A lobby round trip also lets the goodbyes leave before the connections close.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._config.lobby_timeout_s):
                    await self._client.leave_room()
        await asyncio.gather(
            *(link.close() for link in [*links, *self._closing]),
            return_exceptions=True,
        )
        for peer in self._peers.values():
            peer.link = None
        self._signal_task.cancel()
        with contextlib.suppress(Exception):
            await self._client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._signal_task
        self._event_ready.set()
        self._peers_changed.set()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _open(
    url: str | Sequence[str],
    *,
    room: str | None,
    create: bool,
    max_players: int,
    private: bool,
    metadata: Mapping[str, Any] | None,
    config: SessionConfig,
    topology: Topology,
    quick_match: Mapping[str, Any] | None,
    rejoin_token: str | None,
) -> Session:
    check_channels(config)
    check_room_choice(room, create, quick_match, rejoin_token)
    urls = lobby_urls(url)
    client, used = await first_lobby(urls, config)
    url = (used, *(u for u in urls if u != used))
    meta = dict(metadata) if metadata is not None else None
    try:
        if rejoin_token is not None:
            info = await client.rejoin(rejoin_token, room)
        elif quick_match is not None:
            info = await client.quick_match(
                quick_match["game"],
                quick_match["size"],
                topology=quick_match.get("topology", topology),
                metadata=meta,
                timeout=quick_match.get("timeout"),
            )
        elif room is None:
            info = await client.create_room(
                max_players=max_players, private=private, metadata=meta, topology=topology
            )
        else:
            info = await client.join_room(room)
        return Session(client, info, config, url=url)
    except BaseException:
        await client.close()
        raise


class _Connecting:
    """What :func:`connect` returns: await it, or use it as ``async with``."""

    def __init__(self, url: str | Sequence[str], kwargs: dict[str, Any]) -> None:
        self._url = url
        self._kwargs = kwargs
        self._session: Session | None = None

    def __await__(self) -> Generator[Any, None, Session]:
        return _open(self._url, **self._kwargs).__await__()

    def __enter__(self) -> None:
        raise ConfigError(
            "netcode.connect() is async: use 'async with netcode.connect(...)' or "
            "'session = await netcode.connect(...)'; without asyncio use "
            "'with netcode.connect_sync(...)'"
        )

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ raised
        return None

    async def __aenter__(self) -> Session:
        self._session = await _open(self._url, **self._kwargs)
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()


def connect(
    url: str | Sequence[str],
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
) -> _Connecting:
    """Join (``room="CODE"``) or create (``create=True``, or no room) a lobby room.

    ``url``: the lobby, or several nodes of one lobby (a list, or comma-separated):
    the first that answers is used, and the automatic rejoin after a lost lobby
    connection rotates through them (docs/LOBBY.md "Several nodes").

    ``async with netcode.connect(url, room="ABC123") as session: ...`` or
    ``session = await netcode.connect(url, create=True)`` (then ``await session.close()``).
    ``topology="star"`` (on create): every player links to the host only, who relays.
    ``quick_match={"game": "arena", "size": 4}``: wait until the lobby groups ``size``
    players (optional ``"topology"``, ``"timeout"`` in s). ``rejoin_token=``: take back
    a seat (``session.reconnect_token`` of an earlier session) with the same peer id.
    Raises :class:`ConnectTimeout` if the lobby is unreachable, :class:`RoomNotFound` /
    :class:`RoomFull` / :class:`AuthError` as the lobby answers, :class:`ConfigError`
    at once for a ``config`` that is no SessionConfig or a ``metadata`` that is no mapping.
    """
    cfg = config if config is not None else SessionConfig()
    check_connect_args(metadata, cfg)
    if topology not in ("mesh", "star"):
        raise ConfigError(f'topology: "mesh" or "star", got {topology!r:.40}')
    check_room_choice(room, create, quick_match, rejoin_token)
    lobby_urls(url)  # ConfigError now, not at the first await
    kwargs: dict[str, Any] = {
        "room": room,
        "create": create,
        "max_players": max_players,
        "private": private,
        "metadata": metadata,
        "config": cfg,
        "topology": topology,
        "quick_match": quick_match,
        "rejoin_token": rejoin_token,
    }
    return _Connecting(url, kwargs)


async def list_rooms(
    url: str, *, game: str | None = None, config: SessionConfig | None = None
) -> list[RoomSummary]:
    """The public rooms of the lobby at ``url`` (``game``: only rooms whose metadata says
    that game). Each :class:`RoomSummary` has ``room`` (the code to join), ``players``,
    ``max_players`` and ``metadata``. Raises :class:`ConnectTimeout` if unreachable."""
    cfg = config if config is not None else SessionConfig()
    check_connect_args(None, cfg)
    try:
        client = await SignalingClient.connect(url, token=cfg.token, timeout=cfg.lobby_timeout_s)
    except ConnectionClosed as exc:
        raise ConnectTimeout(f"lobby {url} unreachable: {exc}") from exc
    try:
        async with asyncio.timeout(cfg.lobby_timeout_s):
            return await client.list_rooms(game)
    finally:
        await client.close()


def _all_sent(results: list[bool]) -> bool:
    """Sent to at least one peer, and dropped for none."""
    return bool(results) and all(results)
