"""Side-by-side latency benchmark: netcode vs bare aiortc vs websocket relay vs raw UDP.

Run: ``python -m benchmarks.latency [--quick] [--out DIR] [--ab-only]`` (``make bench``).

Seven paths (netcode state through the event queue, through an ``on_state``
handler, and with ``state_copies=2``; netcode reliable; bare aiortc; websocket
relay; raw UDP), 100 B and 1000 B msgpack payloads at 60 Hz, each echoed by a
peer in a separate process, under six network conditions (clean, 2/5/10 %
loss, 20±5 ms one-way, 5 % + 20±5 ms). Per path and condition: echo RTT
percentiles, delivery, state age at the receiver, CPU per 1000 messages on
each side, bytes on the wire. Plus an interleaved A/B of netcode vs bare
aiortc on a clean link, netcode connect time for 2/4/8 peers, max sustained
state rate and snapshot sizes (``benchmarks.snapshots`` if present). Writes
``latency.json`` + ``latency.png`` (``latency-quick.*`` with --quick) to
``benchmarks/results`` or ``--out``; ``--ab-only`` runs only the A/B rounds
and writes ``latency-ab.json``. docs/BENCHMARKS.md explains columns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks._common import (
    CONDITIONS,
    KERNEL_WS,
    RATE_HZ,
    SIZES,
    TRANSPORTS,
    Condition,
    make_payload,
    summarize,
)
from benchmarks._report import (
    ab_table,
    evaluate_goals,
    markdown_redundancy,
    plot_cdf,
    redundancy_summary,
    results_table,
    write_json,
)
from benchmarks._runner import (
    ROOT,
    PeerProcess,
    ab_ratios,
    measure_idle,
    run_ab_rounds,
    run_segment,
)
from benchmarks._transports import (
    LOOPBACK,
    Client,
    KernelLossWsClient,
    NetcodeClient,
    RtcClient,
    UdpClient,
    WireCounter,
    WsClient,
    open_session,
    pin_loopback,
    session_config,
)

__all__ = ["Settings", "main", "run", "run_ab_only"]

SEED = 1000
ClientFactory = Callable[[contextlib.AsyncExitStack], Awaitable[dict[str, Client]]]
BARE = "aiortc_unordered"
AB_PATHS = (BARE, "netcode_state", "netcode_state_handler")


class Settings:
    def __init__(
        self,
        quick: bool,
        messages: int | None = None,
        kernel_loss: bool = False,
        *,
        ab_only: bool = False,
        ab_rounds: int | None = None,
        ab_interleave: bool = True,
        paths: tuple[str, ...] | None = None,
        conditions: tuple[str, ...] | None = None,
        seed: int = SEED,
    ) -> None:
        self.quick = quick
        # A subset (--paths/--conditions) runs only those cells: no A/B, connect,
        # max rate or snapshots. Seeds follow the condition's place in the full grid.
        self.paths = paths
        self.conditions = tuple(c for c in CONDITIONS if conditions is None or c.key in conditions)
        self.subset = paths is not None or conditions is not None
        self.seed = seed
        self.kernel_loss = kernel_loss
        self.messages = messages or (15 if quick else 300)
        self.reliable_drain_s = 1.5 if quick else 5.0
        self.connect_reps = {2: 3, 4: 1, 8: 1} if quick else {2: 10, 4: 5, 8: 3}
        self.rate_seconds = 1.0 if quick else 3.0
        # A/B: short rounds, so load drift between rounds shows up as the range.
        self.ab_rounds = ab_rounds or ((2 if quick else 6) if ab_only else (1 if quick else 3))
        self.ab_messages = 60 if quick else (300 if ab_only else 200)
        self.ab_interleave = ab_interleave
        self.idle_seconds = 0.3 if quick else 1.0


def _drain_s(settings: Settings, transport: str, cond: Condition) -> float:
    base = 2.0 * cond.one_way_max_s + 0.05  # reorder hold is 0 here: no reorder in the grid
    if transport in ("netcode_reliable", "websocket_relay", "websocket_relay_kernel"):
        return base + settings.reliable_drain_s
    return base + 0.15


class Bench:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.settings = settings
        self.progress = progress
        self.task = progress.add_task("starting", total=self._total())
        self.results: dict[str, Any] = {}
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.errors: dict[str, str] = {}
        self.seg = 0
        self.extras: dict[str, Any] = {"max_rate": {}}
        self.idle: dict[str, dict[str, float]] = {}
        # After a group's segments: (label, send function returning "accepted").
        self._rate_probe: tuple[str, Callable[[dict[str, Any]], bool]] | None = None
        self.peer: PeerProcess

    def _total(self) -> int:
        paths = len(TRANSPORTS) + (1 if self.settings.kernel_loss else 0)
        if self.settings.paths is not None:
            paths = len(self.settings.paths)
        segments = paths * len(self.settings.conditions) * len(SIZES)
        return segments + sum(self.settings.connect_reps.values()) + 3  # max rates, A/B

    def step(self, description: str) -> None:
        self.progress.update(self.task, description=description)
        self.progress.refresh()

    def advance(self, n: int = 1) -> None:
        # Refreshed by hand: rich's refresh thread would add its CPU to the
        # sender's process_time.
        self.progress.advance(self.task, n)
        self.progress.refresh()

    async def run_group(self, keys: list[str], factory: ClientFactory) -> None:
        """Set up the clients of ``keys``, run every condition x size, tear down."""
        if self.settings.paths is not None and not set(keys) & set(self.settings.paths):
            return
        per = len(self.settings.conditions) * len(SIZES)
        try:
            # Our side closes first (exit stack), then the echo peer's, so no
            # session sees its lobby vanish under it.
            async with contextlib.AsyncExitStack() as stack:
                self.step(f"{'/'.join(keys)}: connecting")
                clients = await factory(stack)
                for key in keys:
                    await self._run_transport(key, clients[key])
                if self._rate_probe is not None:
                    await self._max_rate_safely()
        except Exception as exc:  # recorded in the JSON; the other paths still run
            for key in keys:
                self.errors[key] = f"{type(exc).__name__}: {exc}"
                done = sum(len(v) for v in self.results.get(key, {}).values())
                self.advance(per - done)
        finally:
            self._rate_probe = None
            with contextlib.suppress(Exception):
                await self.peer.call("close_all")

    async def _max_rate_safely(self) -> None:
        assert self._rate_probe is not None
        (label, send), self._rate_probe = self._rate_probe, None
        try:
            self.extras["max_rate"][label] = await self.max_rate(label, send)
        except Exception as exc:
            self.errors[f"max_rate/{label}"] = f"{type(exc).__name__}: {exc}"
        self.advance()

    async def _run_transport(self, key: str, client: Client) -> None:
        out: dict[str, Any] = self.results.setdefault(key, {})
        # Warm-up, not recorded: first messages on a fresh connection pay for
        # lazy allocations and SCTP's initial window.
        self.step(f"{key}: warm-up")
        self.seg += 1
        await run_segment(
            client, self.peer, seg=self.seg, cond=CONDITIONS[0], size=SIZES[0],
            messages=10, drain_s=1.0,
        )  # fmt: skip
        self.step(f"{key}: idle CPU")
        idle = await measure_idle(self.peer, self.settings.idle_seconds)
        self.idle[key] = {"sender": round(idle.sender, 4), "receiver": round(idle.receiver, 4)}
        for cond in self.settings.conditions:
            await client.set_conditions(cond, self.settings.seed + 10 * CONDITIONS.index(cond))
            for size in SIZES:
                self.step(f"{key}: {cond.label}, {size} B")
                self.seg += 1
                res = await run_segment(
                    client, self.peer, seg=self.seg, cond=cond, size=size,
                    messages=self.settings.messages,
                    drain_s=_drain_s(self.settings, key, cond), idle=idle,
                )  # fmt: skip
                out.setdefault(cond.key, {})[str(size)] = res.metrics
                if size == SIZES[0]:
                    self.samples.setdefault(key, {})[cond.key] = res.rtt_ms
                self.advance()
        await client.set_conditions(CONDITIONS[0], self.settings.seed)

    # -- groups ----------------------------------------------------------

    async def udp(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        port = (await self.peer.call("udp_start"))["port"]
        client = UdpClient()
        await client.open(port)
        stack.push_async_callback(client.close)
        return {"udp_raw": client}

    async def websocket(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        url = (await self.peer.call("ws_start"))["url"]
        client = WsClient()
        await client.open(url)
        stack.push_async_callback(client.close)
        return {"websocket_relay": client}

    async def aiortc(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        client = RtcClient()
        stack.push_async_callback(client.close)
        offer = await client.offer()
        answer = await self.peer.call("rtc_answer", sdp=offer["sdp"], type=offer["type"])
        await client.accept(answer)
        self._rate_probe = ("aiortc_unordered", client.send_if_room)
        return {"aiortc_unordered": client}

    async def _netcode_pair(
        self, stack: contextlib.AsyncExitStack, name: str, *, handler: bool, copies: int = 1
    ) -> tuple[NetcodeClient, NetcodeClient]:
        """A netcode session linked to the peer's echo session ``name``: (state, events).

        ``handler``: both sides take state from ``on_state`` (receive path); else
        from the event queue. Everything else always drains through the queue.
        """
        from netcode.events import EventReceived, StateReceived

        info = await self.peer.call(
            "netcode_start", name=name, handler=handler, state_copies=copies
        )
        config = session_config(copies)
        session = await open_session(stack, info["url"], room=info["room"], config=config)
        await session.wait_for_peers(1, timeout=15.0)
        peer_id = next(iter(session.peers))
        kw: dict[str, Any] = {"remote": self.peer.call, "echo": name}
        state = NetcodeClient(session, peer_id, reliable=False, **kw)
        events = NetcodeClient(session, peer_id, reliable=True, **kw)
        if handler:
            # Looked up per call: the runner swaps on_echo for every segment.
            session.on_state(lambda ev: state.on_echo(ev.data))

        async def dispatch() -> None:
            async for ev in session:
                if isinstance(ev, StateReceived):
                    state.on_echo(ev.data)
                elif isinstance(ev, EventReceived):
                    events.on_echo(ev.data)

        task = asyncio.ensure_future(dispatch())
        stack.callback(task.cancel)
        return state, events

    async def netcode(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        state, events = await self._netcode_pair(stack, "poll", handler=False)
        session, peer_id = state.session, state.peer_id
        self._rate_probe = (
            "netcode_state",
            lambda obj: bool(session.send_state(obj, to=peer_id)),
        )
        return {"netcode_state": state, "netcode_reliable": events}

    async def netcode_handler(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        state, _ = await self._netcode_pair(stack, "handler", handler=True)
        return {"netcode_state_handler": state}

    async def netcode_x2(self, stack: contextlib.AsyncExitStack) -> dict[str, Client]:
        state, _ = await self._netcode_pair(stack, "x2", handler=True, copies=2)
        return {"netcode_state_x2": state}

    async def kernel_loss_websocket(self) -> dict[str, Any]:
        """The websocket relay with real (kernel) packet loss, echo peer in a namespace."""
        from benchmarks import _netns

        reason = _netns.available()
        if reason is not None:
            self.advance(len(self.settings.conditions) * len(SIZES))
            return {"ran": False, "why": reason}
        link = _netns.KernelLossLink.create(os.getpid())
        main_peer = self.peer
        try:
            self.peer = await PeerProcess.start(prefix=link.exec_prefix())
            try:

                async def factory(stack: contextlib.AsyncExitStack) -> dict[str, Client]:
                    url = (await self.peer.call("ws_start", host=link.ns_ip))["url"]
                    client = KernelLossWsClient(link.set_loss)
                    await client.open(url)
                    stack.push_async_callback(client.close)
                    return {KERNEL_WS.key: client}

                await self.run_group([KERNEL_WS.key], factory)
            finally:
                await self.peer.close()
        finally:
            self.peer = main_peer
            link.close()
        return {"ran": True, "namespace": link.ns, "veth": [link.host_ip, link.ns_ip]}

    # -- extras ------------------------------------------------------------

    async def overhead_ab(self) -> dict[str, Any] | None:
        """Bare aiortc vs netcode poll vs netcode handler: all open, clean link, in rounds."""
        s = self.settings
        self.step(f"A/B: {s.ab_rounds} rounds x {s.ab_messages} messages")
        try:
            async with contextlib.AsyncExitStack() as stack:
                clients: dict[str, Client] = {
                    **await self.aiortc(stack),
                    "netcode_state": (await self.netcode(stack))["netcode_state"],
                    **await self.netcode_handler(stack),
                }
                self._rate_probe = None
                self.seg += 10
                t0 = await _cpu_now(self.peer)
                per_round = await run_ab_rounds(
                    clients, first_seg=self.seg, rounds=s.ab_rounds, messages=s.ab_messages,
                    size=SIZES[0], drain_s=1.0, interleave=s.ab_interleave,
                )  # fmt: skip
                t1 = await _cpu_now(self.peer)
                self.seg += len(clients) * s.ab_rounds
        except Exception as exc:
            self.errors["overhead_ab"] = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            self._rate_probe = None
            with contextlib.suppress(Exception):
                await self.peer.call("close_all")
            self.advance()
        return _ab_document(s, per_round, t0, t1)

    async def max_rate(self, label: str, send: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Offer state as fast as the loop allows; count what the peer receives.

        ``send`` returns False when the sender drops the message (backpressure).
        """
        self.step(f"{label}: max state rate")
        self.seg += 1
        begin = await self.peer.call("seg_begin", seg=self.seg, echo=False)
        offered = accepted = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + self.settings.rate_seconds
        while loop.time() < end:
            for _ in range(20):
                offered += 1
                accepted += send(make_payload(self.seg, offered, time.monotonic(), SIZES[0]))
            await asyncio.sleep(0)
        elapsed = loop.time() - start
        await asyncio.sleep(0.3)  # let in-flight datagrams land before counting
        res = await self.peer.call("seg_end", t_last=time.monotonic(), window=0.0)
        return {
            "payload_bytes": SIZES[0],
            "seconds": round(elapsed, 2),
            "received_per_s": round(res["received"] / elapsed),
            "accepted_per_s": round(accepted / elapsed),
            "offered_per_s": round(offered / elapsed),
            "receiver_cpu_ms_per_1000": round(
                (res["cpu"] - begin["cpu"]) * 1e6 / max(1, res["received"]), 2
            ),
        }

    async def connect_times(self) -> dict[str, Any]:
        """Join -> every peer connected (channels open), n peers in one process."""
        import netcode

        out: dict[str, Any] = {}
        async with await netcode.serve_lobby(host=LOOPBACK, port=0) as server:
            for n, reps in self.settings.connect_reps.items():
                times = []
                for _ in range(reps):
                    self.step(f"connect time: {n} peers")
                    times.append(await self._mesh_once(server.url, n))
                    self.advance()
                out[str(n)] = {
                    "samples_ms": [round(t, 1) for t in times],
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                }
        return out

    async def _mesh_once(self, url: str, n: int) -> float:
        async with contextlib.AsyncExitStack() as stack:
            host = await open_session(stack, url, create=True, max_players=n)
            t0 = time.perf_counter()

            async def join() -> Any:
                return await open_session(stack, url, room=host.room, max_players=n)

            sessions = [host, *await asyncio.gather(*(join() for _ in range(n - 1)))]
            await asyncio.gather(*(s.wait_for_peers(n - 1, timeout=30.0) for s in sessions))
            return (time.perf_counter() - t0) * 1000.0


