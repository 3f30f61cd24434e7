"""Drives the echo peer process and runs measurement segments.

A *segment* is one transport x condition x size: ``messages`` payloads sent at
60 Hz, then a drain wait for echoes. Segments are numbered and the payload
carries the number, so a late echo from an earlier segment is ignored rather
than counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import RATE_HZ, Condition, decode_payload, make_payload, summarize
from benchmarks._transports import Client
from netcode.errors import DecodeError

__all__ = [
    "EchoCollector",
    "IdleCpu",
    "JsonLinesChild",
    "PeerProcess",
    "SegmentResult",
    "ab_ratios",
    "measure_idle",
    "run_ab",
    "run_ab_rounds",
    "run_segment",
]

ROOT = Path(__file__).resolve().parent.parent


class JsonLinesChild:
    """A benchmark child process speaking JSON lines over its stdin/stdout: one request
    ``{"id", "cmd", ...}`` per line, one reply ``{"ok": true, ...}`` or
    ``{"ok": false, "error": ...}`` per line. Shared by the latency and host-scale runs."""

    default_wait_s = 30.0

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self._proc = proc
        self.name = name
        self._next_id = 0
        self._lock = asyncio.Lock()

    @staticmethod
    async def spawn(module: str, prefix: list[str] | None = None) -> asyncio.subprocess.Process:
        """``python -m module`` from the repository root (``prefix`` wraps the command)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return await asyncio.create_subprocess_exec(
            *(prefix or []), sys.executable, "-m", module,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT), env=env, limit=1 << 24,
        )  # fmt: skip

    async def call(self, cmd: str, wait_s: float | None = None, **kwargs: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        async with self._lock:
            self._next_id += 1
            line = json.dumps({"id": self._next_id, "cmd": cmd, **kwargs}).encode() + b"\n"
            self._proc.stdin.write(line)
            await self._proc.stdin.drain()
            wait = self.default_wait_s if wait_s is None else wait_s
            raw = await asyncio.wait_for(self._proc.stdout.readline(), wait)
        if not raw:
            raise RuntimeError(f"{self.name} exited during {cmd!r}")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.pop("ok", False):
            raise RuntimeError(f"{self.name}: {cmd}: {reply.get('error')}")
        return reply

    async def close(self, close_all_s: float = 15.0, exit_s: float = 10.0) -> None:
        """Ask the child to close what it holds (``close_all``), then end it: stdin
        closed, killed if it has not exited within ``exit_s``."""
        with contextlib.suppress(Exception):
            await self.call("close_all", wait_s=close_all_s)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), exit_s)
        except TimeoutError:
            if self._proc.returncode is None:
                self._proc.kill()
            await self._proc.wait()


