"""Several lobby nodes serving one set of rooms (docs/LOBBY.md "Several nodes").

Every room lives in exactly one node's :class:`LobbyCore`, its *home*: max players,
host, kick/lock and signal relays stay the single-node logic. A client may connect
to any node; when it joins (``join_room``, ``rejoin`` with a room, ``quick_match``)
a room homed elsewhere, its node becomes a *proxy*: every later frame of that
websocket goes over the bus to the home, whose core serves it as a remote
connection (same peer id, the client's address for the per-address cap), and the
home's replies come back to be written to the socket.

Failure handling:

- each node refreshes a lease every ``node_lease_s / 3``; a node whose lease ran
  out is dead: one surviving node adopts each of its rooms from their snapshots
  (every member reconnecting, the usual grace), proxies to it close their
  websockets with 1012 (the sessions rejoin, reaching the adopter) and homes drop
  the connections it proxied (their seats wait in reconnect grace);
- a publish nobody receives (the node's channel has no subscriber) is the same
  verdict, sooner;
- the store unreachable: local rooms keep working, cross-node joins wait for it
  (up to the adoption bound) then fail with ``unavailable``; once back, the node
  re-registers its lease, room homes and snapshots (a room another node adopted
  meanwhile is closed here with 1012, so its members rejoin there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import DecodeError, LobbyProtocolError, TransportError
from ..lobby.budget import normalize_room_code
from ..lobby.cluster import decode_snapshot, encode_snapshot
from ..lobby.messages import ErrorMsg, JoinRoom, QuickMatch, Rejoin, RoomSummary, parse_client
from ..lobby.rooms import CloseConnection, ConnId, DisconnectReason, Outgoing, Output
from ..lobby.states import ROOM_CODE_ALPHABET
from .lobby_bus import (
    Bounce,
    BusMessage,
    Deliver,
    Frame,
    Gone,
    LobbyBus,
    Open,
    Shut,
    decode_bus,
    encode_bus,
)

if TYPE_CHECKING:
    from .lobby_server import LobbyServer, _Link

__all__ = ["CLOSE_SERVICE_RESTART", "ClusterNode"]

log = logging.getLogger("netcode.lobby.cluster")

# RFC 6455 / IANA: "service restart": the client should reconnect (its session rejoins).
CLOSE_SERVICE_RESTART = 1012
# Room codes reserved ahead in the store, so create_room never waits for it.
_CODE_POOL = 16
# Frames that may name a room homed elsewhere (checked before any parsing).
_ROUTED = ("join_room", "rejoin", "quick_match")
_MAX_BOUNCES = 8
_REASONS: dict[str, DisconnectReason] = {
    r: r for r in ("closed", "disconnected", "timeout", "kicked")
}


class _Summary(msgspec.Struct, array_like=True, frozen=True):
    room: str
    players: int
    max_players: int
    metadata: dict[str, Any]
    topology: str
    locked: bool


_summaries_codec = msgspec.json.Decoder(list[_Summary])


class ClusterNode:
    """The cluster side of one :class:`LobbyServer` (created by it when a bus is set)."""

    def __init__(self, server: LobbyServer, bus: LobbyBus) -> None:
        self.server = server
        self.core = server.core
        self.bus = bus
        cfg = server.config
        self.node_id = server.node_id
        self.lease_s = cfg.node_lease_s
        # The longest a join waits for a dead node's rooms to be adopted.
        self.adopt_wait_s = 2 * self.lease_s + 2.0
        self._routes: dict[ConnId, str] = {}  # our websocket -> the node homing its room
        self._bounces: dict[ConnId, int] = {}  # frames sent back to us, per websocket
        self._unreachable: dict[str, float] = {}  # node -> when a publish found nobody
        # Until then, a room without a home may be one whose node has not re-registered.
        self._rebuilding_until = 0.0
        self._remote: dict[ConnId, tuple[str, int]] = {}  # core conn -> (origin, its conn)
        self._by_origin: dict[tuple[str, int], ConnId] = {}
        self._outbox: list[tuple[str, bytes]] = []
        self._outbox_ready = asyncio.Event()
        self._flush_ready = asyncio.Event()
        self._refill = asyncio.Event()
        self._codes: list[str] = []
        self._owned: set[str] = set()  # room codes whose home we registered
        self._live: dict[str, bool] = {}
        self._summaries: tuple[RoomSummary, ...] = ()
        self._registered = True
        self._store_ok = True
        # Output that follows a room change, waiting for the change's snapshot to be
        # stored (see hold()); and whether the last snapshot write worked.
        self._held: list[Output] = []
        self._flush_ok = True
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.bad_messages = 0  # malformed bus payloads dropped
        self.adopted = 0  # rooms adopted from dead nodes
        self.core.dirty = set()
        self.core.code_source = self._take_code
        self.core.extra_rooms = lambda: self._summaries
        bus.on_lost = self._subscription_lost

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Register (lease, channel, a pool of room codes); raises TransportError if
        the store is unreachable at start (a node must not start blind)."""
        await self.bus.heartbeat(self.node_id, self.lease_s)
        await self.bus.subscribe(self.node_id, self._on_bus)
        await self._fill_codes()
        self._live = await self.bus.nodes()
        for job in (self._send_loop, self._flush_loop, self._lease_loop, self._refill_loop):
            self._tasks.append(asyncio.create_task(self._guard(job)))
        log.info("lobby node %s joined the cluster", self.node_id)

    async def close(self) -> None:
        """Leave: proxied connections are told to reconnect (1012); our rooms stay in
        the store for another node to adopt once our lease (shortened now) ends."""
        for cid, (origin, conn) in list(self._remote.items()):
            self._post(origin, Shut(self.node_id, conn, CLOSE_SERVICE_RESTART, "node leaving"))
            self._forget_remote(cid)
        await self._stop_tasks()
        # Bounded: a store that does not answer must not hold the shutdown.
        with contextlib.suppress(TransportError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._drain_outbox()
                await self._flush_once()
                self._release(len(self._held))
                await self._drain_outbox()
                await self.bus.heartbeat(self.node_id, 0.05)
        await self.bus.unsubscribe(self.node_id)
        await self.bus.close()

    async def crash(self) -> None:
        """Tests: die like a killed process (nothing said, nothing released)."""
        await self._stop_tasks()
        await self.bus.unsubscribe(self.node_id)
        if self.server._server is not None:
            self.server._server.close(close_connections=False)  # stop listening
        for link in list(self.server._links.values()):
            link.ws.transport.abort()

    async def _stop_tasks(self) -> None:
        # redis-py may turn a cancellation into a connection error that a loop
        # survives: the flag and the wake-ups end every loop whatever happens.
        self._stopping = True
        for _ in range(10):
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            for event in (self._outbox_ready, self._flush_ready, self._refill):
                event.set()
            await asyncio.wait(pending, timeout=0.2)
        self._tasks.clear()

    async def _guard(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a background loop; a bug in it is logged and the loop restarted."""
        while not self._stopping:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lobby cluster task %s failed; restarting it", job.__name__)
                await asyncio.sleep(0.5)

    def health(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "store": "ok" if self._store_ok else "unreachable",
            "nodes_live": sum(self._live.values()),
            "proxied": len(self._routes),
            "remote": len(self._remote),
            "adopted": self.adopted,
            "bad_bus_messages": self.bad_messages,
        }

    # --- origin side: our websockets -------------------------------------------------

    async def on_frame(self, link: _Link, data: str | bytes) -> None:
        """One frame of our websocket: proxy it, or give it to our core."""
        home = self._routes.get(link.conn_id)
        if home is not None:
            frame, binary = _raw(data)
            self._post(home, Frame(self.node_id, link.conn_id, frame, binary))
            return
        for _ in range(3):  # a home found gone at the first frame: route again
            target = await self._target(link.conn_id, data)
            if target is None:
                self._local(link.conn_id, data)
                return
            if isinstance(target, ErrorMsg):
                self.server._dispatch([(link.conn_id, target)])
                return
            if await self._open(link, target, data):
                return
        self._unavailable(link.conn_id, data)

    def _unavailable(self, conn_id: ConnId, data: str | bytes) -> None:
        msg = self._routed(conn_id, data)
        why = "that room's lobby node is unreachable: try again"
        rid = None if msg is None else msg.rid
        self.server._dispatch([(conn_id, ErrorMsg(code="unavailable", message=why, rid=rid))])

    def on_close(self, conn_id: ConnId, reason: DisconnectReason) -> None:
        self._bounces.pop(conn_id, None)
        home = self._routes.pop(conn_id, None)
        if home is not None:
            self._post(home, Gone(self.node_id, conn_id, reason))

    def _local(self, conn_id: ConnId, data: str | bytes) -> None:
        self.server._dispatch(self.core.receive(conn_id, data, time.monotonic()))

    async def _target(self, conn_id: ConnId, data: str | bytes) -> str | ErrorMsg | None:
        """The node this frame must go to (None: ours), or the error to answer."""
        msg = self._routed(conn_id, data)
        if msg is None:
            return None
        if isinstance(msg, QuickMatch):
            maker = self._matchmaker()
            return None if maker == self.node_id else maker
        room = msg.room
        assert room is not None  # _routed keeps only rejoins that name their room
        code = normalize_room_code(room)
        if self.core.room_view(code) is not None:
            return None
        home = await self._resolve(code)
        if home == "":
            why = f"room {code} is moving to another lobby node: try again"
            return ErrorMsg(code="unavailable", message=why, rid=msg.rid)
        return home

    def _routed(self, conn_id: ConnId, data: str | bytes) -> JoinRoom | Rejoin | QuickMatch | None:
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if not any(word in text for word in _ROUTED) or self.core.state_of(conn_id) != "lobby":
            return None
        try:
            msg = parse_client(data, max_bytes=self.server.config.max_message_bytes)
        except LobbyProtocolError:
            return None  # the core answers it (and charges the error budget)
        if isinstance(msg, JoinRoom | QuickMatch):
            return msg
        if isinstance(msg, Rejoin) and msg.room is not None:
            return msg
        return None

    def _matchmaker(self) -> str:
        """One node groups every quick match: the smallest live node id."""
        live = [n for n, ok in self._live.items() if ok]
        return min([*live, self.node_id])

    async def _resolve(self, code: str) -> str | None:
        """The live node homing ``code``; None: nobody (or us); "": not now (its node
        is dead and nobody adopted it yet, or the store is down) within the bound."""
        deadline = time.monotonic() + self.adopt_wait_s
        while True:
            try:
                home = await self.bus.home(code)
                if home is None and time.monotonic() < self._rebuilding_until:
                    pass  # the store restarted: its node may not have re-registered yet
                elif home is None or home == self.node_id:
                    return None
                elif not self._live.get(home):
                    self._live = await self.bus.nodes()
                if home is not None and self._live.get(home) and not self._suspect(home):
                    return home
            except TransportError:
                pass
            if time.monotonic() > deadline:
                return ""
            await asyncio.sleep(0.1)  # a dead node's rooms are adopted within a lease

    async def _open(self, link: _Link, home: str, data: str | bytes) -> bool:
        """Start proxying ``link`` to ``home`` with this frame; False if nobody there
        listens (the home is marked gone)."""
        conn_id = link.conn_id
        peer = self.core.peer_id(conn_id)
        if peer is None:
            return True  # closed meanwhile
        frame, binary = _raw(data)
        # The address read at the handshake (a trusted proxy's X-Forwarded-For
        # included): the headers are not kept past it.
        address = self.core.address_of(conn_id)
        opening = Open(self.node_id, conn_id, peer, address, frame, binary)
        self._routes[conn_id] = home
        try:
            received = await self.bus.publish([(home, encode_bus(opening))])
        except TransportError:
            received = [0]
        if not received[0]:
            self._routes.pop(conn_id, None)
            self._node_down(home)
            return False
        return True

    def _deliver_here(self, msg: Deliver | Shut | Bounce) -> None:
        link = self.server._links.get(msg.conn)
        if link is None or self._routes.get(msg.conn) != msg.home:
            return  # gone, or a late message from a home we left
        if isinstance(msg, Deliver):
            self.server._push_frame(link, msg.frame)
        elif isinstance(msg, Shut):
            del self._routes[msg.conn]
            self.server._dispatch_close(link, CloseConnection(msg.code, msg.reason[:120]))
        else:
            del self._routes[msg.conn]
            data: str | bytes = msg.frame if msg.binary else msg.frame.decode("utf-8", "replace")
            asyncio.get_running_loop().create_task(self._reroute(link, data, msg.home))

    async def _reroute(self, link: _Link, data: str | bytes, bouncer: str) -> None:
        target = await self._target(link.conn_id, data)
        if target == bouncer and link.conn_id not in self._routes:
            # Its home may be importing the room right now (adoption): ask again soon.
            tries = self._bounces.get(link.conn_id, 0) + 1
            self._bounces[link.conn_id] = tries
            if tries <= _MAX_BOUNCES:
                await asyncio.sleep(0.05 * tries)
                await self._open(link, bouncer, data)
                return
        self._bounces.pop(link.conn_id, None)
        if target is None or target == bouncer:
            self._local(link.conn_id, data)  # ask our core: it answers room_not_found
        elif isinstance(target, ErrorMsg):
            self.server._dispatch([(link.conn_id, target)])
        elif not await self._open(link, target, data):
            self._unavailable(link.conn_id, data)

    # --- home side: connections proxied to us ----------------------------------------

    def _on_bus(self, payload: bytes) -> None:
        """A payload on our channel: never raises (a bad one is counted and dropped)."""
        try:
            msg = decode_bus(payload)
            self._handle(msg)
        except DecodeError as exc:
            self._bad(f"{exc}")
        except Exception:
            self._bad("a bus message failed", trace=True)

    def _bad(self, why: str, *, trace: bool = False) -> None:
        self.bad_messages += 1
        if self.bad_messages == 1 or self.bad_messages % 1000 == 0:  # log once, then rarely
            log.warning(
                "dropped bad bus message (%d so far): %s", self.bad_messages, why, exc_info=trace
            )

    def _handle(self, msg: BusMessage) -> None:
        if isinstance(msg, Deliver | Shut | Bounce):
            self._deliver_here(msg)
            return
        key = (msg.origin, msg.conn)
        now = time.monotonic()
        if isinstance(msg, Gone):
            cid = self._by_origin.get(key)
            if cid is not None:
                self._forget_remote(cid)
                reason = _REASONS.get(msg.reason, "disconnected")
                self.server._dispatch(self.core.disconnect(cid, reason, now))
                self.server._wake.set()
            return
        if isinstance(msg, Open) and key not in self._by_origin and not self._accept(msg, now):
            return
        cid = self._by_origin.get(key)
        if cid is None:  # we lost it (a restart, a failover): the client reconnects
            self._post(msg.origin, Shut(self.node_id, msg.conn, CLOSE_SERVICE_RESTART, "lost"))
            return
        data: str | bytes = msg.frame if msg.binary else msg.frame.decode("utf-8", "replace")
        if self._not_mine(cid, data):
            self._forget_remote(cid)
            self.server._dispatch(self.core.disconnect(cid, "closed", now))
            self._post(msg.origin, Bounce(self.node_id, msg.conn, msg.frame, msg.binary))
            return
        self.server._dispatch(self.core.receive(cid, data, now))

    def _accept(self, msg: Open, now: float) -> bool:
        cid = next(self.server._ids)
        self._remote[cid] = (msg.origin, msg.conn)
        self._by_origin[(msg.origin, msg.conn)] = cid
        out = self.core.connect(cid, now, msg.addr, peer_id=msg.peer, welcome=False)
        self.server._dispatch(out)
        return self.core.state_of(cid) is not None

    def _not_mine(self, cid: ConnId, data: str | bytes) -> bool:
        """A proxied connection back in the lobby state asks for a room homed elsewhere."""
        msg = self._routed(cid, data)
        if msg is None:
            return False
        if isinstance(msg, QuickMatch):
            return self._matchmaker() != self.node_id
        return msg.room is not None and self.core.room_view(normalize_room_code(msg.room)) is None

    def deliver(self, conn_id: ConnId, item: Outgoing) -> None:
        """The core's output for a connection proxied to us: back to its node."""
        where = self._remote.get(conn_id)
        if where is None:
            return
        origin, conn = where
        if isinstance(item, CloseConnection):
            self._forget_remote(conn_id)
            self._post(origin, Shut(self.node_id, conn, item.code, item.reason))
            return
        try:
            frame = self.server._encode(item)
        except ValueError:
            return
        self._post(origin, Deliver(self.node_id, conn, frame))

    def _forget_remote(self, cid: ConnId) -> None:
        where = self._remote.pop(cid, None)
        if where is not None:
            self._by_origin.pop(where, None)

    # --- sending ---------------------------------------------------------------------

    def _post(self, node: str, msg: BusMessage) -> None:
        self._outbox.append((node, encode_bus(msg)))
        self._outbox_ready.set()

    async def _send_loop(self) -> None:
        """Publish in order, batched; a node nobody listens for is down."""
        while not self._stopping:
            await self._outbox_ready.wait()
            await self._drain_outbox()

    async def _drain_outbox(self) -> None:
        self._outbox_ready.clear()
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        try:
            received = await self.bus.publish(batch)
        except TransportError:
            received = [0] * len(batch)  # lost: treat their nodes as unreachable
        for node in {n for (n, _), r in zip(batch, received, strict=True) if not r}:
            self._node_down(node)

    def _suspect(self, node: str) -> bool:
        """Found unreachable lately: not routed to until its lease shows the truth."""
        since = self._unreachable.get(node)
        return since is not None and time.monotonic() - since < 1.5 * self.lease_s

    def _node_down(self, node: str) -> None:
        """``node`` is gone (or we lost touch): close what we proxy to it, drop what
        it proxied to us (their seats wait in reconnect grace)."""
        if node == self.node_id:
            return
        if node in self._live:
            self._live[node] = False
        self._unreachable[node] = time.monotonic()
        for conn_id, home in list(self._routes.items()):
            if home == node:
                del self._routes[conn_id]
                link = self.server._links.get(conn_id)
                if link is not None:
                    why = "lobby node gone: reconnect"
                    self.server._dispatch_close(link, CloseConnection(CLOSE_SERVICE_RESTART, why))
        now = time.monotonic()
        for cid, (origin, _conn) in list(self._remote.items()):
            if origin == node:
                self._forget_remote(cid)
                self.server._dispatch(self.core.disconnect(cid, "disconnected", now))
        self.server._wake.set()

    def _subscription_lost(self) -> None:
        """Our channel dropped (messages may be lost): restart every cross-node link."""
        self._rebuilding_until = time.monotonic() + self.adopt_wait_s  # a store restart?
        for node in {*self._routes.values(), *(o for o, _ in self._remote.values())}:
            self._node_down(node)

    # --- store: codes, snapshots, leases, adoption -----------------------------------

    def _take_code(self) -> str | None:
        self._refill.set()
        return self._codes.pop() if self._codes else None

    async def _fill_codes(self) -> None:
        length = self.server.config.room_code_length
        while len(self._codes) < _CODE_POOL:
            code = "".join(secrets.choice(ROOM_CODE_ALPHABET) for _ in range(length))
            if self.core.room_view(code) is None and await self.bus.claim(code, self.node_id):
                self._codes.append(code)
                self._owned.add(code)

    async def _refill_loop(self) -> None:
        while not self._stopping:
            await self._refill.wait()
            self._refill.clear()
            with contextlib.suppress(TransportError):
                await self._fill_codes()

    def changed(self) -> None:
        """Rooms changed in the core: snapshot them soon."""
        self._flush_ready.set()

    def hold(self, out: Output) -> bool:
        """Keep ``out`` until the rooms changed so far are stored (True: held).

        A client told "you are in" (room_joined, peer_joined, a kick...) must find
        that seat in the snapshot another node adopts if this one dies the next
        millisecond: so output that follows a change waits for the snapshot write,
        about one store round trip. Order is kept: once something waits, everything
        after it waits too. While the store fails, nothing waits on it.
        """
        if self._stopping or not (self._store_ok and self._flush_ok):
            return False
        if not self._held and not self.core.dirty:
            return False
        self._held.append(out)
        self._flush_ready.set()
        return True

    def _release(self, count: int) -> None:
        """Deliver the first ``count`` held outputs (the ones the last write covered)."""
        batch, self._held = self._held[:count], self._held[count:]
        for out in batch:
            self.server._deliver(out)

    async def _flush_loop(self) -> None:
        while not self._stopping:
            await self._flush_ready.wait()
            self._flush_ready.clear()
            covered = len(self._held)  # held before this write started: it covers them
            try:
                await self._flush_once()
                self._flush_ok = True
            except TransportError:
                self._flush_ok = False
                self._release(len(self._held))  # never keep clients waiting on the store
                self._flush_ready.set()  # retried once the store answers (see _lease_loop)
                await asyncio.sleep(self.lease_s / 3)
                continue
            self._release(covered)

    async def _flush_once(self) -> None:
        dirty = self.core.dirty
        if not dirty:
            return
        codes = list(dirty)
        dirty.clear()
        try:
            snaps: dict[str, bytes] = {}
            for code in codes:
                snap = self.core.snapshot(code)
                if snap is not None:
                    snaps[code] = encode_snapshot(snap)
                elif code in self._owned:
                    await self.bus.release(code, self.node_id)
                    self._owned.discard(code)
            # Each write re-registers the room's home too: a store that restarted
            # since the room was created may not know it yet (joins look it up).
            await self.bus.save(snaps, self.node_id)
        except TransportError:
            dirty.update(codes)
            raise

    async def _lease_loop(self) -> None:
        while not self._stopping:
            try:
                known = await self.bus.heartbeat(self.node_id, self.lease_s)
                if not known or not self._registered:  # the store forgot us: rebuild
                    await self._register()
                await self._watch_nodes()
                await self._share_summaries()
                self._state(True)
            except TransportError as exc:
                self._state(False, str(exc))
            await asyncio.sleep(self.lease_s / 3)

    def _state(self, ok: bool, why: str = "") -> None:
        """Log the store's state once per change, never a traceback."""
        if ok != self._store_ok:
            if ok:
                log.info("lobby store reachable again: node %s re-registered", self.node_id)
            else:
                log.warning("lobby store unreachable (%s): retrying", why)
        self._store_ok = ok
        if not ok:
            self._registered = False

    async def _register(self) -> None:
        """After the store came back: claim our rooms again, rewrite their snapshots;
        a room another node adopted meanwhile is closed here (1012: rejoin there)."""
        self._rebuilding_until = time.monotonic() + self.adopt_wait_s
        codes = sorted(self._owned | set(self.core.rooms()))
        for code in codes:
            if await self.bus.keep(code, self.node_id):
                self._owned.add(code)
                if self.core.dirty is not None:
                    self.core.dirty.add(code)
            else:
                self._owned.discard(code)
                with contextlib.suppress(ValueError):
                    self._codes.remove(code)
                why = "room moved to another lobby node"
                log.warning(
                    "node %s lost room %s to another node: closing it here", self.node_id, code
                )
                self.server._dispatch(self.core.evict(code, CLOSE_SERVICE_RESTART, why))
        await self._flush_once()
        self._registered = True
        self._refill.set()

    async def _watch_nodes(self) -> None:
        before, self._live = self._live, await self.bus.nodes()
        for node in before.keys() - self._live.keys():
            self._node_down(node)  # dead and already forgotten (another node adopted)
        for node, alive in self._live.items():
            if node != self.node_id and not alive:
                self._node_down(node)
                await self._adopt_from(node)

    async def _adopt_from(self, dead: str) -> None:
        for code in await self.bus.rooms_of(dead):
            data = await self.bus.load(code)  # before the claim: import right after it
            if not await self.bus.adopt(code, dead, self.node_id):
                continue
            self._owned.add(code)
            if data is not None and self._import(code, data):
                continue
            log.debug("node %s released code %s of %s (no room)", self.node_id, code, dead)
            await self.bus.release(code, self.node_id)  # a reserved code, no room
            self._owned.discard(code)
        if not await self.bus.rooms_of(dead):
            await self.bus.forget_node(dead)

    def _import(self, code: str, data: bytes) -> bool:
        try:
            snap = decode_snapshot(data, max_players_limit=self.server.config.max_players_limit)
        except DecodeError as exc:
            self._bad(f"snapshot of {code}: {exc}")
            return False
        if snap.code != code or not self.core.adopt(snap, time.monotonic()):
            return False
        self.adopted += 1
        self._flush_ready.set()
        self.server._wake.set()  # new reconnect deadlines
        log.info("node %s adopted room %s (%d seats)", self.node_id, code, len(snap.seats))
        return True

    async def _share_summaries(self) -> None:
        mine = [
            _Summary(s.room, s.players, s.max_players, s.metadata, s.topology, s.locked)
            for s in self.core.public_rooms()
        ]
        await self.bus.put_summaries(self.node_id, msgspec.json.encode(mine), 3 * self.lease_s)
        found: list[RoomSummary] = []
        for node, data in (await self.bus.summaries()).items():
            if node == self.node_id:
                continue
            try:
                entries = _summaries_codec.decode(data)
            except msgspec.DecodeError:
                self._bad(f"summaries of node {node!r:.40}")
                continue
            found.extend(_room_summary(e) for e in entries)
        self._summaries = tuple(found)


def _room_summary(entry: _Summary) -> RoomSummary:
    return RoomSummary(
        room=entry.room,
        players=entry.players,
        max_players=entry.max_players,
        metadata=entry.metadata,
        topology=entry.topology,
        locked=entry.locked,
    )


def _raw(data: str | bytes) -> tuple[bytes, bool]:
    return (data, True) if isinstance(data, bytes) else (data.encode("utf-8"), False)
