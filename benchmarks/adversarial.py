"""Hostile-peer benchmark: what one rogue player costs a victim and an honest player.

Run: ``python -m benchmarks.adversarial [--quick] [--out DIR] [--seconds S]``.

Three processes besides this one, all on 127.0.0.1 through a lobby this process
runs: the **victim** (creates the room; echoes the honest peer's state at once
and sends it a snapshot every 60 Hz tick), the **honest** peer (sends 100 B
state to the victim at 60 Hz and measures the echo RTT) and the **rogue**
(``benchmarks._rogue``: joins the room and writes raw bytes to its channels).
Each attack of issue 9 runs for one segment; per segment: honest echo RTT
p50/p99 against the no-attack baseline of the same run, the honest peer's
longest silence, victim RSS growth (``/proc/<pid>/status`` VmRSS, peak minus
start) and CPU (``/proc/<pid>/stat``, CPU-seconds per wall second), the
victim's queue peak and what it did to the rogue. Writes ``adversarial.json``
(``adversarial-quick.json`` with --quick) to ``benchmarks/results`` or ``--out``;
docs/BENCHMARKS.md ("Hostile peers") explains the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import gc
import itertools
import logging
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._child import serve_json_lines
from benchmarks._common import RATE_HZ, make_payload, markdown_rows, summarize
from benchmarks._report import write_json
from benchmarks._runner import ROOT, EchoCollector

__all__ = ["ATTACK_LIST", "Settings", "main", "run"]

PAYLOAD_BYTES = 100
BIG_EVENT_BYTES = 300_000
LOSSY = {"loss": 0.05, "latency_ms": 50.0, "seed": 9}
RTT_RATIO_GOAL = 2.0
RSS_GOAL_MB = 50.0


@dataclass(frozen=True)
class AttackSpec:
    key: str
    label: str
    kind: str  # "attack" (rogue ATTACKS[key]), "churn", "nopoll", "big_event", "baseline"
    rtt_goal: bool = True  # False: the game does not poll, so nothing is echoed by design


ATTACK_LIST: tuple[AttackSpec, ...] = (
    AttackSpec("baseline", "no attack (rogue connected, idle)", "baseline"),
    AttackSpec("fat_delta", "snapshot deltas +4,000 fields (~40 KB) each, 20/s", "attack"),
    AttackSpec("phantom_removal", "deltas removing 3,500 absent fields of 4,000", "attack"),
    AttackSpec("nested_state", "61 KB STATE of nested empty containers, 25/s", "attack"),
    AttackSpec("nested_event", "61 KB EVENT of nested empty containers, 25/s", "attack"),
    AttackSpec("nested_chunked", "1 MiB chunked EVENT of nested empty containers, 2/s", "attack"),
    AttackSpec("ping_flood", "PING flood, 5,000/s", "attack"),
    AttackSpec("event_flood", "reliable EVENT flood, 5,000/s", "attack"),
    AttackSpec("nopoll_flood", "game stops polling; events within budget", "nopoll", False),
    AttackSpec("forged_pong", "forged PONGs (echo of a time never sent), 20/s", "attack"),
    AttackSpec("churn", "churn: goodbye-then-offer and leave/join cycles", "churn"),
    AttackSpec("baseline_end", "no attack, after all others", "baseline"),
    AttackSpec("baseline_lossy", "no attack, victim<->honest 5 % loss + 50 ms", "baseline"),
    AttackSpec("big_event", "300 KB reliable event each 2 s, 5 % loss + 50 ms", "big_event"),
)  # fmt: skip


class Settings:
    def __init__(
        self, quick: bool, seconds: float | None = None, only: frozenset[str] = frozenset()
    ) -> None:
        self.quick = quick
        # Run only these segments (plus the baselines they are compared with).
        self.only = only | ({"baseline", "baseline_lossy"} if only else frozenset())
        self.seconds = seconds or (2.0 if quick else 8.0)
        self.churn_cycles = 10 if quick else 50
        self.drain_s = 1.0
        self.cool_down_s = 0.5 if quick else 2.0


# --------------------------------------------------------------------------- /proc


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- child roles


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1


def _session_config() -> Any:
    from netcode.config import SessionConfig

    return SessionConfig(host_addresses=("127.0.0.1",), ice_servers=())


class Victim:
    """The attacked host: echoes the honest peer's state, snapshots it every tick."""

    def __init__(self) -> None:
        self.session: Any = None
        self.honest: str | None = None
        self.paused = asyncio.Event()
        self.paused.set()  # set = consuming events
        self.max_queued = 0
        self.max_lag_s = 0.0  # how late the 60 Hz tick ran: the event loop's stall
        self.lost: dict[str, str] = {}
        self.events: Counter[str] = Counter()
        self.log = _ErrorCounter()
        logging.getLogger().addHandler(self.log)
        self._tasks: list[asyncio.Task[Any]] = []

    async def cmd_create(self, url: str) -> dict[str, Any]:
        import netcode

        self.session = await netcode.connect(
            url, create=True, max_players=64, config=_session_config()
        )
        self._tasks = [asyncio.ensure_future(self._consume()), asyncio.ensure_future(self._tick())]
        return {"room": self.session.room, "peer_id": self.session.peer_id, "pid": os.getpid()}

    async def _consume(self) -> None:
        from netcode.events import PeerLost, StateReceived

        while True:
            await self.paused.wait()
            ev = await self.session.next_event()
            self.events[type(ev).__name__] += 1
            if isinstance(ev, StateReceived) and ev.peer_id == self.honest:
                self.session.send_state(ev.data, to=ev.peer_id)
            elif isinstance(ev, PeerLost):
                self.lost[ev.peer_id] = str(getattr(ev, "reason", "?"))

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        n, due = 0, loop.time()
        while True:
            n += 1
            self.max_lag_s = max(self.max_lag_s, loop.time() - due)
            self.max_queued = max(self.max_queued, int(getattr(self.session, "queued_events", 0)))
            if self.honest is not None and self.honest in self.session.peers:
                self.session.send_snapshot(
                    {1: {"x": float(n), "y": 1.0}, 2: {"hp": n % 100}}, to=self.honest
                )
            due = loop.time() + 1 / RATE_HZ
            await asyncio.sleep(1 / RATE_HZ)  # the game's frame rate

    async def cmd_honest(self, peer_id: str) -> dict[str, Any]:
        self.honest = peer_id
        return {}

    async def cmd_window(self) -> dict[str, Any]:
        """Start a new measurement window (queue peak, PeerLost reasons, event counts)."""
        self.max_queued, self.max_lag_s, self.lost, self.events = 0, 0.0, {}, Counter()
        self.log.counts.clear()
        return {}

    async def cmd_report(self, rogue: str | None = None) -> dict[str, Any]:
        from aiortc import RTCPeerConnection

        stats = None
        if rogue is not None:
            with contextlib.suppress(KeyError):
                stats = dataclasses.asdict(self.session.stats(rogue))
        gc.collect()
        return {
            "max_queued_events": self.max_queued,
            "max_loop_lag_ms": round(self.max_lag_s * 1000.0, 1),
            "lost": self.lost,
            "events": dict(self.events),
            "rogue_stats": stats,
            "log": dict(self.log.counts),
            "peer_connections": sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects()),
            "connected_peers": sum(
                1 for p in self.session.peers.values() if p.state == "connected"
            ),
        }

    async def cmd_pause(self, seconds: float) -> dict[str, Any]:
        """Stop consuming events for ``seconds`` (a game that stopped polling)."""
        self.paused.clear()
        await asyncio.sleep(seconds)  # the length of the simulated stall
        queued = int(getattr(self.session, "queued_events", 0))
        self.paused.set()
        return {"queued_at_resume": queued}

    async def cmd_conditions(self, conditions: dict[str, Any] | None) -> dict[str, Any]:
        from netcode.config import NetworkConditions

        cond = NetworkConditions(**conditions) if conditions else None
        self.session.set_conditions(cond, peer=self.honest, inbound=cond)
        return {}

    async def cmd_big_events(self, seconds: float, every_s: float, size: int) -> dict[str, Any]:
        blob, sent = bytes(size), 0
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.session.send_event({"blob": blob}, to=self.honest)
            sent += 1
            await asyncio.sleep(min(every_s, max(0.0, end - loop.time())))
        return {"sent": sent}

    async def cmd_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def cmd_close(self) -> dict[str, Any]:
        for task in self._tasks:
            task.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None
        return {}


