"""Events a session hands to the game, from ``session.poll()`` or ``await session.next_event()``.

Frozen, slotted dataclasses (the h11 ``_events.py`` shape): match on the class::

    for ev in session.poll():
        match ev:
            case StateReceived(peer_id=p, data=d): ...
            case PeerLeft(peer_id=p): ...

Lifecycle of one remote peer, as this session sees it::

    PeerJoined -> PeerConnected -> (StateReceived | EventReceived | SnapshotReceived)*
               -> PeerLeft            the peer left the room (goodbye or lobby notice)
               -> PeerLost            the link died (no heartbeat for peer_timeout_s,
                                      the connection failed/closed without goodbye,
                                      or the peer broke its budget: reason says which);
                                      PeerLeft follows once the lobby drops the peer
    PeerJoined -> PeerConnectFailed   no connection within connect_timeout_s;
                                      PeerLeft follows once the lobby drops the peer
    PeerJoined -> PeerLost            reason "mismatch": the configurations differ
                                      (checked in the offer/answer, before connecting)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .protocol.reliability import PeerStats

__all__ = [
    "Event",
    "EventReceived",
    "HostChanged",
    "Kicked",
    "PeerConnectFailed",
    "PeerConnected",
    "PeerJoined",
    "PeerLeft",
    "PeerLost",
    "PeerReconnected",
    "PeerReconnecting",
    "SnapshotReceived",
    "StateReceived",
    "StatsUpdated",
]


@dataclass(frozen=True, slots=True)
class PeerJoined:
    """A peer is in the room (already there when we joined, or joined after us).

    Not usable yet: wait for :class:`PeerConnected`.
    """

    peer_id: str


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """The peer-to-peer link is up: every configured data channel is open."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class PeerLeft:
    """The peer left the room. ``reason``: "left", "disconnected", "timeout" or "kicked"."""

    peer_id: str
    reason: str = "left"


@dataclass(frozen=True, slots=True)
class PeerLost:
    """The link to a connected peer ended without a goodbye. Its resources are already freed.

    ``reason``: ``"timeout"`` (nothing heard for ``peer_timeout_s``), ``"closed"``
    (the connection failed or closed under us), ``"abuse"`` (the peer sent more
    than its ``SessionConfig.budget`` allows) or ``"overflow"`` (more than
    ``max_queued_events`` of its events waited for ``poll()``) or ``"mismatch"``
    (the two peers' configurations differ: channel list, quantization map, limits
    or protocol version; ``detail`` names each difference, this side first, e.g.
    ``channel 3 "chat": ordered true vs false``). A mismatch ends a link that never
    connected: no :class:`PeerConnected` comes before it (docs/PROTOCOL.md 2.1.1).
    ``detail``: a human-readable explanation for logs.
    """

    peer_id: str
    reason: str = "timeout"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PeerConnectFailed:
    """No link could be established with the peer (``reason`` says why)."""

    peer_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StateReceived:
    """Unreliable game state from ``send_state``; only newer-than-seen state is delivered.

    ``seq``: the 16-bit packet sequence (wraps), useful to spot gaps. ``sent_us``: the
    sender's clock when it sent the packet, in microseconds mod 2**32 (feed
    ``TimestampUnwrapper`` / ``RemoteClockEstimator``, docs/STATE_SYNC.md 7; not part
    of equality).
    """

    peer_id: str
    data: Any
    seq: int
    sent_us: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class EventReceived:
    """A reliable message from ``send_event``, in the order sent on its ``channel``.

    ``size``: its encoded size in bytes (what counts against ``max_queued_event_bytes``;
    not part of equality).
    """

    peer_id: str
    data: Any
    channel: str = "events"
    size: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SnapshotReceived:
    """A snapshot from ``send_snapshot``: the full entity map, deltas already applied.

    ``sent_us``: the sender's clock when it sent it (as in :class:`StateReceived`).
    """

    peer_id: str
    seq: int
    entities: dict[Any, Any]
    sent_us: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class StatsUpdated:
    """Link statistics of one connected peer (RTT, jitter, loss, kbps, drops), sent
    every ``SessionConfig.stats_interval_s`` so a game can show them without polling
    ``session.stats(peer_id)``. Same values that call returns at that moment."""

    peer_id: str
    stats: PeerStats


@dataclass(frozen=True, slots=True)
class PeerReconnecting:
    """The peer's lobby connection dropped; the lobby holds its seat for the grace
    period (``LobbyConfig.reconnect_grace_s``, 30 s). Its peer link may still work.
    :class:`PeerReconnected` or :class:`PeerLeft` (reason "timeout") follows."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class PeerReconnected:
    """The peer took its seat back (same id): if our link to it was down, a new one is
    being built, and :class:`PeerConnected` says when it is usable again. State
    sequences, acks and snapshot baselines start afresh on the new link."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class HostChanged:
    """The room's host (the star's hub, the mesh's owner) is now ``peer_id``, after
    ``previous`` left or was lost. In a star the links are rebuilt around the new
    host. ``you``: True if it is this session."""

    peer_id: str
    previous: str
    you: bool = False


@dataclass(frozen=True, slots=True)
class Kicked:
    """The host removed us from the room (``reason`` is theirs). ``peer_id``: ours.
    The session's links are closed; it cannot rejoin that room with its token."""

    peer_id: str
    reason: str = ""


Event = (
    PeerJoined
    | PeerConnected
    | PeerLeft
    | PeerLost
    | PeerConnectFailed
    | StateReceived
    | EventReceived
    | SnapshotReceived
    | StatsUpdated
    | PeerReconnecting
    | PeerReconnected
    | HostChanged
    | Kicked
)
"""Any of the events above."""
