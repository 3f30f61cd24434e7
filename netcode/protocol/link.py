"""The peer link as a pure state machine: bytes and time in, bytes and events out.

PURE: no asyncio, aiortc or websockets; time is a parameter. The I/O adapter
(:class:`netcode.net.rtc.PeerLink`) owns the RTCPeerConnection and feeds this
core, in the websockets ``protocol.py`` style::

    core.channels_open(now)                 # every data channel is open
    core.receive(label, data, now)          # one data-channel message, untrusted
    core.transport_closed("failed", now)    # the connection died under us
    data = core.send_state(packed, now)     # bytes for the state channel
    core.tick(now)                          # at core.next_deadline(): heartbeat, liveness
    for label, data in core.take_outgoing(): ...   # PONG, PING, ACK, BYE to send
    for event in core.take_events(): ...           # for the game

What lives here: the link state machine (:data:`TRANSITIONS`), liveness and
heartbeats (PING every ``heartbeat_interval_s``, an ACK when nothing stamped
went out for that long, a timeout after ``peer_timeout_s`` of silence), PONGs
matched to outstanding PINGs, the per-peer receive budget checked before
decoding, which message is legal on which channel, chunk reassembly, the
snapshot receive path and the ack feed of the snapshot sender. Backpressure and
pacing need the transport's queues and stay in the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from ..config import ChannelConfig, SessionConfig
from ..errors import DecodeError, DeltaBaselineMissing, EncodeError
from ..events import (
    Event,
    EventReceived,
    PeerConnected,
    PeerConnectFailed,
    PeerLeft,
    PeerLost,
    SnapshotReceived,
    StateReceived,
    StatsUpdated,
)
from . import wire
from .budget import ReceiveBudget, Verdict
from .reliability import PeerStats, ReliabilityEndpoint
from .sequence import seq_greater_than
from .snapshot import Entities, SnapshotEncoder, SnapshotFrame, SnapshotReceiver, SnapshotSender

__all__ = [
    "MAX_FORWARD_ORIGINS",
    "MAX_OUTSTANDING_PINGS",
    "STATE_LABEL",
    "TRANSITIONS",
    "LinkCore",
    "LinkEvent",
    "LinkState",
    "RelayReceived",
    "channel_roles",
]

logger = logging.getLogger("netcode.link")

STATE_LABEL: Final = "state"
# Outstanding PINGs remembered for matching PONGs (16 heartbeats: 4 s by default).
MAX_OUTSTANDING_PINGS: Final = 16

LinkState = Literal["connecting", "connected", "lost", "failed", "closed"]
StarRole = Literal["host", "client"]
# Origins whose newest forwarded state a client remembers (a room is far smaller).
MAX_FORWARD_ORIGINS: Final = 256


@dataclass(frozen=True, slots=True)
class RelayReceived:
    """Star topology, at the host: a client asked us to deliver ``payload`` to ``to``
    ("": everyone). Internal: the session routes it (never handed to the game)."""

    peer_id: str  # the client it came from: the origin, as the host vouches
    to: str
    n: int
    sent_us: int
    payload: Any
    channel: str
    size: int


LinkEvent = Event | RelayReceived
"""What a link core hands its adapter: game events, or a relay for the session to route."""

# Every legal move of a link: (state, what happened) -> new state. Anything else is
# a no-op: a late packet, a second close or a timeout racing a goodbye changes nothing.
TRANSITIONS: Final[dict[tuple[LinkState, str], LinkState]] = {
    ("connecting", "open"): "connected",
    ("connecting", "fail"): "failed",
    ("connecting", "mismatch"): "failed",
    ("connecting", "bye"): "closed",
    ("connecting", "close"): "closed",
    ("connected", "lose"): "lost",
    ("connected", "bye"): "closed",
    ("connected", "close"): "closed",
}
_FINAL: Final = frozenset({"lost", "failed", "closed"})

_NOT_SENT: Final = object()
# A tuple, not ``State | Snapshot | Ack``: the union would be rebuilt on every packet.
_STAMPED_TYPES: Final = (wire.State, wire.Snapshot, wire.Ack)


def channel_roles(channels: Iterable[ChannelConfig]) -> tuple[frozenset[str], frozenset[str]]:
    """(reliable labels, all labels): the one place that says which channel carries what.

    The ``state`` channel carries STATE, SNAPSHOT, ACK, PING, PONG and BYE; every
    other channel carries EVENT, CHUNK and BYE. Reliable channels are budgeted as
    such (a message over budget ends the link; it cannot be dropped).
    """
    channels = tuple(channels)
    return frozenset(c.label for c in channels if c.reliable), frozenset(c.label for c in channels)


class LinkCore:
    """One peer link's protocol state. Not thread-safe; one per remote peer."""

    def __init__(self, peer_id: str, config: SessionConfig, now: float) -> None:
        self.peer_id = peer_id
        self._config = config
        self._limits = config.limits
        self._state: LinkState = "connecting"
        self._created_at = now
        self.connected_at: float | None = None
        self._last_recv = now
        self._last_stamped = float("-inf")  # when we last sent STATE/SNAPSHOT/ACK
        self._next_heartbeat = float("inf")
        self._last_stats = now
        # RTT comes from heartbeat ping/pong (answered at once); ack timing would
        # include the peer's hold time until it next sends.
        self._endpoint = ReliabilityEndpoint(rtt_from_acks=False)
        self._budget = ReceiveBudget(
            config.budget, now, max_event_bytes=self._limits.max_event_bytes
        )
        self._reliable, labels = channel_roles(config.channels)
        self._assemblers = {
            label: wire.ChunkAssembler(self._limits) for label in labels if label != STATE_LABEL
        }
        # Both ends round quantized fields with the same steps (SessionConfig.snapshot_quantize).
        self._snap_tx = SnapshotSender(quantize=config.snapshot_quantize, limits=self._limits)
        self._encoder = SnapshotEncoder(quantize=config.snapshot_quantize, limits=self._limits)
        self._snap_rx = SnapshotReceiver(quantize=config.snapshot_quantize, limits=self._limits)
        self._pings_out: dict[int, None] = {}  # sent_us of PINGs not yet answered, oldest first
        self._outgoing: list[tuple[str, bytes]] = []
        self._events: list[LinkEvent] = []
        self._bad_packets = 0
        self._rate_limited = 0
        self._pings_ignored = 0
        self._unmatched_pongs = 0
        self._oversize_states = 0
        self._now = now  # time of the message being handled (for the bad-message budget)
        # Star topology: "host" on our links to clients, "client" on a client's link to
        # the host, None in a mesh (RELAY/FORWARD are then bad messages).
        self.star_role: StarRole | None = None
        self._relay_n = 0
        self._forward_newest: dict[str, int] = {}  # origin -> newest forwarded state n
        self._stale_forwards = 0
        self._relay_newest: int | None = None  # newest relayed state n from this client

    # -- views ------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def finished(self) -> bool:
        """True once the link is lost, failed or closed (the adapter frees it)."""
        return self._state in _FINAL

    @property
    def has_output(self) -> bool:
        """True if messages or events wait to be taken, or the link just finished."""
        return bool(self._outgoing or self._events) or self._state in _FINAL

    @property
    def endpoint(self) -> ReliabilityEndpoint:
        return self._endpoint

    @property
    def oversize_states(self) -> int:
        """State packets sent although over ``Limits.max_state_bytes``."""
        return self._oversize_states

    @property
    def next_seq(self) -> int:
        return self._endpoint.next_seq

    @property
    def snapshots_sent(self) -> tuple[int, int]:
        """(full, delta) snapshots encoded for this peer so far."""
        return self._snap_tx.full_count, self._snap_tx.delta_count

    def stats(self, now: float) -> PeerStats:
        base = self._endpoint.stats(now)
        return replace(
            base,
            stale_drops=base.stale_drops + self._stale_forwards,
            bad_packets=self._bad_packets,
            rate_limited=self._rate_limited,
            pings_ignored=self._pings_ignored,
            unmatched_pongs=self._unmatched_pongs,
        )

    # -- outputs ----------------------------------------------------------------------

    def take_outgoing(self) -> list[tuple[str, bytes]]:
        """Messages to send, as ``(channel label, bytes)``, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def take_events(self) -> list[LinkEvent]:
        """Events for the game, oldest first."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float:
        """When :meth:`tick` must run next (connect timeout or next heartbeat)."""
        if self._state == "connecting":
            return self._created_at + self._config.connect_timeout_s
        if self._state == "connected":
            return self._next_heartbeat
        return float("inf")

    # -- transitions ------------------------------------------------------------------

    def _move(self, event: str) -> bool:
        """Take the transition ``event`` if legal now; False (no change) otherwise."""
        new = TRANSITIONS.get((self._state, event))
        if new is None:
            return False
        self._state = new
        return True

    def channels_open(self, now: float) -> None:
        """Every data channel is open: the link is connected."""
        if self._move("open"):
            self.connected_at = self._last_recv = self._last_stamped = now
            self._last_stats = now
            self._next_heartbeat = now  # heartbeat at once: RTT and acks start flowing
            self._events.append(PeerConnected(self.peer_id))

    def transport_closed(self, how: str, now: float) -> None:
        """The connection failed or closed under us (aiortc: both are final)."""
        if self._state == "connecting":
            self.fail(f"connection {how}")
        else:
            self._lose("closed", f"connection {how}")

    def fail(self, reason: str) -> None:
        """Negotiation failed (or timed out): ``PeerConnectFailed``."""
        if self._move("fail"):
            self._events.append(PeerConnectFailed(self.peer_id, reason))

    def mismatch(self, detail: str, *, bad: bool = False) -> None:
        """The peers' configurations differ (docs/PROTOCOL.md 2.1.1): give up at once.

        Reported as ``PeerLost(reason="mismatch")`` although the link never
        connected, so a game handles it like any other end of a peer. ``bad``: the
        peer's hello did not even parse (counted in ``bad_packets``).
        """
        if bad:
            self._bad_packets += 1
        if self._move("mismatch"):
            logger.warning("peer %s: configuration mismatch: %s", self.peer_id, detail)
            self._events.append(PeerLost(self.peer_id, "mismatch", detail))

    def _lose(self, reason: str, detail: str) -> None:
        if self._move("lose"):
            log = logger.warning if reason in ("abuse", "overflow") else logger.info
            log("peer %s lost (%s): %s", self.peer_id, reason, detail)
            self._events.append(PeerLost(self.peer_id, reason, detail))

    def disconnect(self, reason: str, detail: str) -> None:
        """End a connected link now, reporting ``PeerLost(reason=reason)`` (e.g. "overflow")."""
        self._lose(reason, detail)

    def close(self) -> None:
        """We end the link (session closing, peer left the room): no event."""
        self._move("close")

    def _goodbye(self, reason: str) -> None:
        if self._move("bye"):
            self._events.append(PeerLeft(self.peer_id, reason or "left"))

    # -- time -------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Run what is due: the connect timeout, liveness, heartbeat, ACK and stats."""
        cfg = self._config
        if self._state == "connecting":
            if now >= self._created_at + cfg.connect_timeout_s:
                self.fail(f"not connected within {cfg.connect_timeout_s} s")
            return
        if self._state != "connected" or now < self._next_heartbeat:
            return
        if now - self._last_recv > cfg.peer_timeout_s:
            self._lose("timeout", f"nothing received for {now - self._last_recv:.1f} s")
            return
        self._send_ping(now)
        if now - self._last_stamped >= cfg.heartbeat_interval_s:
            self._outgoing.append((STATE_LABEL, self._stamped(wire.MsgType.ACK, None, now)))
        if cfg.stats_interval_s is not None and now - self._last_stats >= cfg.stats_interval_s:
            self._last_stats = now
            self._events.append(StatsUpdated(self.peer_id, self.stats(now)))
        # From now, not from the old deadline: a stalled loop does not burst heartbeats.
        self._next_heartbeat = now + cfg.heartbeat_interval_s

    def _send_ping(self, now: float) -> None:
        sent_us = wire.timestamp_us(now)
        self._pings_out[sent_us] = None
        if len(self._pings_out) > MAX_OUTSTANDING_PINGS:
            del self._pings_out[next(iter(self._pings_out))]  # the oldest: never answered
        self._outgoing.append((STATE_LABEL, wire.serialize(wire.Ping(sent_us))))

    # -- sending ----------------------------------------------------------------------

    def _stamped(self, kind: wire.MsgType, packed: wire.Packed | None, now: float) -> bytes:
        """Stamp the next sequence/acks and encode one STATE/SNAPSHOT/ACK envelope."""
        self._last_stamped = now
        hdr = self._endpoint.next_header(now, 0 if packed is None else len(packed.data))
        sent_us = wire.timestamp_us(now)
        return wire.encode_stamped(kind, hdr.seq, hdr.ack, hdr.ack_bits, sent_us, packed)

    def count_state_drop(self) -> None:
        """The adapter dropped outgoing state (backpressure): latest state wins."""
        self._endpoint.count_state_drop()

    def send_state(self, packed: wire.Packed, now: float) -> bytes | None:
        """The STATE packet carrying ``packed``, or None if not connected."""
        if self._state != "connected":
            return None
        return self._checked_size(self._stamped(wire.MsgType.STATE, packed, now))

    def send_snapshot(self, entities: Entities, now: float) -> list[bytes]:
        """The SNAPSHOT packet(s) for ``entities`` (see :meth:`send_frame`)."""
        return self.send_frame(self._encoder.frame(entities), now)

    def send_frame(self, frame: SnapshotFrame, now: float) -> list[bytes]:
        """The SNAPSHOT packets for one tick's frame, delta-encoded against this peer's
        acks: one packet, or the fragments of a full snapshot over one SCTP chunk.
        Empty if not connected. The frame's encodings are shared between peers."""
        if self._state != "connected":
            return []
        parts = self._snap_tx.encode_frame(
            self._endpoint.next_seq, frame, self._limits.max_state_bytes
        )
        snapshot = wire.MsgType.SNAPSHOT
        return [self._checked_size(self._stamped(snapshot, wire.Packed(p), now)) for p in parts]

    def _checked_size(self, data: bytes) -> bytes:
        if len(data) > self._limits.max_packet_bytes:
            # The peer would drop it as a bad packet; this is a bug in the game.
            raise EncodeError(
                f"state of {len(data)} bytes exceeds max_packet_bytes="
                f"{self._limits.max_packet_bytes}: send it with send_event"
            )
        if len(data) > self._limits.max_state_bytes:
            self._note_oversize(len(data))
        return data

    def _note_oversize(self, size: int) -> None:
        if self._oversize_states == 0:
            logger.warning(
                "state packet of %d bytes to peer %s exceeds max_state_bytes=%d (one SCTP "
                "chunk); it is sent, but large state fragments and is lost more often",
                size,
                self.peer_id,
                self._limits.max_state_bytes,
            )
        self._oversize_states += 1

    def send_relay(self, to: str, packed: wire.Packed, label: str, now: float) -> bytes | None:
        """Star client -> host: a RELAY asking the host to deliver ``packed`` to ``to``."""
        if self._state != "connected":
            return None
        self._relay_n = (self._relay_n + 1) & 0xFFFF
        msg = wire.Relay(to, self._relay_n, wire.timestamp_us(now), packed)
        return (
            self._checked_size(wire.serialize(msg)) if label == STATE_LABEL else wire.serialize(msg)
        )

    def send_forward(self, relayed: RelayReceived) -> bytes | None:
        """Star host -> client: FORWARD what ``relayed.peer_id`` relayed."""
        if self._state != "connected":
            return None
        msg = wire.Forward(relayed.peer_id, relayed.n, relayed.sent_us, relayed.payload)
        return wire.serialize(msg, self._limits)

    def send_bye(self, reason: str = "left") -> None:
        """Say goodbye on the state channel (arrives first) and on the first reliable
        channel (arrives for sure, behind queued events); the peer acts on the first."""
        if self._state != "connected":
            return
        data = wire.serialize(wire.Bye(reason))
        self._outgoing.append((STATE_LABEL, data))
        for label in self._assemblers:
            self._outgoing.append((label, data))
            break

    # -- receiving --------------------------------------------------------------------

    def _bad(self, why: str) -> None:
        self._bad_packets += 1
        logger.debug("peer %s: dropped bad packet: %s", self.peer_id, why)
        if not self._budget.allow_bad(self._now):
            self._lose("abuse", self._budget.reason)

    def receive(self, label: str, data: bytes | str, now: float) -> None:
        """One message from channel ``label``; anything off-spec is dropped and counted."""
        if self._state != "connected":
            return
        self._now = now
        # The budget first: a message over it costs one length check, whatever it holds.
        verdict = self._budget.admit(label, len(data), now, reliable=label in self._reliable)
        if verdict is not Verdict.ACCEPT:
            self._rate_limited += 1
            if verdict is Verdict.ABUSE:
                self._lose("abuse", self._budget.reason)
            return
        try:
            msg = wire.parse(data, self._limits)  # type: ignore[arg-type]
        except DecodeError as exc:
            self._bad(str(exc))
            return
        self._last_recv = now
        if label == STATE_LABEL:
            self._on_state_channel(msg, now, len(data))
        else:
            self._on_reliable_channel(label, msg, len(data))

    def _on_state_channel(self, msg: wire.Message, now: float, size: int) -> None:
        if isinstance(msg, _STAMPED_TYPES):
            # The decoded message carries range-checked seq/ack/ack_bits: no header copy.
            is_new = self._endpoint.receive(msg, now, size)
            for seq in self._endpoint.take_acked():
                self._snap_tx.on_ack(seq)  # ignores sequences of non-snapshot packets
            if not is_new:
                return  # stale or duplicate: newer state was already delivered
            if isinstance(msg, wire.State):
                self._events.append(StateReceived(self.peer_id, msg.payload, msg.seq, msg.sent_us))
            elif isinstance(msg, wire.Snapshot):
                self._on_snapshot(msg)
        elif isinstance(msg, wire.Ping):
            if self._budget.allow_pong(now):
                pong = wire.Pong(msg.sent_us, wire.timestamp_us(now))
                self._outgoing.append((STATE_LABEL, wire.serialize(pong)))
            else:
                self._pings_ignored += 1
        elif isinstance(msg, wire.Pong):
            self._on_pong(msg, now)
        elif isinstance(msg, wire.Bye):
            self._goodbye(msg.reason)
        elif isinstance(msg, wire.Relay | wire.Forward):
            self._on_star(msg, STATE_LABEL, size)
        else:
            self._bad(f"{type(msg).__name__} on the state channel")

    def _on_pong(self, msg: wire.Pong, now: float) -> None:
        # Only a PONG echoing a PING we sent (and not yet matched) is an RTT sample:
        # a forged or replayed one would otherwise set any RTT the sender likes.
        if self._pings_out.pop(msg.echo_us, _NOT_SENT) is _NOT_SENT:
            self._unmatched_pongs += 1
            return
        rtt_us = wire.us_elapsed(wire.timestamp_us(now), msg.echo_us)
        self._endpoint.add_rtt_sample(rtt_us / 1_000_000, now)

    def _on_snapshot(self, msg: wire.Snapshot) -> None:
        try:
            done = self._snap_rx.receive(msg.seq, msg.payload)
        except (DecodeError, DeltaBaselineMissing) as exc:
            # Withdraw the ack, so the sender never uses this one as a baseline.
            self._endpoint.discard_received(msg.seq)
            if not isinstance(exc, DeltaBaselineMissing):
                self._bad(str(exc))
            return
        if done is not None:  # None: a fragment of a snapshot still incomplete
            seq, entities = done
            self._events.append(SnapshotReceived(self.peer_id, seq, entities, msg.sent_us))

    def _on_reliable_channel(self, label: str, msg: wire.Message, size: int) -> None:
        if isinstance(msg, wire.Event):
            self._events.append(EventReceived(self.peer_id, msg.payload, label, size))
        elif isinstance(msg, wire.Chunk):
            try:
                whole = self._assemblers[label].feed(msg)
                if whole is not None:
                    event = wire.parse_reassembled(whole, self._limits)
                    self._events.append(
                        EventReceived(self.peer_id, event.payload, label, len(whole))
                    )
            except DecodeError as exc:
                self._bad(str(exc))
        elif isinstance(msg, wire.Bye):
            self._goodbye(msg.reason)
        elif isinstance(msg, wire.Relay | wire.Forward):
            self._on_star(msg, label, size)
        else:
            self._bad(f"{type(msg).__name__} on reliable channel {label!r}")

    def _on_star(self, msg: wire.Relay | wire.Forward, label: str, size: int) -> None:
        """RELAY is legal only from a client to its host, FORWARD only from the host."""
        if isinstance(msg, wire.Relay):
            if self.star_role != "host":
                self._bad("RELAY on a link that is not from a star client")
                return
            if label == STATE_LABEL:  # newest wins for relayed state too
                if self._relay_newest is not None and not seq_greater_than(
                    msg.n, self._relay_newest
                ):
                    self._stale_forwards += 1
                    return
                self._relay_newest = msg.n
            relayed = RelayReceived(
                self.peer_id, msg.to, msg.n, msg.sent_us, msg.payload, label, size
            )
            self._events.append(relayed)
            return
        if self.star_role != "client" or msg.origin == self.peer_id:
            self._bad("FORWARD on a link that is not from the star's host")
            return
        if label != STATE_LABEL:
            self._events.append(EventReceived(msg.origin, msg.payload, label, size))
            return
        newest = self._forward_newest.get(msg.origin)
        if newest is not None and not seq_greater_than(msg.n, newest):
            self._stale_forwards += 1
            return  # newest wins, per origin, as for direct state
        self._forward_newest.pop(msg.origin, None)
        self._forward_newest[msg.origin] = msg.n
        while len(self._forward_newest) > MAX_FORWARD_ORIGINS:
            del self._forward_newest[next(iter(self._forward_newest))]
        self._events.append(StateReceived(msg.origin, msg.payload, msg.n, msg.sent_us))