class Honest:
    """The honest player: 100 B state to the victim at 60 Hz, echo RTT per message."""

    def __init__(self) -> None:
        self.session: Any = None
        self.victim: str | None = None
        self.collector: EchoCollector | None = None
        self.echo_times: list[float] = []
        self.snap_times: list[float] = []
        self.events: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def cmd_join(self, url: str, room: str, victim: str) -> dict[str, Any]:
        import netcode

        self.victim = victim
        self.session = await netcode.connect(url, room=room, config=_session_config())
        await self.session.wait_for_peers(1, timeout=30.0)
        self._task = asyncio.ensure_future(self._consume())
        return {"peer_id": self.session.peer_id}

    async def _consume(self) -> None:
        from netcode.events import EventReceived, SnapshotReceived, StateReceived

        async for ev in self.session:
            self.events[type(ev).__name__] += 1
            if getattr(ev, "peer_id", None) != self.victim:
                continue
            if isinstance(ev, StateReceived) and self.collector is not None:
                self.echo_times.append(time.monotonic())
                self.collector(ev.data)
            elif isinstance(ev, SnapshotReceived):
                self.snap_times.append(time.monotonic())
            elif isinstance(ev, EventReceived):
                self.events["big_event_bytes"] += len(ev.data.get("blob", b""))

    async def cmd_measure(self, seg: int, seconds: float, drain_s: float) -> dict[str, Any]:
        messages = int(seconds * RATE_HZ)
        self.collector = EchoCollector(seg, messages)
        self.echo_times, self.snap_times, self.events = [], [], Counter()
        loop = asyncio.get_running_loop()
        start, t0 = loop.time(), time.monotonic()
        for n in range(messages):
            await asyncio.sleep(max(0.0, start + n / RATE_HZ - loop.time()))  # 60 Hz sender
            self.session.send_state(
                make_payload(seg, n, time.monotonic(), PAYLOAD_BYTES), to=self.victim
            )
        t_last = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.collector.done.wait(), drain_s)
        rtts = list(self.collector.rtt.values())
        self.collector = None
        return {
            "sent": messages,
            "echoed": len(rtts),
            "rtt_ms": rtts,
            "max_echo_gap_ms": _max_gap(self.echo_times, t0, t_last),
            "snapshots": len(self.snap_times),
            "max_snapshot_gap_ms": _max_gap(self.snap_times, t0, t_last),
            "events": dict(self.events),
        }

    async def cmd_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def cmd_close(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None
        return {}


def _max_gap(times: list[float], start: float, end: float) -> float | None:
    """Longest stretch (ms) within [start, end] without an arrival."""
    points = [start, *(t for t in times if start <= t <= end), end]
    return round(max(b - a for a, b in itertools.pairwise(points)) * 1000.0, 1)


async def _serve_role(role: str) -> None:
    from netcode.net.rtc import install_host_filter

    install_host_filter()
    handler: Victim | Honest = Victim() if role == "victim" else Honest()
    try:
        await serve_json_lines(handler)
    finally:
        with contextlib.suppress(Exception):
            await handler.cmd_close()


# --------------------------------------------------------------------------- parent side


class Child:
    """A child process speaking JSON lines (``python -m <module> [args]``)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self._ids = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT), env=env, limit=1 << 24,
        )  # fmt: skip
        child = cls(proc, name)
        await child.call("ping", wait_s=60.0)
        return child

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    async def call(self, cmd: str, wait_s: float = 60.0, **kwargs: Any) -> dict[str, Any]:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self._ids += 1
            self.proc.stdin.write(
                json.dumps({"id": self._ids, "cmd": cmd, **kwargs}).encode() + b"\n"
            )
            await self.proc.stdin.drain()
            raw = await asyncio.wait_for(self.proc.stdout.readline(), wait_s)
        if not raw:
            raise RuntimeError(f"{self.name} exited during {cmd!r}")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.pop("ok", False):
            raise RuntimeError(f"{self.name}: {cmd}: {reply.get('error')}")
        reply.pop("id", None)
        return reply

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("close", wait_s=15.0)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Sampler:
    """Peak RSS of one process, sampled every 50 ms while a segment runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.pid))
            await asyncio.sleep(0.05)  # sampling period

    async def stop(self) -> float:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, rss_mb(self.pid))
        return self.peak


