"""The frame loop: poll the session, tick the game, draw, repeat.

Synchronous on purpose (pygame wants the main thread): the session is a
``netcode.connect_sync`` :class:`SyncSession` whose event loop lives in a
background thread, and the loop polls it once per frame, matchbox style.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import netcode
from netcode import DecodeError, NetworkConditions, TickClock, TickConfig

from .bot import bot_input
from .cli import Options
from .client import ClientGame
from .host import HostGame
from .messages import decode_inputs, decode_snapshot
from .netgraph import NetGraphData, NetSample
from .sim import DT, TICK_RATE, Input
from .stats import StatsLike, StatsRecorder, Timeline, movement_json

__all__ = ["GameLoop", "SessionLike"]

SNAPSHOT_EVERY = 2  # ticks: 30 snapshots/s, like most shooters' default update rate
# A client whose host is gone this long stops (the lobby names a new host after
# host_grace_s, 3 s by default, so this only fires when no new host can come).
NO_HOST_GIVE_UP_S = 20.0
NOTICE_S = 5.0  # how long the HUD says who the new host is
# No snapshot for this long (15 in a row at 30 Hz): the host is taken for silent.
HOST_SILENT_S = 0.5
_STATS_EVERY_S = 0.1
_STATUS_EVERY_S = 1.0
# The conditioner the C key switches on when none was given on the command line.
_DEMO_CONDITIONS = NetworkConditions(loss=0.05, latency_ms=60.0, jitter_ms=15.0)


class SessionLike(Protocol):
    """The part of netcode's SyncSession the loop uses (a fake can stand in)."""

    @property
    def peer_id(self) -> str: ...
    @property
    def room(self) -> str | None: ...
    @property
    def peers(self) -> dict[str, Any]: ...
    @property
    def host_id(self) -> str | None: ...
    @property
    def topology(self) -> str: ...
    def poll(self) -> list[Any]: ...
    def send_state(self, obj: Any, to: str | None = None) -> bool: ...
    def send_event(self, obj: Any, to: str | None = None) -> None: ...
    def send_snapshot(self, entities: Any, to: str | None = None) -> Any: ...
    def stats(self, peer_id: str) -> Any: ...
    def set_conditions(
        self, conditions: NetworkConditions | None, peer: str | None = None
    ) -> Any: ...


@dataclass(slots=True)
class _Rate:
    """Packets/s towards one peer, to turn kbps into bytes per snapshot."""

    t: float = 0.0
    sent: int = 0
    received: int = 0
    bytes_out: float = 0.0
    bytes_in: float = 0.0


@dataclass(slots=True)
class Toggles:
    """What the I / P / C / G keys switch."""

    interpolation: bool = True
    prediction: bool = True
    conditions: NetworkConditions | None = None
    graph: bool = True


