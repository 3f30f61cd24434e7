"""Child process of the host-scale benchmark: the host, or a batch of clients.

``python -m benchmarks._host_client`` reads one JSON command per line on stdin
and answers one JSON line on stdout (the same protocol as ``benchmarks._peer``).
The orchestrator (``benchmarks.host_scale``) starts three of them: one plays the
host, two play the clients (each running many client sessions), so the host's
CPU is the only thing its ``time.process_time`` counts.

Two designs, measured alike:

* **netcode**: the host ticks, mutates a 64-entity world (25 % of the entities
  change per tick) and calls ``session.send_snapshot(world)`` to every client;
  each client is its own ``netcode.connect`` session sending a 30 B input per
  tick with ``send_state(..., to=host)``.
* **bare**: the host holds one aiortc ``RTCPeerConnection`` per client with one
  negotiated unordered channel (``maxRetransmits=0``) and sends one ~600 B
  message, encoded once per tick, to every client; clients send the same 30 B
  input per tick.

The host puts its send time ``t`` (``time.monotonic()``, CLOCK_MONOTONIC, shared
by every process on the machine) and the tick number ``n`` in each snapshot, so
a client computes the snapshot's age on arrival and which ticks it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import logging
import math
import pstats
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from benchmarks._child import serve_json_lines
from benchmarks._common import encode_payload, make_payload, percentile

__all__ = [
    "BARE_BYTES",
    "CHANGING",
    "CLOCK_ID",
    "ENTITIES",
    "INPUT_BYTES",
    "Plan",
    "Recorder",
    "TickReport",
    "advance_world",
    "bare_clock",
    "bare_message",
    "bare_pad",
    "main",
    "make_world",
    "profile_summary",
    "tick_loop",
]

ENTITIES = 64
CHANGING = ENTITIES // 4  # 25 % of the entities change every tick
CLOCK_ID = "clock"  # the entity carrying the host's send time and tick number
INPUT_BYTES = 30
BARE_BYTES = 600
LOOPBACK = "127.0.0.1"
# Bare channels drop a tick's message past netcode's default backpressure point,
# so both designs shed load the same way (newest wins, nothing queues).
BARE_BUFFER_THRESHOLD = 2_400
MAX_BARE_MESSAGE = 4_096  # anything larger on a bare channel is not ours

Entities = dict[int | str, dict[str, Any]]


# --------------------------------------------------------------------------- the world


def make_world(seed: int = 0) -> Entities:
    """64 entities of 3 floats and an int: ~2.4 KB full, ~600 B for a 25 % delta."""
    rng = random.Random(seed)
    world: Entities = {
        i: {"x": rng.uniform(0, 1000), "y": rng.uniform(0, 1000), "a": rng.random(), "hp": 100}
        for i in range(ENTITIES)
    }
    world[CLOCK_ID] = {"t": 0.0, "n": -1}
    return world


def advance_world(world: Entities, tick: int, now: float) -> None:
    """Move the tick's quarter of the entities (a rotating block) and stamp the clock.

    Changed entities get new dicts rather than being edited in place, as a game
    building its world each tick would; the snapshot sender keeps what it sent.
    """
    first = (tick * CHANGING) % ENTITIES
    for i in range(first, first + CHANGING):
        old = world[i]
        world[i] = {
            "x": old["x"] + 0.731 * ((tick + i) % 7 - 3),
            "y": old["y"] + 0.419 * ((tick + 2 * i) % 5 - 2),
            "a": (old["a"] + 0.013 * (i % 11)) % 1.0,
            "hp": old["hp"],
        }
    world[CLOCK_ID] = {"t": now, "n": tick}


def bare_pad() -> bytes:
    probe = len(msgpack.packb({"t": 1.0, "n": 1000, "p": b""}))
    return bytes(BARE_BYTES - probe - 3)  # a bin header of 3 bytes past 255


def bare_message(now: float, tick: int, pad: bytes) -> bytes:
    """The bare host's per-tick message: ~600 B, encoded once, sent to every client."""
    return bytes(msgpack.packb({"t": now, "n": tick, "p": pad}))