class Bench:
    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.victim: Child
        self.honest: Child
        self.rogue: Child
        self.room = ""
        self.victim_id = ""
        self.rogue_id: str | None = None
        self.seg = 0
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    async def start(self) -> None:
        self.victim, self.honest, self.rogue = await asyncio.gather(
            Child.start("victim", "benchmarks.adversarial", "--role", "victim"),
            Child.start("honest", "benchmarks.adversarial", "--role", "honest"),
            Child.start("rogue", "benchmarks._rogue"),
        )
        created = await self.victim.call("create", url=self.url)
        self.room, self.victim_id = created["room"], created["peer_id"]
        joined = await self.honest.call("join", url=self.url, room=self.room, victim=self.victim_id)
        await self.victim.call("honest", peer_id=joined["peer_id"])

    async def fresh_rogue(self) -> None:
        """A new rogue (new lobby id) connected to the victim, for one segment."""
        joined = await self.rogue.call("join", url=self.url, room=self.room, victim=self.victim_id)
        self.rogue_id = joined["peer_id"]

    async def cool_down(self) -> None:
        """Between segments: the rogue leaves, so nothing it queued bleeds into the next
        attack, and the victim gets a moment to finish what it already received."""
        await self.rogue.call("close")
        await asyncio.sleep(self.settings.cool_down_s)  # idle gap between measurements
        await self.victim.call("ping")  # answered by the victim's loop: it is responsive

    def _rogue_action(self, spec: AttackSpec) -> Callable[[], Awaitable[dict[str, Any]]]:
        s, victim = self.settings, self.victim_id
        if spec.kind == "attack":
            return lambda: self.rogue.call(
                "attack", name=spec.key, victim=victim, seconds=s.seconds
            )
        if spec.kind == "nopoll":
            # Within the rate budget, but enough to fill the queue 1.5 times over.
            defaults = _session_config()
            rate = min(
                0.9 * defaults.budget.event_msgs_per_s,
                1.5 * defaults.max_queued_events / s.seconds,
            )

            async def nopoll() -> dict[str, Any]:
                paused, flood = await asyncio.gather(
                    self.victim.call("pause", seconds=s.seconds),
                    self.rogue.call(
                        "attack", name=spec.key, victim=victim, seconds=s.seconds, rate=rate
                    ),
                )
                return {**flood, **paused}

            return nopoll
        if spec.kind == "churn":

            async def cycles() -> dict[str, Any]:
                half = s.churn_cycles // 2
                bye = await self.rogue.call("churn", victim=victim, cycles=half, rejoin=False)
                rejoin = await self.rogue.call("churn", victim=victim, cycles=half, rejoin=True)
                return {"name": "churn", "cycles": bye["packets"] + rejoin["packets"]}

            return cycles
        if spec.kind == "big_event":
            return lambda: self.victim.call(
                "big_events", seconds=s.seconds, every_s=2.0, size=BIG_EVENT_BYTES
            )
        return _idle

    async def segment(self, spec: AttackSpec) -> dict[str, Any]:
        await self.fresh_rogue()
        await self.victim.call("window")
        self.seg += 1
        pid = self.victim.pid
        procs = {c.name: c.pid for c in (self.victim, self.honest, self.rogue)}
        rss0, wall0 = rss_mb(pid), time.monotonic()
        cpu0 = {name: cpu_s(p) for name, p in procs.items()}
        sampler = Sampler(pid)
        measured, rogue = await asyncio.gather(
            self.honest.call(
                "measure",
                seg=self.seg,
                seconds=self.settings.seconds,
                drain_s=self.settings.drain_s,
            ),
            self._rogue_action(spec)(),
        )
        wall = max(1e-9, time.monotonic() - wall0)
        cpu = {name: round((cpu_s(p) - cpu0[name]) / wall, 3) for name, p in procs.items()}
        peak = await sampler.stop()
        report = await self.victim.call("report", rogue=self.rogue_id)
        await self.cool_down()
        rtts: list[float] = measured.pop("rtt_ms")
        return {
            "label": spec.label,
            "rtt_ms": summarize(rtts),
            "echo_pct": round(100.0 * len(rtts) / max(1, measured["sent"]), 1),
            "honest": measured,
            "victim": {
                "rss_start_mb": round(rss0, 1),
                "rss_growth_mb": round(peak - rss0, 1),
                "cpu_s_per_s": cpu["victim"],
                **report,
            },
            "rogue": rogue,
            "cpu_s_per_s": cpu,
        }

    async def run_all(self, progress: Callable[[str], None]) -> None:
        for spec in ATTACK_LIST:
            if self.settings.only and spec.key not in self.settings.only:
                continue
            progress(spec.key)
            try:
                if spec.key == "baseline_lossy":
                    await self.victim.call("conditions", conditions=LOSSY)
                self.results[spec.key] = await self.segment(spec)
            except Exception as exc:  # recorded in the JSON; the other attacks still run
                self.errors[spec.key] = f"{type(exc).__name__}: {exc}"


