"""One aiortc RTCPeerConnection and its negotiated data channels: a :class:`PeerLink`.

Thin I/O: bytes go through :mod:`netcode.protocol.wire`, sequence numbers, acks
and statistics through :class:`netcode.protocol.reliability.ReliabilityEndpoint`;
this module owns only the peer connection, its timers and its send queues.

What it does about the known aiortc traps (numbered as in the team's aiortc notes):

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
from dataclasses import dataclass
from typing import Any, Final

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from ..config import ChannelConfig, IceServer, NetworkConditions, SessionConfig
from ..errors import DecodeError
from ..protocol import hello, wire
from ..protocol.impairment import KEEP, Keep
from ..protocol.link import STATE_LABEL, LinkCore, LinkEvent, LinkState, RelayReceived
from ..protocol.reliability import PeerStats, ReliabilityEndpoint
from ..protocol.snapshot import SnapshotFrame
from . import ice
from .conditioner import Conditioner, ConditionerCounters

__all__ = [
    "STATE_LABEL",
    "LinkState",
    "LinkView",
    "PeerLink",
    "SignalSender",
    "install_host_filter",
    "pinned_host_addresses",
]

logger = logging.getLogger("netcode.rtc")

SignalSender = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``await send(kind, data)``: relay a signal to the remote peer (via the lobby)."""

_CLEAN = NetworkConditions()
# Reliable data is paced: retried this often while some waits and SCTP has no room.
PACE_INTERVAL_S: Final = 0.005

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


@dataclass(frozen=True, slots=True)
class LinkView:
    """What one live peer link is doing, for diagnostics and tests (``session.link_view``).

    ``buffered``: bytes per channel not yet handed to SCTP (aiortc's buffer plus
    netcode's paced queue). ``full_snapshots`` / ``delta_snapshots``: snapshots
    encoded for this peer. ``conditions`` / ``inbound_conditions``: simulated
    impairment in force (None: the link was never conditioned), ``impairment``:
    the conditioner's counters (datagrams offered, dropped, delayed, duplicated).
    """

    peer_id: str
    state: LinkState
    buffered: Mapping[str, int]
    full_snapshots: int
    delta_snapshots: int
    conditions: NetworkConditions | None
    inbound_conditions: NetworkConditions | None
    impairment: ConditionerCounters | None
    # host / srflx / relay: the nominated ICE candidate pair (None: not connected yet).
    path: ice.PathType | None = None


