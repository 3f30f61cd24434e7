"""Network conditioner: datagram-level impairment for one aiortc peer connection.

Where it hooks, and why there: below DTLS and SCTP, on the aioice
:class:`aioice.ice.Connection` of the peer connection. Outbound, every
DTLS/SCTP datagram goes through ``Connection.sendto`` (the only caller of
``StunProtocol.send_data``); inbound, every non-STUN datagram reaches
``Connection.data_received``. STUN (ICE checks, consent) uses ``send_stun`` and
the STUN parse path, so ICE stays clean while SCTP congestion control and
retransmission really see the loss, delay and reordering, exactly as on a bad
network. The hooks are instance attributes of that one Connection, so the
scope is one peer connection; nothing global is patched.

The decisions come from the pure :mod:`netcode.protocol.impairment` model; this
module only owns the event-loop timer (one ``call_later`` per direction, for the
earliest queued datagram).

Usage::

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    cond = Conditioner(NetworkConditions(loss=0.05, latency_ms=20, seed=1))
    cond.attach(pc)            # before negotiation
    ...
    cond.set(outbound=NetworkConditions())   # clean from now on, at run time
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..config import NetworkConditions
from ..protocol.impairment import KEEP, Impairment, ImpairmentCounters, Keep, check_conditions

__all__ = [
    "KEEP",
    "Conditioner",
    "ConditionerCounters",
    "DatagramLink",
]

_CLEAN = NetworkConditions()


def _clean_if_none(conditions: object) -> NetworkConditions:
    return _CLEAN if conditions is None else check_conditions(conditions)


def _rng(conditions: NetworkConditions, tag: str) -> random.Random:
    # A string seed is hashed deterministically (random.seed version 2), so the
    # two directions of one seed get different, reproducible patterns.
    if conditions.seed is None:
        return random.Random()
    return random.Random(f"{conditions.seed}/{tag}")


class DatagramLink:
    """One direction: impair datagrams, then hand them to ``deliver`` on time.

    ``deliver`` is called synchronously, in delivery order. Usable on its own by
    anything datagram-shaped (the benchmarks' UDP echo uses it).
    """

    def __init__(
        self,
        conditions: NetworkConditions,
        deliver: Callable[[bytes], None],
        *,
        tag: str = "link",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._tag = tag
        check_conditions(conditions)
        self._impairment: Impairment[bytes] = Impairment(conditions, _rng(conditions, tag))
        self._deliver = deliver
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    @property
    def conditions(self) -> NetworkConditions:
        return self._impairment.model.conditions

    @property
    def counters(self) -> ImpairmentCounters:
        return self._impairment.model.counters.snapshot()

    @property
    def pending(self) -> int:
        """Datagrams decided but not delivered yet (in flight)."""
        return len(self._impairment.queue)

    def set_conditions(self, conditions: NetworkConditions) -> None:
        """New conditions from now on. A new ``seed`` restarts the random stream
        (so the pattern is that seed's); the same or no seed continues it."""
        check_conditions(conditions)
        model = self._impairment.model
        reseed = conditions.seed is not None and conditions.seed != model.conditions.seed
        model.set_conditions(conditions, _rng(conditions, self._tag) if reseed else None)

    def send(self, data: bytes) -> None:
        """Offer a datagram; copies due now are delivered before this returns."""
        for item in self.offer(data):
            self._deliver(item)

    def offer(self, data: bytes) -> list[bytes]:
        """Offer a datagram; returns the copies due now, queues (and times) the rest."""
        if self._closed:
            return []
        loop = self._get_loop()
        due = self._impairment.offer(data, len(data), loop.time())
        self._arm(loop)
        return due

    def close(self) -> None:
        """Drop whatever is still queued and stop the timer."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._impairment.queue.clear()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = self._impairment.next_deadline()
        if deadline is None or (self._timer is not None and self._timer_at == deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        loop = self._get_loop()
        for item in self._impairment.pop_due(loop.time()):
            self._deliver(item)
        self._arm(loop)


@dataclass(frozen=True, slots=True)
class ConditionerCounters:
    """Totals over every attached connection, per direction."""

    outbound: ImpairmentCounters
    inbound: ImpairmentCounters

    @property
    def dropped(self) -> int:
        return self.outbound.dropped + self.inbound.dropped

    @property
    def delayed(self) -> int:
        return self.outbound.delayed + self.inbound.delayed

    @property
    def duplicated(self) -> int:
        return self.outbound.duplicated + self.inbound.duplicated


class _Hook:
    """The two links installed on one aioice Connection."""

    def __init__(self, conn: Any, outbound: NetworkConditions, inbound: NetworkConditions) -> None:
        self.conn = conn
        orig_sendto: Callable[[bytes, int], Awaitable[None]] = conn.sendto
        orig_received: Callable[[bytes, int], None] = conn.data_received
        self._tasks: set[asyncio.Task[None]] = set()

        def send_now(data: bytes) -> None:
            # Delayed sends run from a timer; the coroutine does no real
            # waiting (a UDP sendto), so a task per datagram is cheap and keeps
            # FIFO order (tasks start in creation order).
            task = asyncio.get_running_loop().create_task(_swallow(orig_sendto(data, 1)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self.outbound = DatagramLink(outbound, send_now, tag="out")
        self.inbound = DatagramLink(inbound, lambda d: orig_received(d, 1), tag="in")

        async def sendto(data: bytes, component: int) -> None:
            if component != 1:  # data channels use component 1 only (bundled, rtcp-mux)
                await orig_sendto(data, component)
                return
            for item in self.outbound.offer(data):
                await orig_sendto(item, component)

        def data_received(data: bytes, component: int) -> None:
            if component != 1:
                orig_received(data, component)
                return
            self.inbound.send(data)

        conn.sendto = sendto
        conn.data_received = data_received
        self._orig = (orig_sendto, orig_received)

    def close(self) -> None:
        self.outbound.close()
        self.inbound.close()
        # Restore, so a closed connection holds no reference to us.
        self.conn.sendto, self.conn.data_received = self._orig


async def _swallow(coro: Awaitable[None]) -> None:
    # The connection may close while a datagram is "in flight".
    with contextlib.suppress(ConnectionError):
        await coro


class Conditioner:
    """Simulated loss/latency/jitter/reorder/duplication for a peer connection.

    ``outbound`` applies to datagrams this side sends, ``inbound`` (default:
    clean) to datagrams it receives. Conditions carry their own ``seed``; with a
    seed the drop/delay pattern is reproducible.
    """

    def __init__(
        self, outbound: NetworkConditions, inbound: NetworkConditions | None = None
    ) -> None:
        self._outbound = check_conditions(outbound)
        self._inbound = check_conditions(inbound) if inbound is not None else _CLEAN
        self._hooks: dict[int, _Hook] = {}
        self._retired = ConditionerCounters(ImpairmentCounters(), ImpairmentCounters())

    @property
    def outbound(self) -> NetworkConditions:
        return self._outbound

    @property
    def inbound(self) -> NetworkConditions:
        return self._inbound

    def attach(self, pc: Any) -> None:
        """Condition every datagram of ``pc`` (an RTCPeerConnection) from now on.

        Call right after creating ``pc``: the ICE connection is created later
        (with the SCTP transport), so this hooks it as soon as it exists, on
        the peer connection's gathering/state events.
        """
        ref = weakref.ref(pc)

        def hook(*_: object) -> None:
            target = ref()
            if target is not None:
                self._hook_pc(target)

        pc.on("icegatheringstatechange", hook)
        pc.on("iceconnectionstatechange", hook)
        pc.on("connectionstatechange", hook)
        self._hook_pc(pc)

    def set(
        self,
        outbound: NetworkConditions | Keep | None = KEEP,
        inbound: NetworkConditions | Keep | None = KEEP,
    ) -> None:
        """Change conditions at run time. ``None`` means clean; omitted means unchanged.

        Datagrams already in flight keep the fate decided when they were sent.
        """
        # Both checked before either changes: a bad value leaves the conditioner as it was.
        new_out = self._outbound if outbound is KEEP else _clean_if_none(outbound)
        new_in = self._inbound if inbound is KEEP else _clean_if_none(inbound)
        self._outbound, self._inbound = new_out, new_in
        for hook in self._hooks.values():
            hook.outbound.set_conditions(self._outbound)
            hook.inbound.set_conditions(self._inbound)

    @property
    def counters(self) -> ConditionerCounters:
        out = [h.outbound.counters for h in self._hooks.values()]
        inn = [h.inbound.counters for h in self._hooks.values()]
        return ConditionerCounters(
            _sum([self._retired.outbound, *out]), _sum([self._retired.inbound, *inn])
        )

    def detach(self) -> None:
        """Unhook every connection; queued datagrams are dropped."""
        self._retired = self.counters
        for hook in self._hooks.values():
            hook.close()
        self._hooks.clear()

    def _hook_pc(self, pc: Any) -> None:
        closed = getattr(pc, "connectionState", None) == "closed"
        for conn in _ice_connections(pc):
            if closed:
                hook = self._hooks.pop(id(conn), None)
                if hook is not None:
                    self._retire(hook)
            elif id(conn) not in self._hooks:
                self._hooks[id(conn)] = _Hook(conn, self._outbound, self._inbound)

    def _retire(self, hook: _Hook) -> None:
        self._retired = ConditionerCounters(
            _sum([self._retired.outbound, hook.outbound.counters]),
            _sum([self._retired.inbound, hook.inbound.counters]),
        )
        hook.close()


def _ice_connections(pc: Any) -> list[Any]:
    """The aioice Connections of ``pc`` that exist so far (SCTP and any transceivers)."""
    dtls_transports: list[Any] = []
    sctp = getattr(pc, "sctp", None)
    if sctp is not None:
        dtls_transports.append(sctp.transport)
    for transceiver in pc.getTransceivers():
        dtls_transports.append(transceiver.sender.transport)
    conns: list[Any] = []
    for dtls in dtls_transports:
        conn = getattr(getattr(dtls, "transport", None), "_connection", None)
        if conn is not None and conn not in conns:
            conns.append(conn)
    return conns


def _sum(items: list[ImpairmentCounters]) -> ImpairmentCounters:
    total = ImpairmentCounters()
    for c in items:
        total.offered += c.offered
        total.dropped += c.dropped
        total.delayed += c.delayed
        total.duplicated += c.duplicated
        total.reordered += c.reordered
        total.bytes += c.bytes
    return total
