"""A hostile peer for the adversarial tests and ``python -m benchmarks.adversarial``.

The rogue joins a lobby room like any player (:class:`netcode.net.signaling.SignalingClient`),
negotiates an aiortc connection the way netcode does (negotiated channels ``state``
id 1 unordered ``maxRetransmits=0`` and ``events`` id 2 reliable ordered; the
newcomer offers; host candidates pinned to 127.0.0.1, ``iceServers=[]``) and then
writes RAW bytes to its channels: valid-looking envelopes built with msgpack by
hand (docs/PROTOCOL.md section 2, docs/STATE_SYNC.md section 4), never through
``netcode.protocol.wire``, which would refuse most of them.

Between attacks it behaves: it answers the victim's PINGs and pings back, so the
victim keeps the link up until an attack gets it disconnected.

Used in-process by ``tests/net/test_adversarial.py`` (:class:`Rogue`, :data:`ATTACKS`)
and as a child process by the benchmark (``python -m benchmarks._rogue``: one JSON
command per line on stdin, one JSON reply per line on stdout).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from benchmarks._child import serve_json_lines
from netcode.lobby.messages import PeerJoinedMsg, PeerLeftMsg, SignalMsg
from netcode.net.rtc import pinned_host_addresses
from netcode.net.signaling import SignalingClient
from netcode.protocol import wire

__all__ = [
    "ATTACKS",
    "FLOODS",
    "AttackResult",
    "Rogue",
    "RogueLink",
    "bye",
    "chunked",
    "event",
    "fat_fields",
    "nested_bomb",
    "ping",
    "pong",
    "stamped",
]

LOOPBACK = "127.0.0.1"
STATE, EVENTS = "state", "events"
MAX_PACKET = 65_536
CHUNK_DATA = MAX_PACKET - 19  # docs/PROTOCOL.md 2.4: worst-case CHUNK overhead
# The rogue never buffers more than this per channel: a victim that stops reading
# must not turn the attacker's own process into the thing that runs out of memory.
ROGUE_BUFFER_CAP = 4 << 20
TICK_S = 0.005  # pacing granularity of the floods (load generation, not synchronisation)

_U16, _U32 = 0xFFFF, 0xFFFF_FFFF

# --------------------------------------------------------------------------- raw packets


def _pk(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def _now_us() -> int:
    return wire.timestamp_us(time.monotonic())


def ping(sent_us: int) -> bytes:
    return _pk([1, 4, sent_us & _U32])


def pong(echo_us: int, sent_us: int) -> bytes:
    return _pk([1, 5, echo_us & _U32, sent_us & _U32])


def bye(reason: str = "left") -> bytes:
    return _pk([1, 6, reason])


def event(payload: bytes) -> bytes:
    """An EVENT envelope around an already msgpack-encoded payload."""
    return b"\x93\x01\x02" + payload


def stamped(kind: int, seq: int, ack: int, ack_bits: int, payload: bytes | None) -> bytes:
    """A STATE (1) / SNAPSHOT (3) / ACK (8) envelope; ``payload`` is raw msgpack bytes."""
    head = b"".join(_pk(v) for v in (1, kind, seq & _U16, ack & _U16, ack_bits, _now_us()))
    if payload is None:
        return b"\x96" + head
    return b"\x97" + head + payload


def chunked(envelope: bytes, msg_id: int) -> list[bytes]:
    """CHUNK packets carrying ``envelope`` (index 0..count-1, one msg_id)."""
    parts = [envelope[i : i + CHUNK_DATA] for i in range(0, len(envelope), CHUNK_DATA)]
    return [_pk([1, 7, msg_id & _U32, i, len(parts), p]) for i, p in enumerate(parts)]


def nested_bomb(size: int) -> bytes:
    """msgpack of about ``size`` bytes that is nearly all empty maps (1 byte each).

    An array of arrays of ``{}``: within the default container limit (4,096) and
    depth 2, so only a decoder that bounds *objects per byte* refuses it. 61 KB
    decodes into ~60,000 dicts (~4.5 MB of Python objects).
    """
    if size <= 3 + 4096 * 16:
        inner = 15  # fixarray: one header byte per row
        count = max(1, (size - 3) // (inner + 1))
    else:
        count = 4096  # the widest array the default limits allow
        inner = max(16, (size - 3) // count - 3)  # array16: three header bytes per row
    return _array_header(count) + _pk([{}] * inner) * count


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n <= _U16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def fat_fields(names: Iterable[str], value: Any = 0) -> bytes:
    """msgpack of ``{name: value}`` for every name (one entity's fields)."""
    return _pk(dict.fromkeys(names, value))


# --------------------------------------------------------------------------- one link


@dataclass
class _Victim:
    """What the rogue learned from the victim's packets on one link."""

    newest_seq: int | None = None  # newest STATE/SNAPSHOT/ACK seq of the victim
    acked: int | None = None  # newest of OUR seqs the victim accepted (its ack field)
    received: Counter[str] = field(default_factory=Counter)


class RogueLink:
    """One aiortc connection from the rogue to one victim, with raw send helpers."""

    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channels: dict[str, RTCDataChannel] = {
            STATE: self.pc.createDataChannel(
                STATE, ordered=False, maxRetransmits=0, negotiated=True, id=1
            ),
            EVENTS: self.pc.createDataChannel(EVENTS, ordered=True, negotiated=True, id=2),
        }
        self.victim = _Victim()
        self.seq = 0
        self.msg_ids = itertools.count()
        self.sent: Counter[str] = Counter()
        self.held = 0  # packets not sent because our own buffer was full
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.answered = asyncio.Event()
        self.answer_pings = True
        self._keepalive: asyncio.Task[None] | None = None
        for ch in self.channels.values():
            ch.on("open", self._on_open)
            ch.on("close", self.closed.set)
        self.channels[STATE].on("message", self._on_state)
        self.pc.on("connectionstatechange", self._on_pc_state)

    @property
    def open(self) -> bool:
        return not self.closed.is_set() and all(
            ch.readyState == "open" for ch in self.channels.values()
        )

    def _on_open(self) -> None:
        if all(ch.readyState == "open" for ch in self.channels.values()):
            self.opened.set()

    def _on_pc_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.closed.set()

    def _on_state(self, data: bytes | str) -> None:
        try:
            msg = wire.parse(data if isinstance(data, bytes) else b"")
        except Exception:  # the victim is trusted less than nothing here: just count
            self.victim.received["bad"] += 1
            return
        self.victim.received[type(msg).__name__] += 1
        if isinstance(msg, wire.State | wire.Snapshot | wire.Ack):
            self.victim.newest_seq = msg.seq
            if msg.ack_bits & 1:
                self.victim.acked = msg.ack
        elif isinstance(msg, wire.Ping) and self.answer_pings:
            self.send(STATE, pong(msg.sent_us, _now_us()))

    # -- sending ---------------------------------------------------------------------

    def send(self, label: str, data: bytes) -> bool:
        """Write raw bytes; False if the channel is gone or our own buffer is full."""
        ch = self.channels[label]
        if ch.readyState != "open":
            return False
        if ch.bufferedAmount > ROGUE_BUFFER_CAP:
            self.held += 1
            return False
        try:
            ch.send(data)
        except Exception:  # closed under us mid-attack: that is the expected ending
            return False
        self.sent[label] += 1
        return True

    def next_stamped(self, kind: int, payload: bytes | None) -> bytes:
        """A STATE/SNAPSHOT/ACK with our next seq, acking the victim's newest packet."""
        seq = self.seq
        self.seq = (self.seq + 1) & _U16
        ack = self.victim.newest_seq
        return stamped(kind, seq, ack or 0, 0 if ack is None else 1, payload)

    def start_keepalive(self, interval_s: float = 0.25) -> None:
        """PING the victim like a normal peer would, so an idle rogue is not timed out."""

        async def beat() -> None:
            while self.open:
                self.send(STATE, ping(_now_us()))
                await asyncio.sleep(interval_s)

        if self._keepalive is None:
            self._keepalive = asyncio.ensure_future(beat())

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        self.closed.set()
        with contextlib.suppress(Exception):
            await self.pc.close()


# --------------------------------------------------------------------------- lobby side


class Rogue:
    """A lobby client that connects raw aiortc links to chosen room members."""

    def __init__(self, client: SignalingClient, url: str) -> None:
        self.client = client
        self.url = url
        self.links: dict[str, RogueLink] = {}
        self.room: str | None = None
        self.room_peers: tuple[str, ...] = ()
        self._router = asyncio.ensure_future(self._route())

    @classmethod
    async def join(cls, url: str, room: str, timeout: float = 10.0) -> Rogue:  # noqa: ASYNC109
        client = await SignalingClient.connect(url, timeout=timeout)
        rogue = cls(client, url)
        await rogue.enter(room)
        return rogue

    @property
    def peer_id(self) -> str:
        return self.client.peer_id

    async def enter(self, room: str) -> None:
        info = await self.client.join_room(room)
        self.room, self.room_peers = info.room, info.peers

    async def leave(self) -> None:
        """Leave the room (the lobby tells everyone ``peer_left``); links are closed."""
        await self.close_links()
        with contextlib.suppress(Exception):
            await self.client.leave_room()
        self.room = None

    async def _route(self) -> None:
        with contextlib.suppress(Exception):
            async for msg in self.client:
                if isinstance(msg, SignalMsg) and isinstance(msg.data, dict):
                    link = self.links.get(msg.sender)
                    if link is not None:
                        await self._on_signal(link, msg.kind, msg.data)
                elif isinstance(msg, PeerJoinedMsg | PeerLeftMsg):
                    pass  # the rogue only talks to the peers it chose

    async def _on_signal(self, link: RogueLink, kind: str, data: dict[str, Any]) -> None:
        try:
            if kind == "answer" and isinstance(data.get("sdp"), str):
                desc = RTCSessionDescription(sdp=data["sdp"], type="answer")
                await link.pc.setRemoteDescription(desc)
                link.answered.set()
            elif kind == "end_of_candidates" and link.answered.is_set():
                await link.pc.addIceCandidate(None)
        except Exception:  # a stale answer for a link we already replaced
            link.closed.set()

    async def connect(self, peer_id: str, timeout: float = 10.0) -> RogueLink:  # noqa: ASYNC109
        """Offer to ``peer_id`` (we are the newcomer) and wait until both channels open."""
        old = self.links.pop(peer_id, None)
        if old is not None:
            await old.close()
        link = RogueLink(peer_id)
        self.links[peer_id] = link
        with pinned_host_addresses((LOOPBACK,)):
            await link.pc.setLocalDescription(await link.pc.createOffer())
        local = link.pc.localDescription
        await self.client.send_signal(peer_id, "offer", {"type": local.type, "sdp": local.sdp})
        await self.client.send_signal(peer_id, "end_of_candidates", {})
        async with asyncio.timeout(timeout):
            await link.opened.wait()
        link.start_keepalive()
        return link

    async def goodbye(self, peer_id: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Send BYE on both channels and wait until the victim closed the connection."""
        link = self.links.pop(peer_id)
        link.send(STATE, bye())
        link.send(EVENTS, bye())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await link.closed.wait()
        await link.close()

    async def close_links(self) -> None:
        links, self.links = list(self.links.values()), {}
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)

    async def close(self) -> None:
        await self.close_links()
        self._router.cancel()
        with contextlib.suppress(Exception):
            await self.client.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._router


# --------------------------------------------------------------------------- attacks


@dataclass
class AttackResult:
    """What the rogue did: packets and bytes written, and whether the victim cut it off."""

    name: str
    packets: int = 0
    bytes: int = 0
    held: int = 0  # not written: our own send buffer was full
    disconnected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "packets": self.packets,
            "bytes": self.bytes,
            "held": self.held,
            "disconnected": self.disconnected,
            **self.extra,
        }


Maker = Callable[[int], tuple[str, bytes]]
"""``make(i) -> (channel label, raw packet)`` for the i-th packet of a flood."""


async def flood(
    link: RogueLink, name: str, make: Maker, rate: float, seconds: float
) -> AttackResult:
    """Write ``make(i)`` at ``rate`` packets/s for ``seconds`` or until the link closes."""
    result = AttackResult(name)
    loop = asyncio.get_running_loop()
    start, held0 = loop.time(), link.held
    while link.open and (elapsed := loop.time() - start) < seconds:
        due = min(int(elapsed * rate) + 1, result.packets + max(1, int(rate * 0.05)))
        while result.packets < due and link.open:
            label, data = make(result.packets)
            if link.send(label, data):
                result.bytes += len(data)
            result.packets += 1
        await asyncio.sleep(TICK_S)
    result.held = link.held - held0
    result.disconnected = link.closed.is_set()
    return result


async def _baseline(link: RogueLink, *widths: int) -> int | None:
    """A full snapshot of entity 1 the victim acked (its seq), for deltas to build on.

    Tries each entity width (fields) in turn, widest first, for about a second at
    10 fulls/s (under the default byte budget even at 40 KB each): a victim that
    bounds fields per entity never acks a 4,000-field full. None if none was acked.
    """
    for width in widths:
        entity = fat_fields(f"f{i:07d}" for i in range(width))
        sent: set[int] = set()
        for _ in range(12):
            sent.add(link.seq)
            link.send(STATE, link.next_stamped(3, b"\x81\xa1e\x81\x01" + entity))
            await asyncio.sleep(0.1)  # the victim acks on its next heartbeat (250 ms)
            if link.victim.acked in sent:
                return link.victim.acked
            if not link.open:
                return None
    return None


def _delta(baseline: int, fields: bytes | None, removals: bytes | None) -> bytes:
    """SNAPSHOT delta payload ``{"b": B, "e": {1: fields}, "x": {1: removals}}``."""
    e = b"\x80" if fields is None else b"\x81\x01" + fields
    parts = [b"\xa1b" + _pk(baseline), b"\xa1e" + e]
    if removals is not None:
        parts.append(b"\xa1x\x81\x01" + removals)
    return bytes([0x80 | len(parts)]) + b"".join(parts)


async def fat_delta(link: RogueLink, seconds: float, rate: float = 20.0) -> AttackResult:
    """Attack 1: deltas each adding ~4,000 new fields (~40 KB) to one entity.

    Each delta builds on the newest snapshot the victim acked, so an accepting
    victim's entity grows by 4,000 fields per acked step (and its ring keeps copies).
    """
    base = await _baseline(link, 1) or 0
    names = itertools.count()

    def make(_i: int) -> tuple[str, bytes]:
        fields = fat_fields(f"{next(names):08x}" for _ in range(4000))
        b = link.victim.acked if link.victim.acked is not None else base
        return STATE, link.next_stamped(3, _delta(b, fields, None))

    return await flood(link, "fat_delta", make, rate, seconds)


async def phantom_removal(link: RogueLink, seconds: float, rate: float = 20.0) -> AttackResult:
    """Attack 2: deltas whose removal list names 3,500 fields that don't exist.

    The baseline entity has 4,000 fields if the victim accepts that (a decoder that
    checks each field against the removal *list* then does 14 million string
    comparisons per packet), else the widest it accepts.
    """
    base = await _baseline(link, 4000, 200, 1) or 0
    removals = _pk([f"nope{i:06d}" for i in range(3500)])

    def make(_i: int) -> tuple[str, bytes]:
        return STATE, link.next_stamped(3, _delta(base, None, removals))

    return await flood(link, "phantom_removal", make, rate, seconds)


BOMB_61K = 61_000


async def nested_state(link: RogueLink, seconds: float, rate: float = 25.0) -> AttackResult:
    """Attack 3a: ~61 KB STATE payloads of nested empty containers."""
    bomb = nested_bomb(BOMB_61K)
    return await flood(
        link, "nested_state", lambda _i: (STATE, link.next_stamped(1, bomb)), rate, seconds
    )


async def nested_event(link: RogueLink, seconds: float, rate: float = 25.0) -> AttackResult:
    """Attack 3b: ~61 KB EVENTs of nested empty containers."""
    packet = event(nested_bomb(BOMB_61K))
    return await flood(link, "nested_event", lambda _i: (EVENTS, packet), rate, seconds)


async def nested_chunked(link: RogueLink, seconds: float, rate: float = 2.0) -> AttackResult:
    """Attack 3c: 1 MiB chunked EVENTs of nested empty containers (``rate`` events/s)."""
    envelope = event(nested_bomb((1 << 20) - 64))
    count = len(chunked(envelope, 0))

    def make(i: int) -> tuple[str, bytes]:
        msg_id, index = divmod(i, count)
        data = envelope[index * CHUNK_DATA : (index + 1) * CHUNK_DATA]
        return EVENTS, _pk([1, 7, msg_id & _U32, index, count, data])

    result = await flood(link, "nested_chunked", make, rate * count, seconds)
    result.extra["events"] = result.packets // count
    return result


async def ping_flood(link: RogueLink, seconds: float, rate: float = 5000.0) -> AttackResult:
    """Attack 4: PINGs at ``rate``/s (every one asks for a PONG)."""
    return await flood(link, "ping_flood", lambda _i: (STATE, ping(_now_us())), rate, seconds)


async def event_flood(link: RogueLink, seconds: float, rate: float = 5000.0) -> AttackResult:
    """Attack 5: small reliable EVENTs at ``rate``/s."""
    return await flood(
        link, "event_flood", lambda i: (EVENTS, event(_pk({"n": i, "chat": "spam"}))), rate, seconds
    )


async def slow_event_flood(link: RogueLink, seconds: float, rate: float = 500.0) -> AttackResult:
    """Attack 6 (rogue side): events within the rate budget; the victim stops polling."""
    result = await event_flood(link, seconds, rate)
    result.name = "nopoll_flood"
    return result


async def forged_pong(link: RogueLink, seconds: float, rate: float = 20.0) -> AttackResult:
    """Attack 7: PONGs echoing times the victim never sent (~36 min in its past)."""
    return await flood(
        link,
        "forged_pong",
        lambda _i: (STATE, pong((_now_us() - 2_146_906_000) & _U32, _now_us())),
        rate,
        seconds,
    )


class Attack(Protocol):
    """``await attack(link, seconds, rate=...)``: one attack on one connected link."""

    def __call__(
        self, link: RogueLink, seconds: float, rate: float = ...
    ) -> Awaitable[AttackResult]: ...


ATTACKS: dict[str, Attack] = {
    "fat_delta": fat_delta,
    "phantom_removal": phantom_removal,
    "nested_state": nested_state,
    "nested_event": nested_event,
    "nested_chunked": nested_chunked,
    "ping_flood": ping_flood,
    "event_flood": event_flood,
    "nopoll_flood": slow_event_flood,
    "forged_pong": forged_pong,
}
"""Attacks on one connected link, by name: ``await ATTACKS[name](link, seconds)``."""

FLOODS = ("ping_flood", "event_flood")
"""Attacks that exceed the default per-peer budget: the victim should cut the rogue off."""


async def churn(rogue: Rogue, victim: str, cycles: int, *, rejoin: bool) -> AttackResult:
    """Attack 8: ``cycles`` x (end the link, connect again); ends connected.

    ``rejoin=False``: BYE on the data channels, then a new offer under the same lobby
    id; ``rejoin=True``: leave the room and join it again (the victim sees
    ``peer_left`` then ``peer_joined``), then offer.
    """
    result = AttackResult("churn_rejoin" if rejoin else "churn_bye")
    room = rogue.room
    assert room is not None
    for _ in range(cycles):
        if rejoin:
            await rogue.leave()
            await rogue.enter(room)
        elif victim in rogue.links:
            await rogue.goodbye(victim)
        await rogue.connect(victim)
        result.packets += 1
    return result


# --------------------------------------------------------------------------- child process


class _Commands:
    """``python -m benchmarks._rogue``: the rogue driven over JSON lines."""

    def __init__(self) -> None:
        self.rogue: Rogue | None = None

    def _link(self, victim: str) -> RogueLink:
        assert self.rogue is not None
        link = self.rogue.links.get(victim)
        if link is None or not link.open:
            raise RuntimeError("not connected")
        return link

    async def cmd_join(self, url: str, room: str, victim: str) -> dict[str, Any]:
        """Join (or rejoin under a new id after a disconnect) and connect to ``victim``."""
        if self.rogue is not None:
            await self.rogue.close()
        self.rogue = await Rogue.join(url, room)
        await self.rogue.connect(victim)
        return {"peer_id": self.rogue.peer_id}

    async def cmd_attack(self, name: str, victim: str, seconds: float, **kw: Any) -> dict[str, Any]:
        link = self._link(victim)
        result = await ATTACKS[name](link, seconds, **kw)
        return result.as_dict()

    async def cmd_churn(self, victim: str, cycles: int, rejoin: bool) -> dict[str, Any]:
        assert self.rogue is not None
        return (await churn(self.rogue, victim, cycles, rejoin=rejoin)).as_dict()

    async def cmd_connected(self, victim: str) -> dict[str, Any]:
        link = self.rogue.links.get(victim) if self.rogue is not None else None
        return {"connected": link is not None and link.open}

    async def cmd_close(self) -> dict[str, Any]:
        if self.rogue is not None:
            await self.rogue.close()
            self.rogue = None
        return {}

    async def cmd_ping(self) -> dict[str, Any]:
        return {"cpu": time.process_time(), "wall": time.monotonic()}


async def _amain() -> None:
    commands = _Commands()
    try:
        await serve_json_lines(commands)
    finally:
        await commands.cmd_close()


if __name__ == "__main__":
    asyncio.run(_amain())