async def _idle() -> dict[str, Any]:
    return {"name": "idle"}


# --------------------------------------------------------------------------- goals, table


def evaluate(results: dict[str, Any]) -> None:
    """Per attack: p99 ratio against its baseline, RSS growth; ``goal_met`` per row."""
    for spec in ATTACK_LIST:
        cell = results.get(spec.key)
        if cell is None or spec.kind == "baseline":
            continue
        base_key = "baseline_lossy" if spec.kind == "big_event" else "baseline"
        base = (results.get(base_key) or {}).get("rtt_ms", {}).get("p99")
        p99 = cell["rtt_ms"]["p99"]
        ratio = round(p99 / base, 2) if p99 is not None and base else None
        cell["baseline"] = base_key
        cell["p99_ratio"] = ratio
        rtt_ok = None if not spec.rtt_goal else ratio is not None and ratio <= RTT_RATIO_GOAL
        rss_ok = cell["victim"]["rss_growth_mb"] <= RSS_GOAL_MB
        cell["goal"] = {
            "rtt_p99_le_2x": rtt_ok,
            "rss_le_50mb": rss_ok,
            "met": rss_ok and rtt_ok is not False,
        }


def _verdict(cell: dict[str, Any]) -> str:
    v = cell["victim"]
    stats = v.get("rogue_stats") or {}
    bits = [f"lost:{r}" for r in sorted(set(v.get("lost", {}).values()))]
    for key in ("rate_limited", "pings_ignored", "unmatched_pongs", "bad_packets"):
        if stats.get(key):
            bits.append(f"{key}={stats[key]}")
    if cell.get("label", "").startswith("churn"):
        bits.append(f"pcs={v['peer_connections']}")
    return " ".join(bits) or "-"


