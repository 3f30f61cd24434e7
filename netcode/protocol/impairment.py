"""Pure, seeded network impairment model: loss, latency, jitter, reorder, duplication.

The network conditioner (:mod:`netcode.net.conditioner`) and the benchmarks'
UDP path feed every datagram through this model. It only *decides*; it never
sleeps or schedules. Time is a parameter (seconds, any monotonic origin), and
all randomness comes from the :class:`random.Random` it is given, so a seed
reproduces the exact drop/delay pattern.

Per datagram, :meth:`ImpairmentModel.decide` draws the same five random numbers
whatever the conditions are (loss, jitter, reorder, hold, duplicate), so changing the
latency does not change *which* packets are lost under a given seed.

Ordering rule (why the ``floor``): a real link with jitter still delivers in
order; only reordering reorders. So an in-order datagram is delivered at
``max(now + latency ± jitter, previous in-order delivery)``: delivery times per
direction are monotone unless ``reorder`` fires. A reordered datagram is held
back by an extra :func:`reorder_hold` so that datagrams sent after it overtake
it; it does not move the floor.

:class:`DelayQueue` is the pure half of the scheduler: the I/O layer pushes
decided deliveries, asks :meth:`DelayQueue.next_deadline` when to wake up and
pops what is due. Ties pop in push order, which ``loop.call_later`` alone would
not guarantee.
"""

from __future__ import annotations

import enum
import heapq
import random
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from ..config import NetworkConditions
from ..errors import ConfigError

__all__ = [
    "KEEP",
    "REORDER_MIN_HOLD_S",
    "DelayQueue",
    "Impairment",
    "ImpairmentCounters",
    "ImpairmentModel",
    "Keep",
    "check_conditions",
    "max_delay",
    "reorder_hold",
]


class Keep(enum.Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


KEEP = Keep.KEEP
"""Sentinel for ``set_conditions``: leave this direction's conditions as they are."""

# A reordered datagram waits at least this much longer than it would have, so
# that a datagram sent one 60 Hz tick later (16.7 ms) can overtake it.
REORDER_MIN_HOLD_S = 0.020

T = TypeVar("T")


def check_conditions(conditions: object) -> NetworkConditions:
    """``conditions`` if it is a :class:`NetworkConditions`, else :class:`ConfigError`.

    Called where conditions enter (constructors, run-time changes), so a wrong
    type fails at the call that passed it, not in a timer callback later.
    """
    if not isinstance(conditions, NetworkConditions):
        raise ConfigError(
            f"conditions must be a NetworkConditions, got {type(conditions).__name__}"
        )
    return conditions


def reorder_hold(conditions: NetworkConditions) -> float:
    """Upper bound of the extra hold (seconds) given to a reordered datagram."""
    return 2.0 * max(REORDER_MIN_HOLD_S, conditions.jitter_ms / 1000.0)


def max_delay(conditions: NetworkConditions) -> float:
    """Upper bound (seconds) of ``delivery - now`` for a datagram decided on its own.

    The in-order floor can push a datagram later than this only when an earlier
    datagram was decided under larger (since changed) conditions.
    """
    base = (conditions.latency_ms + conditions.jitter_ms) / 1000.0
    return base + reorder_hold(conditions)


@dataclass(slots=True)
class ImpairmentCounters:
    """What the model did, per direction. ``bytes`` counts datagrams offered."""

    offered: int = 0
    dropped: int = 0
    delayed: int = 0
    duplicated: int = 0
    reordered: int = 0
    bytes: int = 0

    def snapshot(self) -> ImpairmentCounters:
        """A copy that later counting does not change."""
        return replace(self)


class ImpairmentModel:
    """Decides the fate of each datagram of one direction of one link."""

    def __init__(self, conditions: NetworkConditions, rng: random.Random | None = None) -> None:
        self._conditions = check_conditions(conditions)
        self._rng = rng if rng is not None else random.Random(conditions.seed)
        self._floor = float("-inf")  # latest in-order delivery time so far
        self.counters = ImpairmentCounters()

    @property
    def conditions(self) -> NetworkConditions:
        return self._conditions

    def set_conditions(
        self, conditions: NetworkConditions, rng: random.Random | None = None
    ) -> None:
        """Change conditions at run time; the in-order floor carries on.

        The random stream carries on too, unless a new ``rng`` is given.
        """
        self._conditions = check_conditions(conditions)
        if rng is not None:
            self._rng = rng

    def decide(self, now: float, size: int = 0) -> tuple[float, ...]:
        """Delivery times (absolute, seconds) for a datagram offered at ``now``.

        Empty tuple: dropped. Two equal entries: duplicated; the copy arrives
        right behind the original (a gap would let bursts of duplicates push
        the in-order floor ever later).
        """
        c = self._conditions
        u_loss, u_jitter, u_reorder, u_hold, u_dup = (self._rng.random() for _ in range(5))
        counters = self.counters
        counters.offered += 1
        counters.bytes += size
        if u_loss < c.loss:
            counters.dropped += 1
            return ()
        jitter = (2.0 * u_jitter - 1.0) * c.jitter_ms / 1000.0
        base = now + max(0.0, c.latency_ms / 1000.0 + jitter)
        in_order = u_reorder >= c.reorder
        if in_order:
            first = max(base, self._floor)
            self._floor = first
        else:
            counters.reordered += 1
            first = base + reorder_hold(c) * (0.5 + 0.5 * u_hold)
        if first > now:
            counters.delayed += 1
        if u_dup >= c.duplicate:
            return (first,)
        counters.duplicated += 1
        return (first, first)


@dataclass(slots=True)
class DelayQueue(Generic[T]):
    """Items due at given times; pops in (time, push order)."""

    _heap: list[tuple[float, int, T]] = field(default_factory=list)
    _counter: int = 0

    def push(self, at: float, item: T) -> None:
        heapq.heappush(self._heap, (at, self._counter, item))
        self._counter += 1

    def pop_due(self, now: float) -> list[T]:
        due: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        return due

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)


class Impairment(Generic[T]):
    """Model + queue: ``offer`` datagrams, then ``pop_due`` what the network delivers.

    A clean link with nothing queued passes datagrams straight through
    (``offer`` returns them in ``immediate``), so a conditioner left attached
    with clean conditions costs one comparison per datagram.
    """

    def __init__(self, conditions: NetworkConditions, rng: random.Random | None = None) -> None:
        self.model = ImpairmentModel(conditions, rng)
        self.queue: DelayQueue[T] = DelayQueue()

    def offer(self, item: T, size: int, now: float) -> list[T]:
        """Offer one datagram; returns the copies to deliver right now (in order)."""
        if self.model.conditions.is_clean and not self.queue:
            counters = self.model.counters
            counters.offered += 1
            counters.bytes += size
            return [item]
        for at in self.model.decide(now, size):
            self.queue.push(at, item)
        return self.queue.pop_due(now)

    def pop_due(self, now: float) -> list[T]:
        return self.queue.pop_due(now)

    def next_deadline(self) -> float | None:
        return self.queue.next_deadline()
