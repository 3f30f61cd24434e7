"""The session's peer table at work: links made, replaced and retired; star routing.

:class:`_PeerLinks` is the lowest layer of :class:`netcode.net.session.Session`:
one row per other peer in the room (:class:`netcode.net.peer_table.PeerRow`),
with its :class:`netcode.net.rtc.PeerLink` when we link to it directly. In a star
a client links to the host only and reaches everyone else through it (rows with
``via_host``, whose state is the host row's); the host delivers and forwards what
clients relay. Link events go to the game's event queue, or straight to its
``on_state`` / ``on_snapshot`` handler.

Private to :mod:`netcode.net`: the state is set up by ``Session.__init__``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..config import IceServer, NetworkConditions, SessionConfig
from ..events import (
    Event,
    EventReceived,
    HostChanged,
    PeerConnected,
    PeerConnectFailed,
    PeerJoined,
    PeerLeft,
    PeerLost,
    SnapshotReceived,
    StateReceived,
)
from ..protocol.link import LinkEvent, RelayReceived
from ..protocol.reliability import PeerStats
from .event_queue import EventQueue
from .peer_table import MAX_RETIRED, PeerInfo, PeerRow, PeerState, Topology
from .rtc import STATE_LABEL, PeerLink
from .signaling import SignalingClient

__all__ = ["_PeerLinks"]

# The session's logger, whichever module of it logs.
logger = logging.getLogger("netcode.session")


class _PeerLinks:
    """The peer table and the links in it (see the module docstring)."""

    _client: SignalingClient
    _config: SessionConfig
    _ice_servers: tuple[IceServer, ...]
    _conditions: NetworkConditions | None
    _inbound: NetworkConditions | None
    _topology: Topology
    _host_id: str | None
    _peers: dict[str, PeerRow]
    _peers_view: dict[str, PeerInfo]
    _retired: dict[str, tuple[PeerStats, int]]
    _closing: set[PeerLink]
    _queue: EventQueue
    _handlers: dict[type[Event], Callable[[Any], None]]
    _peers_changed: asyncio.Event
    _event_ready: asyncio.Event
    handler_errors: int

    @property
    def peer_id(self) -> str:
        """Our id in the lobby (assigned by the lobby)."""
        return str(self._client.peer_id)

    @property
    def is_host(self) -> bool:
        return self._host_id is not None and self._host_id == self.peer_id

    # -- the table -------------------------------------------------------------------------

    def _link(self, peer_id: str) -> PeerLink | None:
        peer = self._peers.get(peer_id)
        return None if peer is None else peer.link

    def _live(self) -> list[PeerLink]:
        return [p.link for p in self._peers.values() if p.link is not None]

    def _host_link(self) -> PeerLink | None:
        return self._link(self._host_id or "")

    def _changed(self) -> None:
        """The table changed: refresh the thread-safe view, wake wait_for_peers."""
        self._peers_view = {pid: PeerInfo(pid, self._state_of(p)) for pid, p in self._peers.items()}
        self._peers_changed.set()

    def _state_of(self, peer: PeerRow) -> PeerState:
        if not peer.via_host:
            return peer.state
        host = self._peers.get(self._host_id or "")
        if host is None or host.via_host or (host.link is None and host.ended is None):
            return "connecting"  # a new host whose link is not set up yet
        return host.state

    # -- links -----------------------------------------------------------------------------

    def _add_peer(self, peer_id: str, *, offer: bool, announce: bool = True) -> PeerLink | None:
        if not self._wants_link(peer_id):
            self._add_via_host(peer_id)
            return None

        async def send_signal(kind: str, data: dict[str, Any]) -> None:
            await self._client.send_signal(peer_id, kind, data)

        def emit(event: LinkEvent) -> None:
            # A retired link may still be winding down: its events are stale.
            if entry.link is link and self._peers.get(peer_id) is entry:
                kind = type(event)
                if kind is StateReceived or kind is SnapshotReceived:  # the hot path
                    handler = self._handlers.get(kind)
                    if handler is None:
                        self._push(event)  # type: ignore[arg-type]
                    else:
                        self._call_handler(handler, event)  # type: ignore[arg-type]
                elif isinstance(event, RelayReceived):
                    self._on_relay(event)
                else:
                    if peer_id == self._host_id and not self.is_host and self._topology == "star":
                        self._host_link_event(event)
                    self._on_link_event(event)

        link = PeerLink(
            peer_id,
            self._config,
            emit=emit,
            send_signal=send_signal,
            ice_servers=self._ice_servers,
        )
        if self._conditions is not None or self._inbound is not None:
            link.set_conditions(self._conditions, inbound=self._inbound)
        if self._topology == "star":
            link.core.star_role = "host" if self.is_host else "client"
        self._retired.pop(peer_id, None)
        entry = self._peers[peer_id] = PeerRow(link)
        self._changed()
        if announce:
            self._push(PeerJoined(peer_id))
        link.start(offer=offer)
        return link

    def _replace_link(self, peer_id: str, *, offer: bool) -> PeerLink | None:
        """A fresh link to a peer that is (back) in the room; the old one is freed quietly."""
        peer = self._peers.get(peer_id)
        if peer is not None:
            old = peer.link
            del self._peers[peer_id]
            if old is not None:
                self._close_quietly(old)
        return self._add_peer(peer_id, offer=offer, announce=peer is None)

    def _retire(self, peer_id: str, ended: PeerState | None) -> None:
        """The link to ``peer_id`` ended (``ended``: lost/failed) or the peer left (None)."""
        peer = self._peers.get(peer_id)
        if peer is None:
            return
        link, peer.link, peer.ended = peer.link, None, ended
        if ended is None:
            del self._peers[peer_id]
        self._changed()
        # Only the final numbers are kept: the link and its RTCPeerConnection are
        # freed once closed, so churning peers cost nothing that lasts.
        if link is not None:
            self._retired.pop(peer_id, None)
            self._retired[peer_id] = (link.stats(), link.oversize_states)
            while len(self._retired) > MAX_RETIRED:
                del self._retired[next(iter(self._retired))]
            self._close_quietly(link)

    def _close_quietly(self, link: PeerLink) -> None:
        """Close a link no row holds any more; close() waits for it with the rest."""
        link.begin_close()
        self._closing.add(link)
        link.on_closed(self._closing.discard)

    def _on_link_event(self, event: Event) -> None:
        """Events from a link: keep the peer table in step, then hand them to the game."""
        if isinstance(event, PeerConnected):
            self._changed()
        elif isinstance(event, PeerLost):
            self._retire(event.peer_id, "lost")
        elif isinstance(event, PeerConnectFailed):
            self._retire(event.peer_id, "failed")
        elif isinstance(event, PeerLeft):  # goodbye on the data channel
            self._retire(event.peer_id, None)
        self._push(event)

    # -- star routing (a client reaches the others through the host) -----------------------

    def _wants_link(self, peer_id: str) -> bool:
        """Mesh: a link to everyone. Star: the host links to everyone, a client to the host."""
        return self._topology == "mesh" or self.is_host or peer_id == self._host_id

    def _relays(self, to: str | None) -> bool:
        """Star client sending to anyone but the host: it goes through the host."""
        return self._topology == "star" and not self.is_host and to != self._host_id

    def _add_via_host(self, peer_id: str) -> None:
        """Star client: a peer we reach through the host."""
        self._peers[peer_id] = PeerRow(None, via_host=True)
        self._changed()
        self._push(PeerJoined(peer_id))
        if self._state_of(self._peers[peer_id]) == "connected":
            self._push(PeerConnected(peer_id))

    def _host_link_event(self, event: Event) -> None:
        """Star client: the host link's fate is every relayed peer's too (their rows
        take their state from the host's row, so only the events are ours to add)."""
        for pid, peer in list(self._peers.items()):
            if not peer.via_host:
                continue
            if isinstance(event, PeerConnected):
                self._push(PeerConnected(pid))
            elif isinstance(event, PeerLost | PeerConnectFailed):
                self._push(PeerLost(pid, getattr(event, "reason", "closed"), "via the host"))
        self._changed()

    def _on_relay(self, relayed: RelayReceived) -> None:
        """Star host: deliver what a client relayed, here and/or to the other clients."""
        to, origin = relayed.to, relayed.peer_id
        if to in ("", self.peer_id):
            if relayed.channel == STATE_LABEL:
                self._push(StateReceived(origin, relayed.payload, relayed.n, relayed.sent_us))
            else:
                self._push(EventReceived(origin, relayed.payload, relayed.channel, relayed.size))
        if to == self.peer_id:
            return
        targets = self._live() if to == "" else [link for link in [self._link(to)] if link]
        for link in targets:
            if link.peer_id != origin:
                link.send_forward(relayed)

    def _on_host_changed(self, host: str, previous: str) -> None:
        """The lobby named a new host; in a star, the rows re-route through it."""
        self._host_id = host
        self._push(HostChanged(host, previous, you=host == self.peer_id))
        if self._topology != "star":
            return  # a mesh only changes owner
        peer = self._peers.get(previous)
        if peer is not None and peer.link is not None:
            if peer.link.state == "connected":
                # A link that still works but is no longer the way: the game hears
                # it lost, with the peers reached through it, as if it had died, so
                # every PeerConnected that follows comes after a loss.
                lost = PeerLost(previous, "closed", "no longer the host")
                self._push(lost)
                self._host_link_event(lost)
            self._retire(previous, "lost")
        if host == self.peer_id:
            # The new hub: every client offers to us; their rows wait for that offer.
            for row in self._peers.values():
                row.via_host = False
                if row.link is None and row.ended is None:
                    row.ended = "lost"
        else:
            for pid, row in self._peers.items():  # everyone else: through the new host
                if pid not in (host, previous) and row.link is None:
                    row.via_host, row.ended = True, None
            if host in self._peers:
                self._replace_link(host, offer=True)  # clients offer to the new host
        self._changed()

    # -- to the game -----------------------------------------------------------------------

    def _push(self, event: Event) -> None:
        overflowed = self._queue.push(event)
        self._event_ready.set()
        if overflowed is not None:
            link = self._link(overflowed)
            if link is not None:
                cfg = self._config
                link.disconnect(
                    "overflow",
                    f"over max_queued_events={cfg.max_queued_events} or max_queued_event_bytes="
                    f"{cfg.max_queued_event_bytes} of its events waiting for poll()",
                )

    def _call_handler(self, handler: Callable[[Any], None], event: Event) -> None:
        try:
            handler(event)
        except Exception:  # a bug in the game's handler must not break the link
            self.handler_errors += 1
            logger.exception("%s handler raised", type(event).__name__)
