"""The session's event queue: bounded per peer, safe to poll from another thread.

What the game has not polled yet is bounded per remote peer:

* state (``StateReceived``/``SnapshotReceived``, and ``StatsUpdated``) coalesces: at most
  ``max_states`` per peer wait; a newer one makes the oldest queued one of that
  peer drop (newest wins, as on the wire);
* every other event of a peer counts against ``max_events``, and received
  events' encoded bytes against ``max_bytes``; the push that goes over either
  is refused and reported, and the session disconnects that peer
  (``PeerLost(reason="overflow")``): a reliable event cannot be dropped
  silently, and memory must not grow without bound.

Dropped state is removed lazily (skipped at pop time) and the deque is
compacted when skipped entries outnumber live ones, so memory stays within
twice the caps and every operation is amortized O(1).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Final

from ..events import Event, EventReceived, SnapshotReceived, StateReceived, StatsUpdated

__all__ = ["EventQueue"]

# Newest-wins events: a newer one makes the oldest queued one of its peer redundant.
_STATE: Final = (StateReceived, SnapshotReceived, StatsUpdated)
# Compact once this many dropped entries linger (and they outnumber live ones).
_COMPACT_MIN: Final = 64


class EventQueue:
    """FIFO of events with per-peer caps; ``push`` from the loop, ``pop*`` from any thread."""

    def __init__(self, max_states: int, max_events: int, max_bytes: int = 1 << 62) -> None:
        self._max_states = max_states
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._bytes: dict[str, int] = {}  # encoded bytes of queued EventReceived per peer
        self._deque: deque[Event] = deque()
        self._lock = threading.Lock()
        self._states: dict[str, int] = {}  # live queued state events per peer
        self._others: dict[str, int] = {}  # live queued other events per peer
        self._skip: dict[str, int] = {}  # oldest queued state events per peer to drop
        self._dead = 0  # entries in the deque that are dropped state
        self.coalesced = 0  # state events dropped because newer ones queued behind

    def __len__(self) -> int:
        return len(self._deque) - self._dead

    def push(self, event: Event) -> str | None:
        """Queue ``event``; returns the peer id whose event cap it broke (not queued)."""
        peer = event.peer_id
        with self._lock:
            if isinstance(event, _STATE):
                n = self._states.get(peer, 0) + 1
                if n > self._max_states:
                    self._skip[peer] = self._skip.get(peer, 0) + 1
                    self._dead += 1
                    self.coalesced += 1
                    n -= 1
                self._states[peer] = n
            elif isinstance(event, EventReceived):
                n = self._others.get(peer, 0) + 1
                size = self._bytes.get(peer, 0) + event.size
                if n > self._max_events or size > self._max_bytes:
                    return peer
                self._others[peer] = n
                self._bytes[peer] = size
            self._deque.append(event)
            if self._dead >= _COMPACT_MIN and self._dead * 2 > len(self._deque):
                self._compact()
        return None

    def pop(self) -> Event | None:
        """The oldest live event, or None if there is none."""
        with self._lock:
            while self._deque:
                event = self._deque.popleft()
                if self._account(event):
                    return event
        return None

    def pop_all(self) -> list[Event]:
        """Every live event, oldest first."""
        with self._lock:
            events, self._deque = self._deque, deque()
            out = [e for e in events if self._account(e)]
        return out

    def _account(self, event: Event) -> bool:
        """Bookkeeping for an event leaving the deque; False if it was dropped state."""
        peer = event.peer_id
        if isinstance(event, _STATE):
            skip = self._skip.get(peer, 0)
            if skip:
                _dec(self._skip, peer)
                self._dead -= 1
                return False
            _dec(self._states, peer)
        elif isinstance(event, EventReceived):
            _dec(self._others, peer)
            _dec(self._bytes, peer, event.size)
        return True

    def _compact(self) -> None:
        """Drop skipped state entries from the deque (lock held)."""
        skip = self._skip
        kept: deque[Event] = deque()
        for event in self._deque:
            if isinstance(event, _STATE) and skip.get(event.peer_id, 0):
                _dec(skip, event.peer_id)
                continue
            kept.append(event)
        self._deque = kept
        self._dead = 0


def _dec(counts: dict[str, int], key: str, by: int = 1) -> None:
    n = counts.get(key, 0) - by
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)
