"""One aiortc RTCPeerConnection and its negotiated data channels: a :class:`PeerLink`.

Thin I/O: bytes go through :mod:`netcode.protocol.wire`, sequence numbers, acks
and statistics through :class:`netcode.protocol.reliability.ReliabilityEndpoint`;
this module owns only the peer connection, its timers and its send queues.

What it does about the aiortc traps (docs: AIORTC_NOTES.md, numbered there):

1. ``iceServers`` is always passed explicitly (``[]`` when none), never defaulted
   to a public STUN server.
2. ICE host candidates can be pinned (``SessionConfig.host_addresses``) with
   :func:`pinned_host_addresses`, because aioice never gathers loopback.
3. aiortc's own candidates travel in the SDP; remote trickled candidates are
   accepted (``candidate:`` prefix stripped), ``.local`` mDNS ones dropped, and
   end-of-candidates is always sent and honoured.
4. An application heartbeat (PING/PONG on the state channel) detects a dead
   peer in ``peer_timeout_s`` instead of aiortc's ~32 s; "closed" and "failed"
   connection states are both final.
5/6. State is dropped (latest wins) when the state channel's ``bufferedAmount``
   is over ``state_buffer_threshold`` (about two ticks); reliable data waits in our
   own queue in packets of at most one SCTP chunk and is fed to SCTP only while
   SCTP has nothing unsent and its congestion window keeps room for state, so
   state never waits behind more than one reliable packet, also under loss.

Hostile peers: every received packet is checked against the peer's receive
budget (:mod:`netcode.protocol.budget`) before it is decoded; PINGs are answered
at a bounded rate; a PONG counts only if it echoes a PING we sent.
7. A link must be created inside the running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Literal

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from ..config import ChannelConfig, IceServer, NetworkConditions, SessionConfig
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
from ..protocol import wire
from ..protocol.budget import ReceiveBudget, Verdict
from ..protocol.reliability import PeerStats, ReliabilityEndpoint
from ..protocol.snapshot import Entities, SnapshotReceiver, SnapshotSender
from .conditioner import KEEP, Conditioner, _Keep

__all__ = [
    "LinkState",
    "PeerLink",
    "SignalSender",
    "install_host_filter",
    "pinned_host_addresses",
]

logger = logging.getLogger("netcode.rtc")

LinkState = Literal["connecting", "connected", "lost", "failed", "closed"]
SignalSender = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``await send(kind, data)``: relay a signal to the remote peer (via the lobby)."""

STATE_LABEL = "state"
_NOT_SENT: Final = object()
_CLEAN = NetworkConditions()
# Reliable data is paced: retried this often while some waits and SCTP has no room.
PACE_INTERVAL_S: Final = 0.005
# Outstanding PINGs remembered for matching PONGs (16 heartbeats: 4 s by default).
MAX_OUTSTANDING_PINGS: Final = 16
# A tuple, not ``State | Snapshot | Ack``: the union would be rebuilt on every packet.
_STAMPED_TYPES = (wire.State, wire.Snapshot, wire.Ack)

# --------------------------------------------------------------------------- host filter

_HOST_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "netcode_host_addresses", default=None
)


def install_host_filter() -> None:
    """Wrap ``aioice.ice.get_host_addresses`` once, so a pin can apply per task.

    The wrapper returns the addresses pinned in the *current context* (see
    :func:`pinned_host_addresses`) and otherwise defers to aioice. aiortc gathers
    inside ``setLocalDescription`` via ``asyncio.gather``, whose tasks copy the
    caller's context, so a pin set around that call reaches aioice and nothing else:
    other connections in the same process (a benchmark's own aiortc peers, say)
    are untouched. Idempotent.
    """
    import aioice.ice

    original = aioice.ice.get_host_addresses
    if getattr(original, "_netcode_filter", False):
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        pinned = _HOST_ADDRESSES.get()
        if pinned is None:
            return list(original(use_ipv4, use_ipv6))
        return [a for a in pinned if (use_ipv6 if ":" in a else use_ipv4)]

    get_host_addresses._netcode_filter = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