def bare_clock(data: bytes | str) -> tuple[float, int] | None:
    """(t, n) of a bare message, or None for anything else."""
    if not isinstance(data, bytes) or len(data) > MAX_BARE_MESSAGE:
        return None
    try:
        obj = msgpack.unpackb(data, max_bin_len=MAX_BARE_MESSAGE, max_str_len=16)
    except (ValueError, TypeError, msgpack.StackError):
        return None
    if not isinstance(obj, dict):
        return None
    t, n = obj.get("t"), obj.get("n")
    return (t, n) if isinstance(t, float) and isinstance(n, int) else None


def _input(seq: int) -> dict[str, Any]:
    return make_payload(0, seq, time.monotonic(), INPUT_BYTES)


# --------------------------------------------------------------------------- ticking


@dataclass(frozen=True, slots=True)
class Plan:
    """One measured cell: ticks from ``start`` (monotonic), measured in [w0, w1)."""

    start: float
    warmup: float
    seconds: float
    rate: int
    phase: float = 0.0  # fraction of a period this process ticks after the host
    profile: bool = False  # cProfile the window (slows Python code: shares, not totals)

    @property
    def w0(self) -> float:
        return self.start + self.warmup

    @property
    def w1(self) -> float:
        return self.w0 + self.seconds

    @property
    def scheduled(self) -> int:
        """Ticks scheduled inside the window."""
        return round(self.seconds * self.rate)


@dataclass(slots=True)
class TickReport:
    cpu_s: float = 0.0
    wall_s: float = 0.0
    ticks: int = 0  # ticks that began inside the window
    overruns: int = 0  # of those, ticks that began more than one period late
    work_ms: tuple[float, ...] = ()
    profile: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.work_ms)
        return {
            **({"profile": self.profile} if self.profile else {}),
            "cpu_s": round(self.cpu_s, 6),
            "wall_s": round(self.wall_s, 4),
            "ticks": self.ticks,
            "overruns": self.overruns,
            "work_ms_mean": round(sum(ordered) / max(1, len(ordered)), 4),
            "work_ms_p99": round(percentile(ordered, 99), 4) if ordered else None,
        }


async def _sleep_until(at: float) -> None:
    # Always yield, even when late: the receive path must run between ticks.
    await asyncio.sleep(max(0.0, at - time.monotonic()))


async def tick_loop(plan: Plan, tick: Callable[[float, int], None]) -> TickReport:
    """Call ``tick(now, n)`` at ``plan.rate`` on a fixed schedule until the window ends.

    A late tick runs at once (catching up back to back, as a fixed-step game
    loop does); the loop stops at ``w1``, so an overloaded host shows as fewer
    ticks than scheduled and as overruns, never as a longer run.
    """
    period = 1.0 / plan.rate
    origin = plan.start + plan.phase * period
    # perf_counter (cProfile's default): process_time costs ~1 µs a call, which would
    # slow the host several-fold; waiting in epoll is left out of the shares instead.
    profiler = cProfile.Profile() if plan.profile else None
    cpu0 = wall0 = None
    work: list[float] = []
    overruns = 0
    for k in range(math.ceil((plan.warmup + plan.seconds) * plan.rate) + 1):
        at = origin + k * period
        await _sleep_until(at)
        begin = time.monotonic()
        if begin >= plan.w1:
            break
        if cpu0 is None and begin >= plan.w0:
            cpu0, wall0 = time.process_time(), begin
            if profiler is not None:
                profiler.enable()  # every callback of this thread, not only ticks
        tick(begin, k)
        if cpu0 is not None:
            work.append((time.monotonic() - begin) * 1000.0)
            overruns += begin - at > period
    await _sleep_until(plan.w1)
    if cpu0 is None or wall0 is None:
        return TickReport()
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    if profiler is not None:
        profiler.disable()
    summary = None if profiler is None else profile_summary(profiler)
    return TickReport(cpu_s, wall_s, len(work), overruns, tuple(work), summary)