async def _cpu_now(peer: PeerProcess) -> dict[str, float]:
    """CPU seconds so far of this process and the echo peer, and the wall clock."""
    reply = await peer.call("ping")
    return {"sender": time.process_time(), "peer": reply["cpu"], "wall": time.monotonic()}


def _ab_document(
    s: Settings, per_round: list[dict[str, list[float]]], t0: dict[str, float], t1: dict[str, float]
) -> dict[str, Any]:
    pooled: dict[str, list[float]] = {}
    for rtts in per_round:
        for key, values in rtts.items():
            pooled.setdefault(key, []).extend(values)
    wall = max(1e-9, t1["wall"] - t0["wall"])
    return {
        "paths": {k: {"rtt_ms": summarize(v), "echoed": len(v)} for k, v in pooled.items()},
        "per_round": [
            {k: summarize(v, (50, 99)) | {"echoed": len(v)} for k, v in rtts.items()}
            for rtts in per_round
        ],
        "ratio_p50": ab_ratios(per_round, BARE, 50),
        "ratio_p99": ab_ratios(per_round, BARE, 99),
        "rounds": s.ab_rounds,
        "messages_per_round": s.ab_messages,
        "payload_bytes": SIZES[0],
        "interleave": "tick" if s.ab_interleave else "segment",
        "wall_s": round(wall, 1),
        # Both processes together, all three connections: the load this A/B put on
        # the machine (per-path CPU cannot be separated when sends interleave).
        "cpu_s_per_s": {
            "sender": round((t1["sender"] - t0["sender"]) / wall, 3),
            "peer": round((t1["peer"] - t0["peer"]) / wall, 3),
        },
    }


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "note": "shared 2-core machine; other work may run concurrently",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run(settings: Settings, console: Console | None = None) -> dict[str, Any]:
    """Run every measurement; returns the JSON-able result document."""
    pin_loopback()
    WireCounter.install()
    console = console or Console(stderr=True)
    started = datetime.datetime.now(datetime.UTC)
    with Progress(
        TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False, auto_refresh=False,
    ) as progress:  # fmt: skip
        bench = Bench(settings, progress)
        bench.extras["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
        bench.peer = await PeerProcess.start()
        try:
            await bench.run_group(["udp_raw"], bench.udp)
            await bench.run_group(["websocket_relay"], bench.websocket)
            await bench.run_group(["aiortc_unordered"], bench.aiortc)
            await bench.run_group(["netcode_state", "netcode_reliable"], bench.netcode)
            await bench.run_group(["netcode_state_handler"], bench.netcode_handler)
            await bench.run_group(["netcode_state_x2"], bench.netcode_x2)
            if not settings.subset:
                bench.extras["overhead_ab"] = await bench.overhead_ab()
        finally:
            await bench.peer.close()
        if settings.kernel_loss:
            bench.extras["kernel_loss"] = await bench.kernel_loss_websocket()
        connect: dict[str, Any] = {}
        try:
            if not settings.subset:
                connect = await bench.connect_times()
        except Exception as exc:
            bench.errors["connect"] = f"{type(exc).__name__}: {exc}"
        bench.step("done")
    return _document(settings, bench, connect, started)


async def run_ab_only(settings: Settings, console: Console | None = None) -> dict[str, Any]:
    """Only the A/B rounds (clean link): bare aiortc vs netcode poll vs netcode handler."""
    pin_loopback()
    WireCounter.install()
    console = console or Console(stderr=True)
    started = datetime.datetime.now(datetime.UTC)
    machine = _machine()
    with Progress(
        TextColumn("{task.description:<40}"), BarColumn(), TimeElapsedColumn(),
        console=console, transient=False, auto_refresh=False,
    ) as progress:  # fmt: skip
        bench = Bench(settings, progress)
        bench.peer = await PeerProcess.start()
        try:
            ab = await bench.overhead_ab()
        finally:
            await bench.peer.close()
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "schema": 1,
        "quick": settings.quick,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "overhead_ab": ab,
        "errors": bench.errors,
        "goals": evaluate_goals({}, {}, ab),
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
    }