@contextlib.contextmanager
def pinned_host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Within this block (this task's context), gather host candidates only on ``addresses``.

    ``None`` leaves aioice's default (every non-loopback interface).
    """
    install_host_filter()
    token = _HOST_ADDRESSES.set(tuple(addresses) if addresses is not None else None)
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)


def _rtc_ice_servers(servers: Sequence[IceServer]) -> list[RTCIceServer]:
    return [
        RTCIceServer(
            urls=list(s.urls) if isinstance(s.urls, tuple) else s.urls,
            username=s.username,
            credential=s.credential,
        )
        for s in servers
    ]


def _remote_candidate(data: Mapping[str, Any]) -> Any | None:
    """An RTCIceCandidate from a trickled browser-style candidate, or None to drop it."""
    line = data.get("candidate")
    if not isinstance(line, str) or not line:
        return None
    line = line.removeprefix("a=").removeprefix("candidate:")
    bits = line.split()
    if len(bits) < 8 or bits[4].endswith(".local"):
        return None  # mDNS names: aioice's resolver blocks ~1 s and fails (trap 12)
    try:
        candidate = candidate_from_sdp(line)
    except (AssertionError, ValueError, IndexError):
        return None
    mid, index = data.get("sdpMid"), data.get("sdpMLineIndex")
    candidate.sdpMid = mid if isinstance(mid, str) else None
    candidate.sdpMLineIndex = index if type(index) is int else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


# --------------------------------------------------------------------------- the link


class PeerLink:
    """The connection to one remote peer: negotiation, channels, heartbeat, stats.

    Events for the game go to ``emit``; ``send_signal`` relays offer/answer/
    end_of_candidates to the remote side. The newcomer of a room offers
    (:meth:`start` with ``offer=True``), the other side answers, so there is no glare.
    """

    def __init__(
        self,
        peer_id: str,
        config: SessionConfig,
        *,
        emit: Callable[[Event], None],
        send_signal: SignalSender,
        ice_servers: Sequence[IceServer] = (),
    ) -> None:
        self._loop = asyncio.get_running_loop()  # trap 7: must be inside the loop
        self.peer_id = peer_id
        self._config = config
        self._limits = config.limits
        self._emit = emit
        self._send_signal = send_signal
        self._state: LinkState = "connecting"
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=_rtc_ice_servers(ice_servers)))
        self._conditioner: Any = None
        if config.conditions is not None:
            self.set_conditions(config.conditions)
        # RTT comes from heartbeat ping/pong (answered at once); ack timing would
        # include the peer's hold time until it next sends.
        self._endpoint = ReliabilityEndpoint(rtt_from_acks=False)
        self._channels: dict[str, RTCDataChannel] = {}
        self._queues: dict[str, deque[bytes]] = {}
        self._assemblers: dict[str, wire.ChunkAssembler] = {}
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._opened = asyncio.Event()
        self._drain_wakeup = asyncio.Event()
        self._closed_task: asyncio.Task[None] | None = None
        self._last_recv = self._loop.time()
        self._last_stamped = float("-inf")  # when we last sent STATE/SNAPSHOT/ACK
        self._bad_packets = 0
        self._oversize_states = 0
        self._rate_limited = 0
        self._pings_ignored = 0
        self._unmatched_pongs = 0
        self._pings_out: dict[int, None] = {}  # sent_us of PINGs not yet answered, oldest first
        self._budget = ReceiveBudget(
            config.budget, self._loop.time(), max_event_bytes=self._limits.max_event_bytes
        )
        self._reliable_labels = frozenset(c.label for c in config.channels if c.reliable)
        self._pace_handle: asyncio.TimerHandle | None = None
        self.connected_at: float | None = None
        self.created_at = self._loop.time()
        # Both ends round quantized fields with the same steps (SessionConfig.snapshot_quantize).
        self._snap_tx = SnapshotSender(quantize=config.snapshot_quantize)
        self._snap_rx = SnapshotReceiver(quantize=config.snapshot_quantize)
        for channel in config.channels:
            self._create_channel(channel)
        self._pc.on("connectionstatechange", self._on_connection_state)

    # -- properties ---------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def pc(self) -> RTCPeerConnection:
        """The underlying peer connection (for inspection; netcode owns it)."""
        return self._pc

    @property
    def endpoint(self) -> ReliabilityEndpoint:
        return self._endpoint

    @property
    def oversize_states(self) -> int:
        """State packets sent although over ``Limits.max_state_bytes``."""
        return self._oversize_states

    def buffered_amount(self, label: str = STATE_LABEL) -> int:
        """Bytes queued in aiortc for one channel, plus our own queue for reliable ones."""
        ch = self._channels[label]
        return int(ch.bufferedAmount) + sum(len(p) for p in self._queues.get(label, ()))

    def stats(self) -> PeerStats:
        return replace(
            self._endpoint.stats(self._loop.time()),
            bad_packets=self._bad_packets,
            rate_limited=self._rate_limited,
            pings_ignored=self._pings_ignored,
            unmatched_pongs=self._unmatched_pongs,
        )

    # -- setup --------------------------------------------------------------------

    def _create_channel(self, cfg: ChannelConfig) -> None:
        ch = self._pc.createDataChannel(
            cfg.label,
            ordered=cfg.ordered,
            maxRetransmits=cfg.max_retransmits,
            maxPacketLifeTime=cfg.max_packet_lifetime_ms,
            negotiated=True,
            id=cfg.id,
        )
        self._channels[cfg.label] = ch
        ch.on("open", self._on_open)
        ch.on("message", lambda data, cfg=cfg: self._on_message(cfg, data))
        ch.on("bufferedamountlow", lambda label=cfg.label: self._on_buffered_low(label))
        if cfg.label != STATE_LABEL:
            self._queues[cfg.label] = deque()
            self._assemblers[cfg.label] = wire.ChunkAssembler(self._limits)
        # "bufferedamountlow" then means "all handed to SCTP": the moment to pace on.
        ch.bufferedAmountLowThreshold = 0

    def _on_buffered_low(self, label: str) -> None:
        self._pump_all()
        self._drain_wakeup.set()

    def set_conditions(
        self,
        conditions: NetworkConditions | _Keep | None = KEEP,
        *,
        inbound: NetworkConditions | _Keep | None = KEEP,
    ) -> None:
        """Apply simulated impairment to this link's outbound and/or inbound datagrams.

        ``None``: clean; omitted (``KEEP``): that direction unchanged.
        """
        if self._conditioner is None:
            if conditions in (None, KEEP) and inbound in (None, KEEP):
                return  # nothing to simulate: do not hook the transport at all
            out = conditions if isinstance(conditions, NetworkConditions) else _CLEAN
            into = inbound if isinstance(inbound, NetworkConditions) else None
            self._conditioner = Conditioner(out, into)
            self._conditioner.attach(self._pc)
        else:
            self._conditioner.set(outbound=conditions, inbound=inbound)

    def start(self, *, offer: bool) -> None:
        """Start the signal worker and the timers; the offerer also sends its offer."""
        self._spawn(self._signal_worker(offer))
        self._spawn(self._heartbeat())

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(self._loop.create_task(coro))

    # -- signaling ------------------------------------------------------------------

    def handle_signal(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a signal from the remote peer; handled in arrival order."""
        if self._state == "connecting":
            self._inbox.put_nowait((kind, data))

    async def _signal_worker(self, offer: bool) -> None:
        try:
            if offer:
                await self._send_description(await self._pc.createOffer())
            while True:
                kind, data = await self._inbox.get()
                await self._on_signal(kind, data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # bad SDP from the peer, lobby gone, ...
            logger.info("peer %s: negotiation failed: %r", self.peer_id, exc)
            self._fail(f"negotiation failed: {exc}")

    async def _send_description(self, description: RTCSessionDescription) -> None:
        with pinned_host_addresses(self._config.host_addresses):
            await self._pc.setLocalDescription(description)
        local = self._pc.localDescription
        await self._send_signal(local.type, {"type": local.type, "sdp": local.sdp})
        # aiortc put every candidate in the SDP (trap 3): say so explicitly.
        await self._send_signal("end_of_candidates", {})

    async def _on_signal(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("offer", "answer"):
            sdp = data.get("sdp")
            if not isinstance(sdp, str):
                raise DecodeError(f"{kind} without an sdp string")
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            if kind == "offer":
                await self._send_description(await self._pc.createAnswer())
        elif kind == "candidate":
            candidate = _remote_candidate(data)
            if candidate is not None:
                await self._pc.addIceCandidate(candidate)
        elif kind == "end_of_candidates":
            await self._pc.addIceCandidate(None)
        else:
            logger.debug("peer %s: ignoring signal kind %r", self.peer_id, kind)

    # -- state transitions ------------------------------------------------------------

    def _on_open(self) -> None:
        if self._state != "connecting":
            return
        if all(ch.readyState == "open" for ch in self._channels.values()):
            self._state = "connected"
            self.connected_at = self._last_recv = self._last_stamped = self._loop.time()
            self._opened.set()
            self._emit(PeerConnected(self.peer_id))
            for label in self._queues:
                self._pump(label)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state in ("failed", "closed"):  # trap 4: both final
            if self._state == "connecting":
                self._fail(f"connection {state}")
            elif self._state == "connected":
                self._lose("closed", f"connection {state}")

    def _fail(self, reason: str) -> None:
        if self._state == "connecting":
            self._state = "failed"
            self._emit(PeerConnectFailed(self.peer_id, reason))
            self._begin_close()

    def _lose(self, reason: str, detail: str) -> None:
        if self._state == "connected":
            log = logger.warning if reason in ("abuse", "overflow") else logger.info
            log("peer %s lost (%s): %s", self.peer_id, reason, detail)
            self._state = "lost"
            self._emit(PeerLost(self.peer_id, reason, detail))
            self._begin_close()

    def disconnect(self, reason: str, detail: str) -> None:
        """End a connected link now, reporting ``PeerLost(reason=reason)`` (e.g. "overflow")."""
        self._lose(reason, detail)

    def _goodbye(self, reason: str) -> None:
        if self._state in ("connecting", "connected"):
            self._state = "closed"
            self._emit(PeerLeft(self.peer_id, reason or "left"))
            self._begin_close()

    def _begin_close(self) -> None:
        if self._closed_task is None:
            self._closed_task = self._loop.create_task(self._close())

    def _pending(self) -> bool:
        return any(self._queues.values()) or any(
            ch.bufferedAmount > 0 for ch in self._channels.values()
        )

    async def drain(self) -> None:
        """Wait until every queued packet was handed to SCTP (bound it with asyncio.timeout).

        Used before a clean close: aiortc's close aborts the association, so
        anything still buffered would be lost. Lowers every channel's
        ``bufferedAmountLowThreshold`` to 0 so ``bufferedamountlow`` marks "empty".
        """
        for ch in self._channels.values():
            ch.bufferedAmountLowThreshold = 0
        while self._state == "connected" and self._pending():
            self._drain_wakeup.clear()
            await self._drain_wakeup.wait()

    def send_bye(self, reason: str = "left") -> None:
        """Tell the peer we leave on purpose (it reports PeerLeft, not PeerLost).

        Sent on the state channel (arrives first) and queued behind pending events on
        the first reliable channel (arrives for sure); the peer acts on the first.
        """
        if self._state != "connected":
            return
        data = wire.serialize(wire.Bye(reason))
        self._send_raw(STATE_LABEL, data)
        for label in self._queues:
            self.send_reliable(label, [data])
            break

    def begin_close(self) -> None:
        """Stop delivering events now and free the peer connection in the background."""
        if self._state in ("connecting", "connected"):
            self._state = "closed"
        self._begin_close()

    async def close(self) -> None:
        """Close the link and free the peer connection (idempotent)."""
        self.begin_close()
        assert self._closed_task is not None
        await asyncio.shield(self._closed_task)

    def on_closed(self, callback: Callable[[PeerLink], None]) -> None:
        """Call ``callback(self)`` once the link is fully closed (at once if it is)."""
        task = self._closed_task
        if task is None:
            raise RuntimeError("on_closed before begin_close")
        task.add_done_callback(lambda _: callback(self))

    async def _close(self) -> None:
        self._opened.set()
        self._drain_wakeup.set()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for queue in self._queues.values():
            queue.clear()
        if self._pace_handle is not None:
            self._pace_handle.cancel()
            self._pace_handle = None
        if self._conditioner is not None:
            self._conditioner.detach()
        with contextlib.suppress(Exception):
            await self._pc.close()

    # -- heartbeat ----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        cfg = self._config
        try:
            await asyncio.wait_for(self._opened.wait(), cfg.connect_timeout_s)
        except TimeoutError:
            self._fail(f"not connected within {cfg.connect_timeout_s} s")
            return
        last_stats = self._loop.time()
        while self._state == "connected":
            now = self._loop.time()
            if now - self._last_recv > cfg.peer_timeout_s:
                self._lose("timeout", f"nothing received for {now - self._last_recv:.1f} s")
                return
            self._send_ping(now)
            if now - self._last_stamped >= cfg.heartbeat_interval_s:
                self._send_ack()
            if cfg.stats_interval_s is not None and now - last_stats >= cfg.stats_interval_s:
                last_stats = now
                self._emit(StatsUpdated(self.peer_id, self.stats()))
            await asyncio.sleep(cfg.heartbeat_interval_s)

    def _send_ping(self, now: float) -> None:
        sent_us = wire.timestamp_us(now)
        self._pings_out[sent_us] = None
        if len(self._pings_out) > MAX_OUTSTANDING_PINGS:
            del self._pings_out[next(iter(self._pings_out))]  # the oldest: never answered
        self._send_raw(STATE_LABEL, wire.serialize(wire.Ping(sent_us)))

    def _send_ack(self) -> None:
        """A header-only packet: the peer learns what we received although we send no state."""
        self._send_raw(STATE_LABEL, self._stamped(wire.MsgType.ACK, None))

    # -- sending --------------------------------------------------------------------------

    def _send_raw(self, label: str, data: bytes) -> bool:
        ch = self._channels.get(label)
        if ch is None or ch.readyState != "open":
            return False
        try:
            ch.send(data)
        except Exception as exc:  # InvalidStateError, ConnectionError mid-teardown
            logger.debug("peer %s: send on %s failed: %r", self.peer_id, label, exc)
            return False
        return True

    def _stamped(self, kind: wire.MsgType, packed: wire.Packed | None) -> bytes:
        """Stamp the next sequence/acks and encode one STATE/SNAPSHOT/ACK envelope."""
        now = self._last_stamped = self._loop.time()
        hdr = self._endpoint.next_header(now, 0 if packed is None else len(packed.data))
        sent_us = wire.timestamp_us(now)
        return wire.encode_stamped(kind, hdr.seq, hdr.ack, hdr.ack_bits, sent_us, packed)

    def _state_channel_ready(self) -> bool:
        if self._state != "connected":
            return False
        if self._channels[STATE_LABEL].bufferedAmount > self._config.state_buffer_threshold:
            self._endpoint.count_state_drop()  # latest state wins: drop, never queue
            return False
        return True

    def _send_stamped(self, data: bytes) -> bool:
        if len(data) > self._limits.max_packet_bytes:
            # The peer would drop it as a bad packet; this is a bug in the game.
            raise EncodeError(
                f"state of {len(data)} bytes exceeds max_packet_bytes="
                f"{self._limits.max_packet_bytes}: send it with send_event"
            )
        if len(data) > self._limits.max_state_bytes:
            self._note_oversize(len(data))
        return self._send_raw(STATE_LABEL, data)

    def send_state(self, packed: wire.Packed) -> bool:
        """Send state unreliably; False if not connected or dropped by backpressure."""
        if not self._state_channel_ready():
            return False
        return self._send_stamped(self._stamped(wire.MsgType.STATE, packed))

    def send_snapshot(self, entities: Entities) -> bool:
        """Send a snapshot, delta-encoded against the newest one this peer acked."""
        if not self._state_channel_ready():
            return False
        payload = self._snap_tx.encode(self._endpoint.next_seq, entities)
        packed = wire.pack_payload(payload, self._limits)
        return self._send_stamped(self._stamped(wire.MsgType.SNAPSHOT, packed))

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

    def send_reliable(self, label: str, packets: Sequence[bytes]) -> None:
        """Queue the packets of one reliable message; sent as the channel drains."""
        queue = self._queues.get(label)
        if queue is None:
            raise KeyError(f"no reliable channel {label!r}")
        if self._state not in ("connecting", "connected"):
            return
        queue.extend(packets)
        self._pump(label)

    def _pump_all(self) -> None:
        for label in self._queues:
            self._pump(label)

    def _pace_tick(self) -> None:
        self._pace_handle = None
        self._pump_all()

    def _pump(self, label: str) -> None:
        """Hand queued reliable packets to aiortc while SCTP has room for them (paced)."""
        ch, queue = self._channels[label], self._queues[label]
        while queue and ch.readyState == "open" and self._sctp_room():
            if not self._send_raw(label, queue.popleft()):
                return
        if queue and self._pace_handle is None and self._state in ("connecting", "connected"):
            self._pace_handle = self._loop.call_later(PACE_INTERVAL_S, self._pace_tick)

    def _sctp_room(self) -> bool:
        """May a reliable packet go to SCTP now without queueing ahead of state?

        All channels share one SCTP send queue and congestion window (trap 6), and
        aiortc moves a message into SCTP's queue only when that queue is empty. So
        a reliable packet (at most one SCTP chunk) goes only when nothing waits to
        be handed over, SCTP has nothing unsent and its window is not full: state
        then waits behind at most one reliable packet and the next SACK. Leaving
        the window partly free for state would be kinder still, but aiortc grows
        the window only while it is full, and events would crawl (measured: 25 s
        for 300 KB at 5 % loss + 50 ms). Reads aiortc internals; without them the
        fallback is ``reliable_buffer_limit``.
        """
        buffered = 0
        for ch in self._channels.values():
            buffered += ch.bufferedAmount
        if buffered >= self._config.reliable_buffer_limit:
            return False
        sctp = self._pc.sctp
        try:
            unsent, flight, cwnd = sctp._outbound_queue, sctp._flight_size, sctp._cwnd
        except AttributeError:
            return True
        if buffered or unsent:
            return False
        return bool(flight < cwnd)

    # -- receiving ------------------------------------------------------------------------

    def _bad(self, why: str) -> None:
        self._bad_packets += 1
        logger.debug("peer %s: dropped bad packet: %s", self.peer_id, why)

    def _on_message(self, cfg: ChannelConfig, data: bytes | str) -> None:
        if self._state != "connected":
            return
        now = self._loop.time()
        label = cfg.label
        # The budget first: a packet over it costs one length check, whatever it holds.
        verdict = self._budget.admit(label, len(data), now, reliable=label in self._reliable_labels)
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
        try:
            if cfg.label == STATE_LABEL:
                self._on_state_channel(msg, now, len(data))
            else:
                self._on_reliable_channel(cfg.label, msg)
        except Exception:
            # This runs inside aiortc's SCTP receive path: an exception escaping here
            # would break the association. A layer above choked on a well-formed
            # packet; count it like any bad packet and keep the link alive.
            logger.exception("peer %s: error handling %s", self.peer_id, type(msg).__name__)
            self._bad_packets += 1

    def _on_state_channel(self, msg: wire.Message, now: float, size: int) -> None:
        if isinstance(msg, _STAMPED_TYPES):
            # The decoded message carries range-checked seq/ack/ack_bits: no header copy.
            is_new = self._endpoint.receive(msg, now, size)
            for seq in self._endpoint.take_acked():
                self._snap_tx.on_ack(seq)  # ignores sequences of non-snapshot packets
            if not is_new:
                return  # stale or duplicate: newer state was already delivered
            if isinstance(msg, wire.State):
                self._emit(StateReceived(self.peer_id, msg.payload, msg.seq))
            elif isinstance(msg, wire.Snapshot):
                self._on_snapshot(msg)
        elif isinstance(msg, wire.Ping):
            if self._budget.allow_pong(now):
                pong = wire.Pong(msg.sent_us, wire.timestamp_us(now))
                self._send_raw(STATE_LABEL, wire.serialize(pong))
            else:
                self._pings_ignored += 1
        elif isinstance(msg, wire.Pong):
            self._on_pong(msg, now)
        elif isinstance(msg, wire.Bye):
            self._goodbye(msg.reason)
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
            entities = self._snap_rx.decode(msg.seq, msg.payload)
        except (DecodeError, DeltaBaselineMissing) as exc:
            # Withdraw the ack, so the sender never uses this one as a baseline.
            self._endpoint.discard_received(msg.seq)
            if not isinstance(exc, DeltaBaselineMissing):
                self._bad(str(exc))
            return
        self._emit(SnapshotReceived(self.peer_id, msg.seq, entities))

    def _on_reliable_channel(self, label: str, msg: wire.Message) -> None:
        if isinstance(msg, wire.Event):
            self._emit(EventReceived(self.peer_id, msg.payload, label))
        elif isinstance(msg, wire.Chunk):
            try:
                whole = self._assemblers[label].feed(msg)
                if whole is not None:
                    event = wire.parse_reassembled(whole, self._limits)
                    self._emit(EventReceived(self.peer_id, event.payload, label))
            except DecodeError as exc:
                self._bad(str(exc))
        elif isinstance(msg, wire.Bye):
            self._goodbye(msg.reason)
        else:
            self._bad(f"{type(msg).__name__} on reliable channel {label!r}")
