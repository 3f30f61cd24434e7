"""One keepalive for every connection of a lobby node, instead of a task per connection.

websockets' own keepalive (``ping_interval`` given to ``serve``) runs a task per
connection that sleeps, pings and waits for the pong: at 10k idle connections
that is 10k tasks with their timers, futures and frames (~1.9 KiB each, measured
with tracemalloc) and two task wake-ups per connection per interval.
:class:`Keepalive` does the same job from one task that wakes every ``step``
seconds, with the same bound: a connection is pinged at most ``interval`` after
it opened or after its previous ping, and one whose pong has not come
``timeout`` after the ping is failed the way websockets fails it (close 1011
"keepalive ping timeout", then the TCP connection after the close timeout).
docs/LOBBY.md "Dead connections".

Connections are kept in buckets by when their next ping is due, in due order
(every bucket is due ``interval - step`` after the tick that made it, so a
connection is never pinged later than ``interval`` after its last ping). Each
batch of pings gets one timer at its ``timeout``, which fails the connections
whose pong has not arrived. A closed connection is dropped the next time its
bucket comes up (so it is referenced here for at most ``interval + timeout``).
A connection whose ping would have to wait for its write buffer to drain (a peer
not reading) gets websockets' keepalive step in a task of its own instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import cast

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

__all__ = ["Keepalive"]

log = logging.getLogger("netcode.lobby")

# Pings sent between two yields to the event loop: bounds how long the keepalive
# holds the loop at a time (~0.5 ms) when many connections come due together.
_CHUNK = 32
# Room left in the write buffer for a ping frame: ping() must never wait in
# drain() (that would stall every other connection's keepalive).
_PING_FRAME_ROOM = 64


class Keepalive:
    """Pings every added connection every ``interval_s``; fails it after ``timeout_s``.

    ``add()`` each connection once when it opens; closed ones drop out by
    themselves. ``pings`` and ``timeouts`` count what it did.
    """

    def __init__(self, interval_s: float, timeout_s: float, *, step_s: float | None = None) -> None:
        self.interval = interval_s
        self.timeout = timeout_s
        # Granularity of the schedule: pings come up to two steps early, never late.
        self.step = step_s if step_s is not None else max(0.005, min(interval_s, timeout_s) / 50)
        self.pings = 0
        self.timeouts = 0
        self._due: collections.deque[tuple[float, list[ServerConnection]]] = collections.deque()
        self._new: list[ServerConnection] = []
        self._last_tick = 0.0
        self._task: asyncio.Task[None] | None = None
        self._failing: dict[ServerConnection, asyncio.Task[None]] = {}
        # Clogged connections, each pinged by a task of its own (see _ping_clogged).
        self._clogged: dict[ServerConnection, asyncio.Task[None]] = {}

    def add(self, ws: ServerConnection) -> None:
        self._new.append(ws)

    @property
    def scheduled(self) -> int:
        """Connections on the schedule (closed ones until their turn comes)."""
        return len(self._new) + sum(len(conns) for _, conns in self._due)

    def start(self) -> None:
        self._last_tick = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        slow = [*self._failing.values(), *self._clogged.values()]
        tasks = [t for t in (self._task, *slow) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._due.clear()
        self._new = []

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.step)  # the schedule's clock, not synchronisation
            try:
                await self._tick(loop.time())
            except Exception:  # a bug here must not end every later keepalive
                log.exception("lobby keepalive failed")

    async def _tick(self, now: float) -> None:
        if self._new:  # everything added since the last tick: first ping by interval
            self._due.append((self._last_tick + self.interval - self.step, self._new))
            self._new = []
        self._last_tick = now
        again: list[ServerConnection] = []
        while self._due and self._due[0][0] <= now:
            _, entries = self._due.popleft()
            for start in range(0, len(entries), _CHUNK):
                await self._ping_chunk(entries[start : start + _CHUNK], again)
        if again:
            self._due.append((now + self.interval - self.step, again))

    async def _ping_chunk(
        self, conns: list[ServerConnection], again: list[ServerConnection]
    ) -> None:
        sent: list[ServerConnection] = []
        now = asyncio.get_running_loop().time()
        for ws in conns:
            if ws.state is not State.OPEN:
                continue  # closing or closed: it leaves the schedule
            again.append(ws)
            if ws in self._clogged:
                continue
            if _pending_pings(ws):  # still waiting for its pong: its timer fails it
                self._expire_one(ws, now)  # (a backstop, should that timer miss it)
                continue
            if not _can_ping(ws):
                self._ping_clogged(ws)
                continue
            try:
                await ws.ping()  # the pong future is websockets' (pending_pings)
            except ConnectionClosed:
                continue
            sent.append(ws)
        if sent:
            self.pings += len(sent)
            loop = asyncio.get_running_loop()
            loop.call_at(loop.time() + self.timeout, self._expire, sent)
        await asyncio.sleep(0)  # let the clients' traffic through between chunks

    def _expire(self, sent: list[ServerConnection]) -> None:
        now = asyncio.get_running_loop().time()
        for ws in sent:
            self._expire_one(ws, now)

    def _expire_one(self, ws: ServerConnection, now: float) -> None:
        # The loop may run a timer a clock tick early: 1 ms of slack, not a miss.
        late = _unanswered_for(ws, now) >= self.timeout - 1e-3
        if late and ws.state is State.OPEN and ws not in self._failing:
            self.timeouts += 1
            task = asyncio.create_task(_fail(ws))
            self._failing[ws] = task
            task.add_done_callback(lambda _: self._failing.pop(ws, None))

    def _ping_clogged(self, ws: ServerConnection) -> None:
        """A connection whose ping would wait in drain() (its peer is not reading)
        gets what websockets' own keepalive does, in a task of its own: ping (waiting
        for the buffer to drain first), then fail it if the pong misses the timeout."""
        task = asyncio.create_task(self._ping_and_wait(ws))
        self._clogged[ws] = task
        task.add_done_callback(lambda _: self._clogged.pop(ws, None))

    async def _ping_and_wait(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            pong = await ws.ping()
            self.pings += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await pong
            except TimeoutError:
                self.timeouts += 1
                await _fail(ws)


def _unanswered_for(ws: ServerConnection, now: float) -> float:
    """How long the connection's oldest unanswered ping has waited (0: none).

    websockets keeps the pings it awaits a pong for in ``pending_pings`` (ping id
    -> (future, send time)) and removes them when the pong comes; reading it here
    means no future of ours per connection. A pong answers every older ping too.
    """
    pending = _pending_pings(ws).values()
    return max((now - sent_at for _, sent_at in pending), default=0.0)


def _pending_pings(ws: ServerConnection) -> dict[bytes, tuple[asyncio.Future[float], float]]:
    """websockets' map of unanswered pings: ``pending_pings`` in websockets 17,
    ``pong_waiters`` in earlier releases (same shape); pyproject requires >= 17."""
    pings = getattr(ws, "pending_pings", None)
    if pings is None:
        pings = getattr(ws, "pong_waiters")  # noqa: B009 - absent from newer stubs
    return cast("dict[bytes, tuple[asyncio.Future[float], float]]", pings)


def _can_ping(ws: ServerConnection) -> bool:
    """True if a ping goes out without waiting in drain(): the write buffer is
    below its low-water mark (so writing is not paused) with room for the frame.

    Otherwise the ping waits in drain(), which the one keepalive task must not do
    for every other connection's sake: such a connection gets a task of its own.
    """
    transport = ws.transport
    low = transport.get_write_buffer_limits()[0]
    return transport.get_write_buffer_size() + _PING_FRAME_ROOM <= low


async def _fail(ws: ServerConnection) -> None:
    """What websockets' keepalive does on a missed pong: close 1011, then wait for
    the TCP connection to end (aborted after the connection's close timeout)."""
    with contextlib.suppress(ConnectionClosed):
        async with ws.send_context():
            ws.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