WAIT = "event-loop wait (epoll)"
# Where a function's time goes, by the file (or built-in) it lives in; first match wins.
CATEGORIES = (
    ("netcode/protocol/snapshot", "netcode snapshot encode"),
    ("netcode/", "netcode other (session, link, wire)"),
    ("aiortc/rtcsctptransport", "aiortc SCTP"),
    ("aiortc/rtcdtlstransport", "aiortc DTLS"),
    ("aiortc/", "aiortc other"),
    ("aioice/", "aioice (ICE, UDP)"),
    ("asyncio/", "asyncio"),
    ("msgpack", "msgpack"),
    ("benchmarks/", "benchmark (world, tick loop)"),
    ("ssl", "OpenSSL (C)"),
    ("crypt", "OpenSSL (C)"),
    ("cffi", "OpenSSL (C)"),
    ("sendto", "socket syscalls"),
    ("recv", "socket syscalls"),
    ("epoll", WAIT),
)


def _category(filename: str, name: str) -> str:
    where = (filename + " " + name).replace("\\", "/").lower()
    return next((label for key, label in CATEGORIES if key in where), "other")


def profile_summary(profiler: cProfile.Profile, top: int = 15) -> dict[str, Any]:
    """Own time shares by category (waiting in epoll left out), and the top functions.

    A built-in with no category of its own (``len``, ``dict.get``, ...) is
    charged to its callers, in proportion to the time each spent in it.
    """
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    rows = []
    for (filename, line, name), (_cc, calls, tt, cum, callers) in stats.items():
        label = _category(filename, name)
        if label == WAIT:
            continue
        rows.append((f"{Path(filename).name}:{line}:{name}", calls, tt, cum))
        if label == "other" and filename == "~" and callers:
            spent = sum(v[2] for v in callers.values()) or 1e-12
            for (cfile, _cline, cname), v in callers.items():
                owner = _category(cfile, cname)
                shares[owner] = shares.get(owner, 0.0) + tt * v[2] / spent
        else:
            shares[label] = shares.get(label, 0.0) + tt
    total = sum(shares.values()) or 1e-9
    rows.sort(key=lambda r: -r[2])
    return {
        "profiled_s": round(total, 4),
        "shares": {
            k: round(v / total, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
        },
        "top": [
            {"function": fn, "calls": calls, "tottime_s": round(tt, 5), "cumtime_s": round(cum, 5)}
            for fn, calls, tt, cum in rows[:top]
        ],
    }


class Recorder:
    """Snapshots each client received with a host send time inside the window."""

    def __init__(self) -> None:
        self.received: list[set[int]] = []
        self.ages_ms: list[float] = []
        self.window = (math.inf, -math.inf)

    def arm(self, receivers: int, w0: float, w1: float) -> None:
        self.received = [set() for _ in range(receivers)]
        self.ages_ms = []
        self.window = (w0, w1)

    def disarm(self) -> dict[str, Any]:
        self.window = (math.inf, -math.inf)
        return {"received": [len(s) for s in self.received], "ages_ms": self.ages_ms}

    def on_snapshot(self, index: int, t: float, n: int, now: float) -> None:
        w0, w1 = self.window
        if w0 <= t < w1 and index < len(self.received) and n not in self.received[index]:
            self.received[index].add(n)
            self.ages_ms.append((now - t) * 1000.0)


# --------------------------------------------------------------------------- roles

COUNTERS = ("state_drops", "rate_limited", "bad_packets", "stale_drops")


def link_totals(session: Any, peer_ids: Sequence[str]) -> dict[str, float]:
    """Counters summed and RTT/loss maxima over some of a session's links (public stats)."""
    out = dict.fromkeys((*COUNTERS, "kbps_sent", "rtt_ms_max", "loss_max"), 0.0)
    for peer_id in peer_ids:
        with contextlib.suppress(KeyError):
            st = session.stats(peer_id)
            for name in (*COUNTERS, "kbps_sent"):
                out[name] += getattr(st, name)
            out["rtt_ms_max"] = max(out["rtt_ms_max"], st.rtt_ms)
            out["loss_max"] = max(out["loss_max"], st.loss)
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counters as differences over the cell, RTT and loss as at its end."""
    out = {k: after[k] - before[k] for k in COUNTERS}
    out.update(rtt_ms_max=round(after["rtt_ms_max"], 2), loss_max=round(after["loss_max"], 3))
    return out


class Role:
    """What one child process plays; ``run`` measures one cell."""

    async def run(self, plan: Plan) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def _session_config() -> Any:
    from netcode import SessionConfig

    return SessionConfig(host_addresses=(LOOPBACK,))


class NetcodeHost(Role):
    def __init__(self) -> None:
        self.stack = contextlib.AsyncExitStack()
        self.session: Any = None
        self.world = make_world()
        self.inputs = 0
        self.window = (math.inf, -math.inf)

    async def open(self, url: str, max_players: int, topology: str) -> dict[str, Any]:
        import netcode

        self.session = await self.stack.enter_async_context(
            netcode.connect(
                url,
                create=True,
                max_players=max_players,
                topology="star" if topology == "star" else "mesh",
                config=_session_config(),
            )
        )
        return {"room": self.session.room, "peer_id": self.session.peer_id}

    def tick(self, now: float, n: int) -> None:
        from netcode import StateReceived

        events = self.session.poll()
        if self.window[0] <= now < self.window[1]:
            self.inputs += sum(isinstance(ev, StateReceived) for ev in events)
        advance_world(self.world, n, now)
        self.session.send_snapshot(self.world)

    async def run(self, plan: Plan) -> dict[str, Any]:
        before = link_totals(self.session, list(self.session.peers))
        self.inputs, self.window = 0, (plan.w0, plan.w1)
        report = await tick_loop(plan, self.tick)
        after = link_totals(self.session, list(self.session.peers))
        peers = max(1, len(self.session.peers))
        return {
            **report.to_json(),
            "inputs": self.inputs,
            "send_drops": after["state_drops"] - before["state_drops"],
            "bytes_per_snapshot": round(after["kbps_sent"] * 1000 / 8 / peers / plan.rate, 1),
            "links": _delta(before, after),
        }

    async def close(self) -> None:
        await self.stack.aclose()


def _rtc_pair() -> tuple[Any, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("state", ordered=False, maxRetransmits=0, negotiated=True, id=1)
    return pc, channel


async def _wait_open(channels: Sequence[Any], within_s: float) -> int:
    """Wait until every channel is open (bounded); returns how many are."""
    waits = []
    for ch in channels:
        if ch.readyState != "open":
            opened = asyncio.Event()
            ch.on("open", opened.set)
            waits.append(opened.wait())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*waits), within_s)
    return sum(ch.readyState == "open" for ch in channels)


class BareHost(Role):
    def __init__(self) -> None:
        self.pcs: list[Any] = []
        self.channels: list[Any] = []
        self.pad = bare_pad()
        self.inputs = 0
        self.drops = 0
        self.window = (math.inf, -math.inf)

    async def offers(self, n: int) -> list[dict[str, str]]:
        async def offer() -> dict[str, str]:
            pc, channel = _rtc_pair()
            self.pcs.append(pc)
            self.channels.append(channel)
            channel.on("message", self._on_input)
            await pc.setLocalDescription(await pc.createOffer())
            return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

        return list(await asyncio.gather(*(offer() for _ in range(n))))

    async def accept(self, answers: Sequence[dict[str, str]], within_s: float) -> int:
        from aiortc import RTCSessionDescription

        for pc, answer in zip(self.pcs, answers, strict=True):
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return await _wait_open(self.channels, within_s)

    def _on_input(self, data: bytes | str) -> None:
        # A game decodes its inputs: so does the bare host (netcode's does too).
        if isinstance(data, bytes) and len(data) <= MAX_BARE_MESSAGE:
            with contextlib.suppress(ValueError, TypeError, msgpack.StackError):
                msgpack.unpackb(data, max_bin_len=MAX_BARE_MESSAGE, max_str_len=16)
                w0, w1 = self.window
                self.inputs += w0 <= time.monotonic() < w1

    def tick(self, now: float, n: int) -> None:
        message = bare_message(now, n, self.pad)
        for channel in self.channels:
            if channel.readyState != "open" or channel.bufferedAmount > BARE_BUFFER_THRESHOLD:
                self.drops += 1
            else:
                channel.send(message)

    async def run(self, plan: Plan) -> dict[str, Any]:
        self.inputs = self.drops = 0
        self.window = (plan.w0, plan.w1)
        report = await tick_loop(plan, self.tick)
        return {
            **report.to_json(),
            "inputs": self.inputs,
            "send_drops": self.drops,
            "bytes_per_snapshot": float(len(bare_message(0.0, 1000, self.pad))),
        }

    async def close(self) -> None:
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 10.0)
        self.pcs, self.channels = [], []


class Clients(Role):
    """Many clients of one design in this process, ticking together."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.count = 0
        self.sent = 0

    def send_inputs(self, seq: int) -> None:
        raise NotImplementedError

    def tick(self, now: float, n: int) -> None:
        self.send_inputs(n)

    def links(self) -> dict[str, float]:
        return {}

    async def run(self, plan: Plan) -> dict[str, Any]:
        self.rec.arm(self.count, plan.w0, plan.w1)
        before = self.links()
        report = await tick_loop(plan, self.tick)
        # Snapshots sent just before w1 are still in flight: let them land.
        await asyncio.sleep(0.25)
        links = _delta(before, self.links()) if before else {}
        return {**report.to_json(), **self.rec.disarm(), "links": links}


class NetcodeClients(Clients):
    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.AsyncExitStack()
        self.sessions: list[Any] = []
        self.host_id = ""
        self.tasks: list[asyncio.Task[None]] = []

    async def join(self, url: str, room: str, host_id: str, count: int) -> dict[str, Any]:
        import netcode

        self.host_id, self.count = host_id, count
        for _ in range(count):
            session = await self.stack.enter_async_context(
                netcode.connect(url, room=room, config=_session_config())
            )
            self.tasks.append(asyncio.ensure_future(self._receive(len(self.sessions), session)))
            self.sessions.append(session)
        return {"joined": len(self.sessions)}

    async def wait_mesh(self, peers: int, within_s: float) -> dict[str, Any]:
        """Wait (bounded) for every session to connect to ``peers`` peers (the full mesh)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(s.wait_for_peers(peers) for s in self.sessions)), within_s
            )
        links = [sum(p.state == "connected" for p in s.peers.values()) for s in self.sessions]
        host_up = sum(
            (info := s.peers.get(self.host_id)) is not None and info.state == "connected"
            for s in self.sessions
        )
        return {"links": sum(links), "host_links": host_up}

    async def _receive(self, index: int, session: Any) -> None:
        from netcode import SnapshotReceived

        async for ev in session:
            if isinstance(ev, SnapshotReceived) and ev.peer_id == self.host_id:
                clock = ev.entities.get(CLOCK_ID)
                if isinstance(clock, dict):
                    self.rec.on_snapshot(index, clock["t"], clock["n"], time.monotonic())

    def links(self) -> dict[str, float]:
        """Each session's link to the host, summed (the mesh links carry no data)."""
        totals = [link_totals(s, [self.host_id]) for s in self.sessions]
        out = {k: sum(t[k] for t in totals) for k in COUNTERS}
        out["rtt_ms_max"] = max((t["rtt_ms_max"] for t in totals), default=0.0)
        out["loss_max"] = max((t["loss_max"] for t in totals), default=0.0)
        return out

    def send_inputs(self, seq: int) -> None:
        data = _input(seq)
        for session in self.sessions:
            session.send_state(data, to=self.host_id)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.stack.aclose()


class BareClients(Clients):
    def __init__(self) -> None:
        super().__init__()
        self.pcs: list[Any] = []
        self.channels: list[Any] = []

    async def answer(self, offers: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        from aiortc import RTCSessionDescription

        async def one(index: int, offer: dict[str, str]) -> dict[str, str]:
            pc, channel = _rtc_pair()
            self.pcs.append(pc)
            self.channels.append(channel)
            channel.on("message", lambda m: self._on_message(index, m))
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
            return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

        self.count = len(offers)
        return list(await asyncio.gather(*(one(i, o) for i, o in enumerate(offers))))

    def _on_message(self, index: int, data: bytes | str) -> None:
        clock = bare_clock(data)
        if clock is not None:
            self.rec.on_snapshot(index, clock[0], clock[1], time.monotonic())

    def send_inputs(self, seq: int) -> None:
        data = encode_payload(_input(seq))
        for channel in self.channels:
            if channel.readyState == "open" and channel.bufferedAmount <= BARE_BUFFER_THRESHOLD:
                channel.send(data)

    async def close(self) -> None:
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 10.0)
        self.pcs, self.channels = [], []


# --------------------------------------------------------------------------- commands


class Child:
    """The commands the orchestrator sends; one role at a time."""

    def __init__(self) -> None:
        self.role: Role | None = None

    def _as(self, kind: type[Any]) -> Any:
        if not isinstance(self.role, kind):
            raise RuntimeError(f"not playing {kind.__name__}")
        return self.role

    async def _become(self, role: Role) -> None:
        await self.cmd_close_all()
        self.role = role

    async def cmd_ping(self) -> dict[str, Any]:
        return {"cpu": time.process_time(), "wall": time.monotonic()}

    async def cmd_nc_host(self, url: str, max_players: int, topology: str) -> dict[str, Any]:
        await self._become(NetcodeHost())
        opened: dict[str, Any] = await self._as(NetcodeHost).open(url, max_players, topology)
        return opened

    async def cmd_nc_host_wait(self, n: int, within_s: float) -> dict[str, Any]:
        host = self._as(NetcodeHost)
        with contextlib.suppress(Exception):
            await host.session.wait_for_peers(n, timeout=within_s)
        return {"connected": sum(p.state == "connected" for p in host.session.peers.values())}

    async def cmd_nc_join(self, url: str, room: str, host_id: str, count: int) -> dict[str, Any]:
        await self._become(NetcodeClients())
        joined: dict[str, Any] = await self._as(NetcodeClients).join(url, room, host_id, count)
        return joined

    async def cmd_nc_wait_mesh(self, peers: int, within_s: float) -> dict[str, Any]:
        waited: dict[str, Any] = await self._as(NetcodeClients).wait_mesh(peers, within_s)
        return waited

    async def cmd_bare_offers(self, n: int) -> dict[str, Any]:
        await self._become(BareHost())
        return {"offers": await self._as(BareHost).offers(n)}

    async def cmd_bare_answer(self, offers: list[dict[str, str]]) -> dict[str, Any]:
        await self._become(BareClients())
        return {"answers": await self._as(BareClients).answer(offers)}

    async def cmd_bare_accept(
        self, answers: list[dict[str, str]], within_s: float
    ) -> dict[str, Any]:
        return {"open": await self._as(BareHost).accept(answers, within_s)}

    async def cmd_bare_wait(self, within_s: float) -> dict[str, Any]:
        return {"open": await _wait_open(self._as(BareClients).channels, within_s)}

    async def cmd_run(self, **plan: Any) -> dict[str, Any]:
        if self.role is None:
            raise RuntimeError("no role to run")
        return await self.role.run(Plan(**plan))

    async def cmd_close_all(self) -> dict[str, Any]:
        role, self.role = self.role, None
        if role is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(role.close(), 30.0)
        return {}


class _FirstFew(logging.Filter):
    """Lets the first few records of each message template through.

    A warning per peer per setup (e.g. the first, full snapshot exceeding one
    SCTP chunk) would otherwise print hundreds of identical lines.
    """

    def __init__(self, keep: int = 2) -> None:
        super().__init__()
        self.keep = keep
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(record.msg)
        count = self.seen.get(key, 0) + 1
        if key in self.seen or len(self.seen) < 1000:  # bounded, whatever gets logged
            self.seen[key] = count
        return count <= self.keep


async def _amain() -> None:
    from benchmarks._transports import pin_loopback

    logging.basicConfig(format="%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_FirstFew())
    pin_loopback()
    child = Child()
    try:
        await serve_json_lines(child)
    finally:
        await child.cmd_close_all()


def main() -> None:
    asyncio.run(_amain())


if __name__ == "__main__":
    main()