class PeerLink:
    """The connection to one remote peer: aiortc in, :class:`LinkCore` deciding.

    This adapter owns the RTCPeerConnection, its channels, the signaling worker,
    one timer (the core's next deadline), the reliable send queues and their
    pacing. Everything the protocol decides (states, heartbeats, budgets, what is
    legal on which channel, snapshots, acks) is :mod:`netcode.protocol.link`.
    Events for the game go to ``emit``; ``send_signal`` relays offer/answer/
    end_of_candidates to the remote side. The newcomer of a room offers
    (:meth:`start` with ``offer=True``), the other side answers, so there is no glare.
    """

    def __init__(
        self,
        peer_id: str,
        config: SessionConfig,
        *,
        emit: Callable[[LinkEvent], None],
        send_signal: SignalSender,
        ice_servers: Sequence[IceServer] = (),
    ) -> None:
        self._loop = asyncio.get_running_loop()  # trap 7: must be inside the loop
        self.peer_id = peer_id
        self._config = config
        self._emit = emit
        self._send_signal = send_signal
        self.created_at = self._loop.time()
        self._core = LinkCore(peer_id, config, self.created_at)
        self._ice_servers = tuple(ice_servers)
        self._pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=_rtc_ice_servers(ice_servers),
                iceTransportPolicy=ice.rtc_ice_transport_policy(config.ice_transport_policy),
            )
        )
        self._conditioner: Any = None
        self._channels: dict[str, RTCDataChannel] = {}
        self._queues: dict[str, deque[bytes]] = {}
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._drain_wakeup = asyncio.Event()
        self._closed_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._pace_handle: asyncio.TimerHandle | None = None
        self._state_channel: RTCDataChannel | None = None
        self.offerer = False  # True if this side sent the offer (see start)
        self._hello = hello.hello_of(config)
        self._hello_json = hello.serialize(self._hello)
        for channel in config.channels:
            self._create_channel(channel)
        self._pc.on("connectionstatechange", self._on_connection_state)

    # -- properties ---------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._core.state

    @property
    def connected_at(self) -> float | None:
        return self._core.connected_at

    @property
    def pc(self) -> RTCPeerConnection:
        """The underlying peer connection (for inspection; netcode owns it)."""
        return self._pc

    @property
    def core(self) -> LinkCore:
        """The protocol state machine this adapter drives."""
        return self._core

    @property
    def endpoint(self) -> ReliabilityEndpoint:
        return self._core.endpoint

    @property
    def oversize_states(self) -> int:
        """State packets sent although over ``Limits.max_state_bytes``."""
        return self._core.oversize_states

    def view(self) -> LinkView:
        """A :class:`LinkView` of this link right now."""
        cond: Conditioner | None = self._conditioner
        full, delta = self._core.snapshots_sent
        return LinkView(
            peer_id=self.peer_id,
            state=self._core.state,
            buffered={label: self.buffered_amount(label) for label in self._channels},
            full_snapshots=full,
            delta_snapshots=delta,
            conditions=None if cond is None else cond.outbound,
            inbound_conditions=None if cond is None else cond.inbound,
            impairment=None if cond is None else cond.counters,
            path=ice.selected_path(self._pc),
        )

    def buffered_amount(self, label: str = STATE_LABEL) -> int:
        """Bytes queued in aiortc for one channel, plus our own queue for reliable ones."""
        ch = self._channels[label]
        return int(ch.bufferedAmount) + sum(len(p) for p in self._queues.get(label, ()))

    def stats(self) -> PeerStats:
        return self._core.stats(self._loop.time())

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
        ch.on("message", lambda data, label=cfg.label: self._on_message(label, data))
        ch.on("bufferedamountlow", self._on_buffered_low)
        if cfg.label == STATE_LABEL:
            self._state_channel = ch
        else:
            self._queues[cfg.label] = deque()
        # "bufferedamountlow" then means "all handed to SCTP": the moment to pace on.
        ch.bufferedAmountLowThreshold = 0

    def _on_buffered_low(self) -> None:
        self._pump_all()
        self._drain_wakeup.set()

    def set_conditions(
        self,
        conditions: NetworkConditions | Keep | None = KEEP,
        *,
        inbound: NetworkConditions | Keep | None = KEEP,
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
        """Start the signal worker and the connect timer; the offerer also sends its offer."""
        self.offerer = offer
        self._tasks.append(self._loop.create_task(self._signal_worker(offer)))
        self._schedule()

    # -- the core's outputs and timer -------------------------------------------------

    def _flush(self) -> None:
        """Send what the core queued, hand its events on, follow its deadline."""
        core = self._core
        for label, data in core.take_outgoing():
            if label == STATE_LABEL:
                self._send_raw(label, data)
            else:
                self.send_reliable(label, [data])
        for event in core.take_events():
            self._emit(event)
        if core.finished:
            self._begin_close()
        else:
            self._schedule()

    def _schedule(self) -> None:
        at = self._core.next_deadline()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = None if at == float("inf") else self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        self._core.tick(self._loop.time())
        self._flush()

    # -- signaling ------------------------------------------------------------------

    def handle_signal(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a signal from the remote peer; handled in arrival order."""
        if self._core.state == "connecting":
            self._inbox.put_nowait((kind, data))

    async def _signal_worker(self, offer: bool) -> None:
        try:
            if offer:
                await self._send_description(await self._pc.createOffer())
            while not self._core.finished:  # e.g. refused on a mismatch: nothing more to do
                kind, data = await self._inbox.get()
                await self._on_signal(kind, data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # bad SDP from the peer, lobby gone, ...
            logger.info("peer %s: negotiation failed: %r", self.peer_id, exc)
            self._core.fail(f"negotiation failed: {exc}")
            self._flush()

    async def _send_description(self, description: RTCSessionDescription) -> None:
        with pinned_host_addresses(self._config.host_addresses):
            await self._pc.setLocalDescription(description)
        local = self._pc.localDescription
        # Bad TURN credentials are silent in aiortc: fail a relay-only link now.
        ice.check_relay(
            local.sdp, self._ice_servers, self._config.ice_transport_policy, self.peer_id
        )
        # The hello rides along (docs/PROTOCOL.md 2.1.1): the peer can refuse a
        # configuration that differs before any ICE check instead of timing out.
        data = {"type": local.type, "sdp": local.sdp, hello.HELLO_KEY: self._hello_json}
        await self._send_signal(local.type, data)
        # aiortc put every candidate in the SDP (trap 3): say so explicitly.
        await self._send_signal("end_of_candidates", {})

    async def _on_signal(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("offer", "answer"):
            sdp = data.get("sdp")
            if not isinstance(sdp, str):
                raise DecodeError(f"{kind} without an sdp string")
            if not await self._hello_accepted(kind, data):
                return
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            if kind == "offer":
                await self._send_description(await self._pc.createAnswer())
        elif kind == "candidate":
            candidate = _remote_candidate(data)
            if candidate is not None:
                await self._pc.addIceCandidate(candidate)
        elif kind == "end_of_candidates":
            await self._pc.addIceCandidate(None)
        elif kind == "bye" and (detail := hello.mismatch_detail(self._hello, data)) is not None:
            self._core.mismatch(detail)  # the peer refused our configuration
            self._flush()
        else:
            logger.debug("peer %s: ignoring signal kind %r", self.peer_id, kind)

    async def _hello_accepted(self, kind: str, data: dict[str, Any]) -> bool:
        """Check the peer's hello; on a difference, tell it and end the link."""
        verdict = hello.check_remote(self._hello, data)
        if verdict.status == "absent":
            # An older or independent client: accepted as before, the timeout bounds it.
            logger.debug("peer %s: %s without a hello: configuration unchecked", self.peer_id, kind)
        if not verdict.refused:
            return True
        try:  # best effort: the lobby may be gone; our own verdict stands either way
            await self._send_signal("bye", hello.mismatch_data(self._hello, verdict.detail))
        except Exception as exc:
            logger.debug("peer %s: could not send the mismatch signal: %r", self.peer_id, exc)
        self._core.mismatch(verdict.detail, bad=verdict.status == "invalid")
        self._flush()
        return False

    # -- transport events -------------------------------------------------------------

    def _on_open(self) -> None:
        if self._core.state == "connecting" and all(
            ch.readyState == "open" for ch in self._channels.values()
        ):
            self._core.channels_open(self._loop.time())
            self._flush()
            self._pump_all()

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state in ("failed", "closed"):  # trap 4: both final
            self._core.transport_closed(state, self._loop.time())
            self._flush()

    def disconnect(self, reason: str, detail: str) -> None:
        """End a connected link now, reporting ``PeerLost(reason=reason)`` (e.g. "overflow")."""
        self._core.disconnect(reason, detail)
        self._flush()

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
        anything still buffered would be lost.
        """
        while self._core.state == "connected" and self._pending():
            self._drain_wakeup.clear()
            await self._drain_wakeup.wait()

    def send_bye(self, reason: str = "left") -> None:
        """Tell the peer we leave on purpose (it reports PeerLeft, not PeerLost)."""
        self._core.send_bye(reason)
        self._flush()

    def begin_close(self) -> None:
        """Stop delivering events now and free the peer connection in the background."""
        self._core.close()
        self._begin_close()

    async def close(self) -> None:
        """Close the link and free the peer connection (idempotent)."""
        self.begin_close()
        assert self._closed_task is not None
        await asyncio.shield(self._closed_task)

    def on_closed(self, callback: Callable[[PeerLink], None]) -> None:
        """Call ``callback(self)`` once the link is fully closed."""
        task = self._closed_task
        if task is None:
            raise RuntimeError("on_closed before begin_close")
        task.add_done_callback(lambda _: callback(self))

    async def _close(self) -> None:
        self._drain_wakeup.set()
        for handle in (self._timer, self._pace_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._pace_handle = None
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
        if self._conditioner is not None:
            self._conditioner.detach()
        with contextlib.suppress(Exception):
            await self._pc.close()

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

    def _state_channel_ready(self) -> bool:
        if self._core.state != "connected":
            return False
        ch = self._state_channel
        if ch is None or ch.bufferedAmount > self._config.state_buffer_threshold:
            self._core.count_state_drop()  # latest state wins: drop, never queue
            return False
        return True

    def send_state(self, packed: wire.Packed) -> bool:
        """Send state unreliably; False if not connected or dropped by backpressure."""
        if not self._state_channel_ready():
            return False
        data = self._core.send_state(packed, self._loop.time())
        return data is not None and self._send_copies(data)

    def send_frame(self, frame: SnapshotFrame) -> bool:
        """Send one tick's snapshot frame (shared by every peer of the session)."""
        if not self._state_channel_ready():
            return False
        packets = self._core.send_frame(frame, self._loop.time())
        return all([self._send_copies(p) for p in packets]) and bool(packets)

    def _send_copies(self, data: bytes) -> bool:
        """Send one stamped packet ``SessionConfig.state_copies`` times (redundancy mode).

        aiortc sends every SCTP chunk as its own datagram, so the copies are lost
        independently; the receiver delivers the first and drops the rest as stale.
        """
        sent = self._send_raw(STATE_LABEL, data)
        for _ in range(self._config.state_copies - 1):
            self._send_raw(STATE_LABEL, data)
        return sent

    def send_relay(self, to: str, packed: wire.Packed, label: str) -> bool:
        """Star client: ask the host to deliver ``packed`` to ``to`` ("": everyone)."""
        if label == STATE_LABEL and not self._state_channel_ready():
            return False
        data = self._core.send_relay(to, packed, label, self._loop.time())
        if data is None:
            return False
        if label == STATE_LABEL:
            return self._send_copies(data)
        self.send_reliable(label, [data])
        return True

    def send_forward(self, relayed: RelayReceived) -> bool:
        """Star host: pass on what a client relayed (origin named by the host)."""
        if relayed.channel == STATE_LABEL and not self._state_channel_ready():
            return False
        data = self._core.send_forward(relayed)
        if data is None:
            return False
        if relayed.channel == STATE_LABEL:
            return self._send_raw(STATE_LABEL, data)
        self.send_reliable(relayed.channel, [data])
        return True

    def send_reliable(self, label: str, packets: Sequence[bytes]) -> None:
        """Queue the packets of one reliable message; sent as the channel drains."""
        queue = self._queues.get(label)
        if queue is None:
            raise KeyError(f"no reliable channel {label!r}")
        if self._core.state not in ("connecting", "connected"):
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
        if queue and self._pace_handle is None and self._core.state in ("connecting", "connected"):
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

    def _on_message(self, label: str, data: bytes | str) -> None:
        core = self._core
        try:
            core.receive(label, data, self._loop.time())
        except Exception:
            # This runs inside aiortc's SCTP receive path: an exception escaping here
            # would break the association. The core or a layer above choked on a
            # well-formed packet: log it once per packet and keep the link alive.
            logger.exception("peer %s: error handling a message on %s", self.peer_id, label)
        if core.has_output:
            self._flush()