def _snapshots(quick: bool) -> Any:
    try:
        from benchmarks import snapshots
    except ImportError:
        return None
    try:
        result: Any = snapshots.run(quick)
        return result
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _document(
    settings: Settings, bench: Bench, connect: dict[str, Any], started: datetime.datetime
) -> dict[str, Any]:
    machine = _machine()
    machine["loadavg_start"] = bench.extras.get("loadavg_start")
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["sender_cpu_s"] = round(time.process_time(), 1)
    return {
        "schema": 1,
        "quick": settings.quick,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "rate_hz": RATE_HZ,
            "messages_per_segment": settings.messages,
            "sizes": list(SIZES),
            "clock": "time.monotonic (CLOCK_MONOTONIC, shared by both processes)",
            "echo_peer": "separate process (python -m benchmarks._peer)",
        },
        "transports": {
            t.key: dataclasses.asdict(t)
            for t in (*TRANSPORTS, *([KERNEL_WS] if settings.kernel_loss else []))
        },
        "kernel_loss": bench.extras.get("kernel_loss"),
        "conditions": {c.key: dataclasses.asdict(c) for c in settings.conditions},
        "seed": settings.seed,
        "results": bench.results,
        "connect": connect,
        "max_rate": bench.extras.get("max_rate"),
        "overhead_ab": bench.extras.get("overhead_ab"),
        "redundancy": redundancy_summary(bench.results),
        "idle_cpu_s_per_s": bench.idle,
        "snapshots": None if settings.subset else _snapshots(settings.quick),
        "errors": bench.errors,
        "goals": evaluate_goals(bench.results, connect, bench.extras.get("overhead_ab")),
        "_samples": bench.samples,
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short run (< 60 s), same schema")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--messages", type=int, default=None, help="messages per segment")
    parser.add_argument(
        "--kernel-loss",
        action="store_true",
        help="also run the websocket relay with real packet loss (root, ip, nft: a netns)",
    )
    parser.add_argument(
        "--ab-only",
        action="store_true",
        help="only the A/B rounds on a clean link: bare aiortc vs netcode poll vs handler",
    )
    parser.add_argument("--ab-rounds", type=int, default=None, help="A/B rounds (default 6)")
    parser.add_argument(
        "--paths", default=None, help="only these paths (comma-separated keys): a subset run"
    )
    parser.add_argument(
        "--conditions", default=None, help="only these conditions (comma-separated keys)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="impairment seed base")
    parser.add_argument(
        "--ab-segments",
        action="store_true",
        help="A/B: one path at a time per round (rotating) instead of sends in the same ticks",
    )
    args = parser.parse_args(argv)
    known = {t.key for t in (*TRANSPORTS, KERNEL_WS)}, {c.key for c in CONDITIONS}
    for given, valid in zip((args.paths, args.conditions), known, strict=True):
        unknown = set(_keys(given) or ()) - valid
        if unknown:
            parser.error(f"unknown {sorted(unknown)}; choose from {sorted(valid)}")
    return args


def _print(console: Console, doc: dict[str, Any]) -> None:
    for size in SIZES:
        console.print(results_table(doc["results"], size, f"{size} B msgpack at {RATE_HZ} Hz"))
    console.print("connect (join -> all connected):", doc["connect"])
    console.print("max state rate (100 B):", doc["max_rate"])
    if doc["overhead_ab"]:
        console.print(ab_table(doc["overhead_ab"]))
    for size in SIZES if doc["redundancy"] else ():
        console.print(f"redundancy, state_copies=2 vs 1 (handler rows), {size} B:")
        console.print(markdown_redundancy(doc["redundancy"], size), markup=False)
    for goal in doc["goals"]:
        mark = "[green]met[/]" if goal["met"] else "[red]NOT met[/]"
        console.print(f"{mark} {goal['goal']}: {goal['measured']} (target {goal['target']})")
    if doc["errors"]:
        console.print("[red]errors:[/]", doc["errors"])


def _main_ab(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    doc = asyncio.run(run_ab_only(settings, console))
    stem = "latency-ab" + ("" if settings.ab_interleave else "-segments")
    path = args.out / f"{stem}{'-quick' if args.quick else ''}.json"
    write_json(path, doc)
    if doc["overhead_ab"]:
        console.print(ab_table(doc["overhead_ab"]))
    for goal in doc["goals"]:
        mark = "[green]met[/]" if goal["met"] else "[red]NOT met[/]"
        console.print(f"{mark} {goal['goal']}: {goal['measured']} (target {goal['target']})")
    console.print(f"wrote {path} in {doc['duration_s']} s")
    return 1 if doc["errors"] else 0


def _keys(arg: str | None) -> tuple[str, ...] | None:
    return None if arg is None else tuple(k.strip() for k in arg.split(",") if k.strip())


def main(argv: list[str]) -> int:
    args = _parse(argv)
    settings = Settings(
        args.quick, args.messages, args.kernel_loss, ab_only=args.ab_only,
        ab_rounds=args.ab_rounds, ab_interleave=not args.ab_segments,
        paths=_keys(args.paths), conditions=_keys(args.conditions), seed=args.seed,
    )  # fmt: skip
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    if args.ab_only:
        return _main_ab(args, settings, console)
    doc = asyncio.run(run(settings, console))
    stem = f"latency-subset-s{settings.seed}" if settings.subset else "latency"
    stem += "-quick" if args.quick else ""
    samples: dict[str, dict[str, list[float]]] = doc.pop("_samples")
    write_json(args.out / f"{stem}.json", doc)
    if not settings.subset:
        plot_cdf(args.out / f"{stem}.png", samples, SIZES[0])
    _print(console, doc)
    console.print(f"wrote {args.out / stem}.json in {doc['duration_s']} s")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