COLUMNS = [
    "attack", "rogue pkts", "echo p50", "p99", "p99/base", "echo %", "max gap ms",
    "RSS +MB", "CPU", "queue max", "victim did", "goal",
]  # fmt: skip


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for spec in ATTACK_LIST:
        c = results.get(spec.key)
        if c is None:
            continue
        rtt, v, goal = c["rtt_ms"], c["victim"], c.get("goal")
        met = "-" if goal is None else ("met" if goal["met"] else "NOT met")
        out.append([
            spec.key, _rogue_count(c["rogue"]),
            _fmt(rtt["p50"]), _fmt(rtt["p99"]), _fmt(c.get("p99_ratio")), _fmt(c["echo_pct"], 0),
            _fmt(c["honest"]["max_echo_gap_ms"], 0), _fmt(v["rss_growth_mb"], 1),
            f"{100 * v['cpu_s_per_s']:.0f} %", str(v["max_queued_events"]), _verdict(c), met,
        ])  # fmt: skip
    return out


def _rogue_count(rogue: dict[str, Any]) -> str:
    for key in ("packets", "cycles", "sent"):
        if key in rogue:
            return str(rogue[key])
    return "-"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(results: dict[str, Any]) -> str:
    return markdown_rows(COLUMNS, rows(results))


