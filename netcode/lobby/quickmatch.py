"""Quick-match queues (pure): players waiting to be grouped into a room.

One FIFO queue per key ``(game, size, topology)``. A queue is emptied into a
group the moment it holds ``size`` waiters, so at rest every queue holds fewer
than ``size``: nobody waits while a full group could be formed, and no group is
ever larger than its size. The lobby core is single-threaded, so "concurrent"
arrivals are simply processed one after another, each seeing the previous one's
effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from .fields import JsonObj, Rid

__all__ = ["QueueKey", "QuickMatchQueues", "Waiter"]

QueueKey: TypeAlias = tuple[str, int, str]  # game, size, topology


@dataclass(frozen=True, slots=True)
class Waiter:
    """One waiting connection; ``rid`` is echoed in its eventual ``room_joined``."""

    conn: int
    rid: Rid | None = None
    metadata: JsonObj = field(default_factory=dict)


class QuickMatchQueues:
    """The waiting queues, and which queue each connection is in (at most one)."""

    __slots__ = ("_key_of", "_queues")

    def __init__(self) -> None:
        self._queues: dict[QueueKey, list[Waiter]] = {}
        self._key_of: dict[int, QueueKey] = {}

    def __len__(self) -> int:
        return len(self._key_of)

    def __contains__(self, conn: object) -> bool:
        return conn in self._key_of

    def completes(self, key: QueueKey) -> bool:
        """Would one more waiter on ``key`` form a group?"""
        return len(self._queues.get(key, ())) + 1 >= key[1]

    def add(self, key: QueueKey, waiter: Waiter) -> list[Waiter] | None:
        """Queue ``waiter``; return the group (arrival order) if it is now complete."""
        if waiter.conn in self._key_of:
            raise ValueError(f"connection {waiter.conn} already waits")
        queue = self._queues.setdefault(key, [])
        queue.append(waiter)
        self._key_of[waiter.conn] = key
        if len(queue) < key[1]:
            return None
        del self._queues[key]
        for member in queue:
            del self._key_of[member.conn]
        return queue

    def remove(self, conn: int) -> tuple[QueueKey, tuple[Waiter, ...]] | None:
        """Take ``conn`` out of its queue: its key and who still waits there."""
        key = self._key_of.pop(conn, None)
        if key is None:
            return None
        queue = self._queues[key]
        queue[:] = [w for w in queue if w.conn != conn]
        if not queue:
            del self._queues[key]
        return key, tuple(queue)

    def waiting(self) -> dict[QueueKey, tuple[int, ...]]:
        """Every non-empty queue: key -> connections in arrival order."""
        return {key: tuple(w.conn for w in queue) for key, queue in self._queues.items()}

    def queue(self, key: QueueKey) -> tuple[Waiter, ...]:
        return tuple(self._queues.get(key, ()))
