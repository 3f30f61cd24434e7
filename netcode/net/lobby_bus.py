"""What lobby nodes share (a registry and a message bus) and the in-process version.

Several lobby processes serve one set of rooms (docs/LOBBY.md "Several nodes"):
every room lives on one *home* node; other nodes proxy their clients' frames to it.
:class:`LobbyBus` is everything a node needs from the shared store:

- node leases (a node that stops refreshing its lease is dead) and the node list;
- room homes: which node homes which room code (claimed atomically, so codes are
  unique across nodes, and adopted atomically, so exactly one node adopts a room);
- room snapshots (:mod:`netcode.lobby.cluster`) and public room summaries;
- one channel per node, for the frames proxied between nodes (:data:`BusMessage`).

:class:`MemoryBus` keeps all of it in one process (several ``LobbyServer`` in one
event loop share it: tests, and the reference the Redis version must match);
:class:`netcode.net.lobby_redis.RedisBus` keeps it in Redis. Every method may raise
:class:`netcode.errors.TransportError` when the store is unreachable.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import msgspec

from ..errors import DecodeError, TransportError

__all__ = [
    "Bounce",
    "BusMessage",
    "Deliver",
    "Frame",
    "Gone",
    "LobbyBus",
    "MemoryBus",
    "Open",
    "Shut",
    "decode_bus",
    "encode_bus",
]

# Receives one payload published to this node's channel.
BusHandler = Callable[[bytes], None]


# --- node-to-node messages (msgpack) ------------------------------------------------
# origin: the node holding the websocket; home: the node whose core runs its room.


class Open(msgspec.Struct, tag="open", array_like=True, frozen=True):
    """origin -> home: a websocket starts being served here; its first frame."""

    origin: str
    conn: int  # the connection's id on its origin node
    peer: str  # the peer id the origin's welcome gave it
    addr: str | None
    frame: bytes
    binary: bool = False


class Frame(msgspec.Struct, tag="frame", array_like=True, frozen=True):
    """origin -> home: the next frame of a proxied websocket."""

    origin: str
    conn: int
    frame: bytes
    binary: bool = False


class Gone(msgspec.Struct, tag="gone", array_like=True, frozen=True):
    """origin -> home: the websocket closed (reason as the core knows it)."""

    origin: str
    conn: int
    reason: str


class Deliver(msgspec.Struct, tag="out", array_like=True, frozen=True):
    """home -> origin: a server message (JSON text) for the websocket."""

    home: str
    conn: int
    frame: bytes


class Shut(msgspec.Struct, tag="shut", array_like=True, frozen=True):
    """home -> origin: close the websocket with this code."""

    home: str
    conn: int
    code: int
    reason: str


class Bounce(msgspec.Struct, tag="bounce", array_like=True, frozen=True):
    """home -> origin: this frame is not mine (the room is elsewhere): route it again.
    The home has already forgotten the connection."""

    home: str
    conn: int
    frame: bytes
    binary: bool = False


BusMessage = Open | Frame | Gone | Deliver | Shut | Bounce
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BusMessage)


def encode_bus(message: BusMessage) -> bytes:
    return _encoder.encode(message)


def decode_bus(payload: bytes) -> BusMessage:
    """:class:`DecodeError` for anything that is not one well-formed message."""
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"bad bus message: {exc}") from None


class LobbyBus(ABC):
    """The shared registry and bus of a lobby cluster (see the module docstring)."""

    # Called when this node's subscription broke (messages to it may be lost).
    on_lost: Callable[[], None] | None = None

    def lost(self) -> None:
        if self.on_lost is not None:
            self.on_lost()

    # -- messages -------------------------------------------------------------------

    @abstractmethod
    async def subscribe(self, node: str, handler: BusHandler) -> None:
        """Deliver what is published to ``node`` to ``handler`` (in order) from now on."""

    @abstractmethod
    async def unsubscribe(self, node: str) -> None: ...

    @abstractmethod
    async def publish(self, items: list[tuple[str, bytes]]) -> list[int]:
        """Publish ``(node, payload)`` pairs in order; receivers of each (0: nobody
        listens on that node's channel: it is gone)."""

    # -- nodes ----------------------------------------------------------------------

    @abstractmethod
    async def heartbeat(self, node: str, ttl_s: float) -> bool:
        """Register ``node`` and (re)start its lease of ``ttl_s``; False if the store
        did not know the node (first call, store restarted, or declared dead)."""

    @abstractmethod
    async def nodes(self) -> dict[str, bool]:
        """Every registered node -> whether its lease is current."""

    @abstractmethod
    async def forget_node(self, node: str) -> None:
        """Drop a dead node whose rooms have all been adopted."""

    # -- rooms ----------------------------------------------------------------------

    @abstractmethod
    async def claim(self, code: str, node: str) -> bool:
        """Make ``node`` the home of a new code; False if any node has it already."""

    @abstractmethod
    async def keep(self, code: str, node: str) -> bool:
        """Re-register a room ``node`` homes (after the store restarted); False if
        another node homes it now."""

    @abstractmethod
    async def adopt(self, code: str, dead: str, node: str) -> bool:
        """Move ``code``'s home from ``dead`` to ``node`` if it is still ``dead``'s."""

    @abstractmethod
    async def home(self, code: str) -> str | None: ...

    @abstractmethod
    async def rooms_of(self, node: str) -> list[str]: ...

    @abstractmethod
    async def release(self, code: str, node: str) -> None:
        """The room is gone: forget its home (if still ``node``'s) and snapshot."""

    @abstractmethod
    async def save(self, snapshots: dict[str, bytes], node: str) -> list[str]:
        """Store the snapshots of rooms ``node`` homes, re-registering each home as
        :meth:`keep` does (a store that restarted since its claim forgot it); the
        codes another node homes now are not written, and returned."""

    @abstractmethod
    async def load(self, code: str) -> bytes | None: ...

    @abstractmethod
    async def put_summaries(self, node: str, data: bytes, ttl_s: float) -> None: ...

    @abstractmethod
    async def summaries(self) -> dict[str, bytes]:
        """node -> its last public room summaries (expired ones left out)."""

    @abstractmethod
    async def close(self) -> None: ...


class MemoryBus(LobbyBus):
    """The whole cluster store in one process: share one instance between the
    ``LobbyServer``\\ s of an event loop (``LobbyServer(config, bus=bus)``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._handlers: dict[str, BusHandler] = {}
        self._leases: dict[str, float] = {}  # node -> lease end
        self._homes: dict[str, str] = {}
        self._owned: dict[str, set[str]] = {}
        self._snapshots: dict[str, bytes] = {}
        self._summaries: dict[str, tuple[float, bytes]] = {}
        self.down = False  # tests: the store is unreachable while set

    def _check(self) -> None:
        if self.down:
            raise TransportError("lobby bus unreachable")

    async def subscribe(self, node: str, handler: BusHandler) -> None:
        self._check()
        self._handlers[node] = handler

    async def unsubscribe(self, node: str) -> None:
        self._handlers.pop(node, None)

    async def publish(self, items: list[tuple[str, bytes]]) -> list[int]:
        self._check()
        loop = asyncio.get_running_loop()
        counts = []
        for node, payload in items:
            handler = self._handlers.get(node)
            if handler is not None:
                loop.call_soon(handler, payload)  # asynchronous, in order, like pub/sub
            counts.append(0 if handler is None else 1)
        return counts

    async def heartbeat(self, node: str, ttl_s: float) -> bool:
        self._check()
        known = node in self._leases
        self._leases[node] = self._clock() + ttl_s
        return known

    async def nodes(self) -> dict[str, bool]:
        self._check()
        now = self._clock()
        return {node: end > now for node, end in self._leases.items()}

    async def forget_node(self, node: str) -> None:
        self._check()
        self._leases.pop(node, None)
        self._owned.pop(node, None)

    async def claim(self, code: str, node: str) -> bool:
        self._check()
        if code in self._homes:
            return False
        self._homes[code] = node
        self._owned.setdefault(node, set()).add(code)
        return True

    async def keep(self, code: str, node: str) -> bool:
        self._check()
        if self._homes.setdefault(code, node) != node:
            return False
        self._owned.setdefault(node, set()).add(code)
        return True

    async def adopt(self, code: str, dead: str, node: str) -> bool:
        self._check()
        if self._homes.get(code) != dead:
            return False
        self._homes[code] = node
        self._owned.get(dead, set()).discard(code)
        self._owned.setdefault(node, set()).add(code)
        return True

    async def home(self, code: str) -> str | None:
        self._check()
        return self._homes.get(code)

    async def rooms_of(self, node: str) -> list[str]:
        self._check()
        return sorted(self._owned.get(node, ()))

    async def release(self, code: str, node: str) -> None:
        self._check()
        if self._homes.get(code) == node:
            del self._homes[code]
            self._snapshots.pop(code, None)
        self._owned.get(node, set()).discard(code)

    async def save(self, snapshots: dict[str, bytes], node: str) -> list[str]:
        self._check()
        lost = []
        for code, data in snapshots.items():
            if self._homes.setdefault(code, node) != node:
                lost.append(code)
                continue
            self._owned.setdefault(node, set()).add(code)
            self._snapshots[code] = data
        return lost

    async def load(self, code: str) -> bytes | None:
        self._check()
        return self._snapshots.get(code)

    async def put_summaries(self, node: str, data: bytes, ttl_s: float) -> None:
        self._check()
        self._summaries[node] = (self._clock() + ttl_s, data)

    async def summaries(self) -> dict[str, bytes]:
        self._check()
        now = self._clock()
        return {n: data for n, (end, data) in self._summaries.items() if end > now}

    def restart(self) -> None:
        """Tests: lose every key, as a Redis without persistence does on a restart."""
        for table in (self._leases, self._homes, self._owned, self._snapshots, self._summaries):
            table.clear()

    async def close(self) -> None:
        return None