class GameLoop:
    """One peer's match: host, dedicated server or client."""

    def __init__(self, session: SessionLike, opts: Options, *, want_peers: int | None) -> None:
        self.s = session
        self.opts = opts
        self.me = session.peer_id
        self.role = opts.role
        self.want_peers = want_peers
        self.host: HostGame | None = None
        self.client: ClientGame | None = None
        if self.role == "client":
            self.client = ClientGame(self.me)
        else:
            self.host = HostGame(self.me if self.role == "host" else None, seed=opts.seed)
        self.host_pid: str | None = session.host_id
        # Peers whose seat the lobby holds while they are away / whose link died.
        self.reconnecting: set[str] = set()
        self.lost: set[str] = set()
        self.timeline = Timeline()
        self.moved_as_client: dict[str, float] | None = None  # before we took over
        self._host_missing_since: float | None = None
        self._notice = ("", 0.0)  # (text, until)
        self._await_snapshot = True  # log the first snapshot (after joining / a new host)
        self._await_input: set[str] = set()  # host: log the first input after a (re)connect
        self.stats = StatsRecorder()
        self.graph = NetGraphData()
        cond = _conditions(opts)
        self.toggles = Toggles(conditions=cond)
        self.stop_reason: str | None = None
        # The match ends for everyone ("end" event): a host then leaves last, so that
        # nobody is handed a match that is over (no host migration while closing).
        self.match_over = False
        self.bad_packets = 0  # undecodable packets from peers: counted, never fatal
        self.foreign_snapshots = 0  # snapshots from a peer that is not (or no longer) host
        self.ticks = 0
        self.snapshots_sent = 0
        self.start = time.monotonic()
        self.clock = TickClock(TickConfig(rate=TICK_RATE, max_catchup_ticks=5))
        self.clock.advance(self.start)
        self._next_stats = self.start
        self._next_status = self.start + _STATUS_EVERY_S
        self._rates: dict[str, _Rate] = {}
        self._fps = 0.0

    # ---- events -------------------------------------------------------------------
    def handle_events(self, now: float) -> None:
        for ev in self.s.poll():
            if self.match_over:  # what follows "end" (everyone leaving) is not the match
                break
            self._dispatch(ev, now)

    def _dispatch(self, ev: Any, now: float) -> None:
        if isinstance(ev, netcode.SnapshotReceived):
            self._on_snapshot(ev.peer_id, ev.entities, now)
        elif isinstance(ev, netcode.StateReceived):
            self._on_state(ev.peer_id, ev.data)
        elif isinstance(ev, netcode.EventReceived):
            self._on_event(ev.peer_id, ev.data)
        elif isinstance(ev, netcode.PeerConnected):
            self._on_connected(ev.peer_id)
        elif isinstance(ev, netcode.PeerLeft):
            self._on_left(ev.peer_id, ev.reason)
        elif isinstance(ev, netcode.PeerLost | netcode.PeerConnectFailed):
            self._on_lost(ev.peer_id, ev.reason)
        else:
            self._on_lifecycle(ev, now)

    def _on_lifecycle(self, ev: Any, now: float) -> None:
        """Seats held, seats taken back, a new host, being kicked."""
        if isinstance(ev, netcode.PeerReconnecting):
            self.reconnecting.add(ev.peer_id)
            self.timeline.log("reconnecting", ev.peer_id)
            if self.host is not None:
                self.host.idle(ev.peer_id)
        elif isinstance(ev, netcode.PeerReconnected):
            self.reconnecting.discard(ev.peer_id)
            if self.host is not None:
                kept = ev.peer_id in self.host.world.players
                self.timeline.log("reconnected", ev.peer_id, entity_kept=kept)
            else:
                self.timeline.log("reconnected", ev.peer_id)
        elif isinstance(ev, netcode.HostChanged):
            self._on_host_changed(ev.peer_id, ev.previous, ev.you, now)
        elif isinstance(ev, netcode.Kicked):
            self.stop_reason = f"kicked ({ev.reason or 'no reason given'})"

    def _on_connected(self, pid: str) -> None:
        self.stats.connected(pid)
        self.lost.discard(pid)
        if self.toggles.conditions is not None and not self.opts.condition_handshake:
            # Impair each link once it is up: under loss the DTLS/SCTP handshake waits on
            # aiortc's 1-3 s retransmit timers, which would eat the match, not show netcode.
            self.s.set_conditions(self.toggles.conditions, peer=pid)
        if self.host is not None:
            self.host.add_peer(pid)  # a returning seat keeps its entity (add is a no-op)
            self._await_input.add(pid)

    def _on_left(self, pid: str, reason: str) -> None:
        """The lobby gave the seat up (left, kicked, or its grace ran out): entity gone."""
        self.stats.left(pid, reason)
        self.reconnecting.discard(pid)
        self.lost.discard(pid)
        if self.host is not None:
            self.host.remove_peer(pid)

    def _on_lost(self, pid: str, reason: str) -> None:
        """A link died. Not the end: the peer may take its seat back, and a lost host is
        replaced by the lobby (HostChanged); meanwhile a dropped player stands still."""
        self.stats.left(pid, reason)
        self.lost.add(pid)
        if self.host is not None:
            self.host.idle(pid)

    def notice(self, now: float) -> str:
        """The HUD's banner: the match's lifecycle, in words."""
        if self.client is not None and not self.host_alive(now):
            info = self.s.peers.get(self.host_pid or "")
            gone = info is not None and getattr(info, "state", "") in ("lost", "failed")
            if gone or self.host_pid in self.lost or self.host_pid in self.reconnecting:
                return "host lost: waiting for the lobby to name a new host..."
            if self.host_connected():
                return "host not responding..."
            return "connecting to the host..."
        return self._notice[0] if now < self._notice[1] else ""

    def tag_of(self, pid: str) -> str:
        """Shown under a player's name while it is away."""
        if pid in self.reconnecting:
            return "reconnecting..."
        return "lost" if pid in self.lost else ""

    def _on_host_changed(self, new: str, previous: str, you: bool, now: float) -> None:
        self.timeline.log("host_changed", new, previous=previous, you=you)
        text = "you are the host now" if you else f"new host: {new[:8]}"
        self._notice = (f"{text} (host {previous[:8]} is gone)", now + NOTICE_S)
        self.host_pid = new
        self._host_missing_since = None
        self.lost.discard(previous)
        self.reconnecting.discard(previous)
        if previous in self.stats.peers:  # its link is dropped with no PeerLost of its own
            self.stats.left(previous, "no longer the host")
        if you and self.host is None:
            self._become_host(now)
        elif not you and self.host is not None:
            self._become_client()
        elif self.client is not None:
            self.client.new_host()
            self._await_snapshot = True

    def _become_host(self, now: float) -> None:
        """We carry the match on from the last snapshot we got; the others now send
        their inputs to us (their sessions rebuild the star around us)."""
        assert self.client is not None
        c = self.client
        mine = c.predictor.state if c.predictor is not None else None
        if c.latest is not None:
            gone = round((now - c.latest_at) / DT)
            self.host = HostGame.take_over(c.latest, mine, ticks_gone=gone, seed=self.opts.seed)
            self.timeline.log("took_over", self.me, tick=self.host.world.tick)
            for pid in [p for p in self.host.world.players if p != self.me]:
                if pid not in self.s.peers:  # left before we took over (a host leaving
                    self.host.remove_peer(pid)  # cleanly, say): no ghost entity
        else:  # we never saw the match: start one
            self.host = HostGame(self.me, seed=self.opts.seed)
        self.moved_as_client = dict(c.moved)
        self.client = None
        self.role = "host"
        self._await_input = set(self.host.queues)

    def _become_client(self) -> None:
        """Someone else was named host while we were away: we play on as a client."""
        if self.role == "server":  # no player of our own: nothing left to do here
            self.stop_reason = "another peer is the host now"
            return
        self.host = None
        self.client = ClientGame(self.me)
        self.role = "client"
        self._await_snapshot = True

    def _on_event(self, pid: str, data: Any) -> None:
        if not isinstance(data, dict):
            self.bad_packets += 1
        elif data.get("k") == "end":  # demo simplification: any peer may end the match
            self.stop_reason = f"match ended by {pid[:8]}"
            self.match_over = True

    def _on_snapshot(self, pid: str, entities: Any, now: float) -> None:
        if self.client is None or pid != self.host_pid:
            # only the host's word counts (a late one from a host just replaced: ignored)
            self.foreign_snapshots += 1
            return
        try:
            view = decode_snapshot(entities)
            # reconcile raises DecodeError too, if the host acks an input we never sent
            self.client.on_snapshot(view, now)
        except DecodeError:
            self.bad_packets += 1
            return
        if self._await_snapshot:
            self._await_snapshot = False
            self.timeline.log("first_snapshot", pid, tick=view.tick)

    def _on_state(self, pid: str, data: Any) -> None:
        """Only the host expects state packets (inputs); clients ignore stray ones."""
        if self.host is None:
            return
        try:
            packet = decode_inputs(data)
        except DecodeError:
            self.bad_packets += 1
            return
        if pid in self._await_input:
            self._await_input.discard(pid)
            self.timeline.log("first_input", pid)
        self.host.receive_inputs(pid, packet)

    # ---- simulation ---------------------------------------------------------------
    def run_ticks(self, now: float, local_input: Input | None) -> int:
        """Run the fixed ticks due at ``now`` (netcode's TickClock caps the catch-up)."""
        ticks = self.clock.advance(now)  # the due ticks' numbers; the demo counts its own
        for _ in ticks:
            self._tick(local_input, now)
        return len(ticks)

    def next_tick_at(self) -> float:
        return self.clock.next_deadline() or time.monotonic()

    def _tick(self, local_input: Input | None, now: float) -> None:
        self.ticks += 1
        if self.host is not None:
            self.host.tick(local_input)
            if self.ticks % SNAPSHOT_EVERY == 0 and self.host.queues:
                self.s.send_snapshot(self.host.snapshot())
                self.snapshots_sent += 1
        elif self.client is not None and local_input is not None and self.host_alive(now):
            # While the host is silent or gone we stand still: no input is predicted
            # that no host will ever apply (a crashed host's link only times out
            # after peer_timeout_s; its snapshots stop at once).
            packet = self.client.tick(local_input)
            if packet is not None:
                self.s.send_state(packet, to=self.host_pid)

    def host_connected(self) -> bool:
        info = self.s.peers.get(self.host_pid or "")
        return info is not None and getattr(info, "state", "") == "connected"

    def match_up(self) -> bool:
        """Everyone we expect is connected and the world is flowing (snapshots here)."""
        live = sum(1 for i in self.s.peers.values() if getattr(i, "state", "") == "connected")
        flowing = self.client is None or self.client.latest is not None
        return flowing and (self.want_peers is None or live >= self.want_peers)

    def host_alive(self, now: float) -> bool:
        """The host link is up and its snapshots flow (or none came yet: we just joined)."""
        if not self.host_connected():
            return False
        c = self.client
        return c is None or c.latest is None or now - c.latest_at < HOST_SILENT_S

    def check_host(self, now: float) -> None:
        """A client without a host for this long gives up (no lobby to name a new one)."""
        if self.client is None or self.host_connected():
            self._host_missing_since = None
        elif self._host_missing_since is None:
            self._host_missing_since = now
        elif now - self._host_missing_since > NO_HOST_GIVE_UP_S:
            self.stop_reason = "no host"

    def bot_input(self) -> Input:
        """The local player's steering when a bot drives it."""
        seed = self.opts.seed
        if self.host is not None:
            p = self.host.world.players.get(self.me)
            pickups = [(k.x, k.y) for k in self.host.world.pickups]
            return bot_input((p.x, p.y) if p else (0.0, 0.0), pickups, self.ticks, seed)
        assert self.client is not None
        pos = self.client.my_position() or (0.0, 0.0)
        return bot_input(pos, self.client.pickups(), self.ticks, seed)

    # ---- stats --------------------------------------------------------------------
    def sample_stats(self, now: float) -> None:
        """Every 100 ms: record each connected peer's stats and add a net-graph sample.

        The graph follows the link that matters: a client's link to the host, or
        the host's worst link.
        """
        if now < self._next_stats:
            return
        self._next_stats = now + _STATS_EVERY_S
        focus: StatsLike | None = None
        size, focus_pid = 0, ""
        for pid, info in list(self.s.peers.items()):
            if getattr(info, "state", "") != "connected":
                continue
            try:
                st = self.s.stats(pid)
            except KeyError:  # a star's client reaches other players through the host
                continue
            self.stats.sample(pid, st)
            pkt = self._packet_size(pid, st, now)
            if self.client is not None:
                if pid == self.host_pid:
                    focus, size, focus_pid = st, pkt, pid
            elif focus is None or st.rtt_ms > focus.rtt_ms:
                focus, size, focus_pid = st, max(size, pkt), pid
        if self.client is not None and focus is not None:
            self.client.adapt_delay(focus.jitter_ms)
        self.graph.extra = self._extra_line()
        if focus is not None:
            self.graph.add(self._net_sample(focus, size, self._path(focus_pid)))

    def _path(self, pid: str) -> str | None:
        """The ICE path (host / srflx / relay) of the link to ``pid``, if the session says."""
        link_view = getattr(self.s, "link_view", None)
        view = link_view(pid) if link_view is not None else None
        path = getattr(view, "path", None)
        return path if isinstance(path, str) else None

    def _net_sample(self, focus: StatsLike, size: int, path: str | None = None) -> NetSample:
        live = [r.last for r in self.stats.peers.values() if r.last and r.left is None]
        return NetSample(
            rtt_ms=focus.rtt_ms,
            jitter_ms=focus.jitter_ms,
            loss=focus.loss,
            kbps_in=sum(s.kbps_received for s in live),
            kbps_out=sum(s.kbps_sent for s in live),
            snapshot_bytes=size,
            tick=self.ticks,
            fps=self._fps,
            path=path,
        )

    def _extra_line(self) -> str:
        if self.client is not None:
            c = self.client
            pending = len(c.predictor.pending_inputs()) if c.predictor else 0
            return (
                f"interp {c.interp.delay * 1000:3.0f} ms   unacked inputs {pending}"
                f"   fixes {c.corrections}"
            )
        if self.host is not None:
            backlog = max((q.backlog for q in self.host.queues.values()), default=0)
            lost = sum(q.lost for q in self.host.queues.values())
            return (
                f"snapshots {TICK_RATE // SNAPSHOT_EVERY}/s   input backlog {backlog}   lost {lost}"
            )
        return ""

    def _packet_size(self, pid: str, st: StatsLike, now: float) -> int:
        """Average bytes per state packet on the snapshot direction, from kbps / pps."""
        r = self._rates.setdefault(
            pid, _Rate(t=now, sent=st.packets_sent, received=st.packets_received)
        )
        dt = now - r.t
        if dt >= 0.5:
            if self.host is not None:
                pps = (st.packets_sent - r.sent) / dt
                r.bytes_out = st.kbps_sent * 125.0 / pps if pps > 0 else 0.0
            else:
                pps = (st.packets_received - r.received) / dt
                r.bytes_in = st.kbps_received * 125.0 / pps if pps > 0 else 0.0
            r.t, r.sent, r.received = now, st.packets_sent, st.packets_received
        return round(r.bytes_out if self.host is not None else r.bytes_in)

    def frame_done(self, frame_dt: float) -> None:
        if frame_dt > 0:
            self._fps = 0.9 * self._fps + 0.1 * (1.0 / frame_dt) if self._fps else 1.0 / frame_dt

    def maybe_status(self, now: float) -> None:
        if now < self._next_status:
            return
        self._next_status = now + _STATUS_EVERY_S
        line = self.stats.status_line(now - self.start, self.want_peers, focus=self.host_pid)
        notice = self.notice(now)  # headless runs see the lifecycle too
        print(f"{self.role} {self.me[:8]} {line}{'  | ' + notice if notice else ''}", flush=True)

    # ---- toggles ------------------------------------------------------------------
    def toggle_conditioner(self) -> None:
        t = self.toggles
        if t.conditions is None:
            t.conditions = _conditions(self.opts) or _DEMO_CONDITIONS
        else:
            t.conditions = None
        self.s.set_conditions(t.conditions)

    def conditioner_label(self) -> str:
        c = self.toggles.conditions
        if c is None:
            return "off"
        return f"{c.loss * 100:.0f}% {c.latency_ms:.0f}+-{c.jitter_ms:.0f}ms"

    # ---- results ------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "peer_id": self.me,
            "room": self.s.room,
            "elapsed_s": round(time.monotonic() - self.start, 2),
            "ticks": self.ticks,
            "stop_reason": self.stop_reason,
            "bad_packets": self.bad_packets,
            "foreign_snapshots": self.foreign_snapshots,
            "peers": self.stats.as_json(),
            "pid": os.getpid(),
            "topology": self.s.topology,
            "host": self.host_pid,
            "timeline": self.timeline.as_json(),
            "timeline_dropped": self.timeline.dropped,
        }
        if self.moved_as_client is not None:
            out["moved_as_client"] = movement_json(self.moved_as_client)
        if self.host is not None:
            out["snapshots_sent"] = self.snapshots_sent
            out["moved"] = movement_json(self.host.moved)
            out["inputs_received"] = {p: q.received for p, q in self.host.queues.items()}
            out["inputs_lost"] = {p: q.lost for p, q in self.host.queues.items()}
            out["scores"] = {p: pl.score for p, pl in self.host.world.players.items()}
            out["world_tick"] = self.host.world.tick
        if self.client is not None:
            out["moved_since_host_change"] = movement_json(self.client.moved_since_host_change())
            out["snapshots_received"] = self.client.snapshots
            out["stale_snapshots"] = self.client.stale
            out["corrections"] = self.client.corrections
            out["moved"] = movement_json(self.client.moved)
        return out


def _conditions(opts: Options) -> NetworkConditions | None:
    if opts.loss == 0 and opts.latency == 0 and opts.jitter == 0:
        return None
    return NetworkConditions(
        loss=opts.loss, latency_ms=opts.latency, jitter_ms=opts.jitter, seed=opts.seed
    )