class PeerProcess(JsonLinesChild):
    """The echo peer child process (``python -m benchmarks._peer``), JSON lines over pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc, "echo peer")

    @classmethod
    async def start(cls, prefix: list[str] | None = None) -> PeerProcess:
        """Start the peer; ``prefix`` wraps the command (e.g. ``ip netns exec NS``)."""
        peer = cls(await cls.spawn("benchmarks._peer", prefix))
        await peer.call("ping", wait_s=60.0)
        return peer


@dataclass(frozen=True)
class IdleCpu:
    """CPU seconds per wall second of each process with the connection open, no traffic.

    The fixed cost (event-loop wakeups, the peer's 60 Hz sampling, heartbeats,
    SCTP timers) that the per-message figures subtract for their ``_net`` values.
    """

    sender: float
    receiver: float


async def measure_idle(peer: PeerProcess, seconds: float) -> IdleCpu:
    c0, m0, w0 = await peer.call("ping"), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)  # measuring idle time itself, not synchronisation
    c1, m1, w1 = await peer.call("ping"), time.process_time(), time.monotonic()
    return IdleCpu(
        sender=(m1 - m0) / (w1 - w0),
        receiver=(c1["cpu"] - c0["cpu"]) / max(1e-9, c1["wall"] - c0["wall"]),
    )


def _per_1000(cpu_s: float, wall_s: float, idle_rate: float | None, count: int) -> float:
    net = cpu_s - (idle_rate or 0.0) * wall_s
    return round(max(0.0, net) * 1e6 / max(1, count), 2)


@dataclass
class SegmentResult:
    metrics: dict[str, Any]
    rtt_ms: list[float] = field(default_factory=list)


class EchoCollector:
    """RTT per echoed message of one segment (first echo of each seq counts)."""

    def __init__(self, seg: int, expected: int) -> None:
        self.seg = seg
        self.expected = expected
        self.rtt: dict[int, float] = {}
        self.done = asyncio.Event()

    def __call__(self, data: Any) -> None:
        now = time.monotonic()
        try:
            seg, n, t = decode_payload(data)
        except DecodeError:
            return
        if seg != self.seg or n in self.rtt:
            return
        self.rtt[n] = (now - t) * 1000.0
        if len(self.rtt) >= self.expected:
            self.done.set()


async def run_segment(
    client: Client,
    peer: PeerProcess,
    *,
    seg: int,
    cond: Condition,
    size: int,
    messages: int,
    drain_s: float,
    idle: IdleCpu | None = None,
) -> SegmentResult:
    """Send ``messages`` payloads at 60 Hz, wait for echoes, collect every metric."""
    echoes = EchoCollector(seg, messages)
    client.on_echo = echoes
    begin = await peer.call("seg_begin", seg=seg)
    cpu0, wire0, wall0 = time.process_time(), client.wire_bytes(), time.monotonic()
    drops0 = client.send_drops()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(messages):
        await asyncio.sleep(max(0.0, start + n / RATE_HZ - loop.time()))
        client.send(make_payload(seg, n, time.monotonic(), size))
    t_last = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(echoes.done.wait(), drain_s)
    cpu1, wire1, wall1 = time.process_time(), client.wire_bytes(), time.monotonic()
    drops1 = client.send_drops()
    window = cond.one_way_max_s + 1.0 / RATE_HZ
    end = await peer.call("seg_end", t_last=t_last, window=window)
    client.on_echo = lambda _m: None
    rtts = list(echoes.rtt.values())
    received = int(end["received"])
    metrics: dict[str, Any] = {
        "sent": messages,
        "received": received,
        "echoed": len(rtts),
        "delivery_pct": round(100.0 * received / messages, 2),
        "echo_pct": round(100.0 * len(rtts) / messages, 2),
        "rtt_ms": summarize(rtts),
        "age_ms": summarize(end["age_ms"], (50, 99)),
        "cpu_ms_per_1000": _cpu(cpu1 - cpu0, wall1 - wall0, begin, end, idle, messages, received),
        "wire_bytes_per_msg": (
            round((wire1 - wire0) / messages, 1)
            if wire0 is not None and wire1 is not None
            else None
        ),
        # State the sender itself dropped (backpressure), where it counts them.
        "send_drops": None if drops0 is None or drops1 is None else drops1 - drops0,
    }
    return SegmentResult(metrics, rtts)


def _cpu(
    cpu_s: float,
    wall_s: float,
    begin: dict[str, Any],
    end: dict[str, Any],
    idle: IdleCpu | None,
    sent: int,
    received: int,
) -> dict[str, float | None]:
    """Raw and idle-subtracted CPU ms per 1000 messages, sender and receiver."""
    peer_cpu, peer_wall = end["cpu"] - begin["cpu"], end["wall"] - begin["wall"]
    return {
        "sender": _per_1000(cpu_s, wall_s, None, sent),
        "receiver": _per_1000(peer_cpu, peer_wall, None, received),
        "sender_net": None if idle is None else _per_1000(cpu_s, wall_s, idle.sender, sent),
        "receiver_net": (
            None if idle is None else _per_1000(peer_cpu, peer_wall, idle.receiver, received)
        ),
    }


async def run_ab(
    clients: dict[str, Client], *, first_seg: int, messages: int, size: int, drain_s: float
) -> dict[str, list[float]]:
    """Interleaved A/B: every client sends one payload per 60 Hz tick, spread and rotated.

    Sequential rows of the main table run minutes apart on a shared machine;
    this puts the paths in the same seconds, so their ratio is not load drift.
    """
    names = sorted(clients)
    collectors = {name: EchoCollector(first_seg + i, messages) for i, name in enumerate(names)}
    for name, client in clients.items():
        client.on_echo = collectors[name]
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(messages):
        shift = n % len(names)
        # Spread within the tick (so one send never waits behind the other),
        # rotating which path goes first.
        for j, name in enumerate(names[shift:] + names[:shift]):
            at = start + (n + j / len(names)) / RATE_HZ
            await asyncio.sleep(max(0.0, at - loop.time()))
            seg = collectors[name].seg
            clients[name].send(make_payload(seg, n, time.monotonic(), size))
    for collector in collectors.values():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.done.wait(), drain_s)
    for client in clients.values():
        client.on_echo = lambda _m: None
    return {name: list(c.rtt.values()) for name, c in collectors.items()}


async def run_ab_rounds(
    clients: dict[str, Client],
    *,
    first_seg: int,
    rounds: int,
    messages: int,
    size: int,
    drain_s: float,
    interleave: bool = True,
) -> list[dict[str, list[float]]]:
    """``rounds`` A/B rounds; RTTs per round and path.

    ``interleave``: every path sends in the same ticks (:func:`run_ab`); else each
    round runs one short segment per path, one path at a time, in an order that
    rotates from round to round. Either way every connection stays open throughout,
    so each path pays the same idle cost (timers, heartbeats) of the others.
    """
    names = sorted(clients)
    out: list[dict[str, list[float]]] = []
    seg = first_seg
    for r in range(rounds):
        if interleave:
            out.append(
                await run_ab(clients, first_seg=seg, messages=messages, size=size, drain_s=drain_s)
            )
            seg += len(names)
            continue
        shift = r % len(names)
        rtts: dict[str, list[float]] = {}
        for name in names[shift:] + names[:shift]:
            one = {name: clients[name]}
            rtts |= await run_ab(one, first_seg=seg, messages=messages, size=size, drain_s=drain_s)
            seg += 1
        out.append(rtts)
    return out


def ab_ratios(
    per_round: list[dict[str, list[float]]], base: str, q: int = 50
) -> dict[str, dict[str, float | None]]:
    """Per path: median, min and max over rounds of (its p``q`` / ``base``'s p``q``)."""
    ratios: dict[str, list[float]] = {}
    for rtts in per_round:
        ref = summarize(rtts.get(base, []), (q,))[f"p{q}"]
        for name, values in rtts.items():
            mine = summarize(values, (q,))[f"p{q}"]
            if name != base and ref and mine is not None:
                ratios.setdefault(name, []).append(mine / ref)
    return {
        name: {
            "median": round(statistics.median(v), 3),
            "min": round(min(v), 3),
            "max": round(max(v), 3),
        }
        for name, v in ratios.items()
    }