def print_table(results: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i in (0, 10) else "right")
    for r in rows(results):
        table.add_row(*r)
    Console(stderr=True, width=None if sys.stderr.isatty() else 200).print(table)


# --------------------------------------------------------------------------- main


async def run(
    settings: Settings, progress: Callable[[str], None] = lambda _s: None
) -> dict[str, Any]:
    import netcode

    started = datetime.datetime.now(datetime.UTC)
    lobby = await netcode.serve_lobby(host="127.0.0.1", port=0)
    bench = Bench(settings, lobby.url)
    try:
        await bench.start()
        await bench.run_all(progress)
    except Exception as exc:
        bench.errors["setup"] = f"{type(exc).__name__}: {exc}"
    finally:
        children = [c for c in ("rogue", "honest", "victim") if hasattr(bench, c)]
        for name in children:  # the rogue and the honest peer leave before the victim
            await getattr(bench, name).close()
        await lobby.close()
    evaluate(bench.results)
    return {
        "schema": 1,
        "quick": settings.quick,
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "note": "shared 2-core machine; victim, honest peer, rogue and lobby in 4 processes",
        },
        "config": {
            "segment_s": settings.seconds,
            "rate_hz": RATE_HZ,
            "payload_bytes": PAYLOAD_BYTES,
            "churn_cycles": settings.churn_cycles,
            "lossy": LOSSY,
            "goals": f"honest echo p99 <= {RTT_RATIO_GOAL}x baseline, "
            f"victim RSS growth <= {RSS_GOAL_MB} MB",
        },
        "attacks": {s.key: s.label for s in ATTACK_LIST},
        "results": bench.results,
        "goals_met": all(c.get("goal", {}).get("met", True) for c in bench.results.values()),
        "errors": bench.errors,
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.adversarial", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short run (< 60 s), same schema")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per attack segment")
    parser.add_argument(
        "--only", default="", help="comma-separated attack keys (baselines are always run)"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--role", choices=("victim", "honest"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.role is not None:
        asyncio.run(_serve_role(args.role))
        return 0
    only = frozenset(k for k in args.only.split(",") if k)
    unknown = only - {s.key for s in ATTACK_LIST}
    if unknown:
        print(f"unknown attack keys: {sorted(unknown)}", file=sys.stderr)
        return 2
    settings = Settings(args.quick, args.seconds, only)
    doc = asyncio.run(
        run(settings, lambda key: print(f"segment: {key}", file=sys.stderr, flush=True))
    )
    stem = "adversarial-quick" if args.quick else "adversarial"
    write_json(args.out / f"{stem}.json", doc)
    print_table(doc["results"], f"Hostile peers ({settings.seconds:g} s per attack)")
    if args.markdown:
        print(markdown_table(doc["results"]))
    if doc["errors"]:
        print(f"errors: {doc['errors']}", file=sys.stderr)
    print(f"wrote {args.out / stem}.json in {doc['duration_s']} s", file=sys.stderr)
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
