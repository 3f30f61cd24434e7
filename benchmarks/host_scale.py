"""Host scale: how many clients one host process serves, netcode against bare aiortc.

``python -m benchmarks.host_scale [--quick]``. The host runs in one child
process, the clients in two others (``benchmarks._host_client``); this process
runs the lobby and drives them over JSON lines. For every N clients, every tick
rate and every repeat, the netcode design and the bare aiortc design are set up
and measured one after the other (alternating which goes first), so load drift
on the shared machine hits both alike. The host's CPU-seconds per wall second
(``time.process_time`` in the host process) are the headline figure.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._common import summarize
from benchmarks._host_client import BARE_BYTES, CHANGING, ENTITIES, INPUT_BYTES
from benchmarks._host_report import markdown_tables, plot, print_tables, summarize_cells
from benchmarks._report import write_json
from benchmarks._runner import JsonLinesChild

__all__ = ["FULL", "QUICK", "Settings", "main", "rerender", "run"]

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
MODES = ("netcode", "bare")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    quick: bool
    ns: tuple[int, ...]
    rates: tuple[int, ...]
    repeats: int
    warmup_s: float  # ticking before the window: SCTP windows open, deltas start
    seconds: float  # the measured window
    idle_s: float  # host CPU with every link open and nothing sent
    topology: str = "star"  # the netcode room: "star" (clients link to the host) or "mesh"


FULL = Settings(
    quick=False, ns=(1, 2, 4, 8, 16, 24, 32), rates=(60, 30), repeats=3,
    warmup_s=1.0, seconds=4.0, idle_s=1.0,
)  # fmt: skip
QUICK = Settings(
    quick=True, ns=(1, 4), rates=(60, 30), repeats=1, warmup_s=0.4, seconds=1.2, idle_s=0.3
)


class SetupFailed(Exception):
    """The links of one setup did not all come up in time (reported, not fatal)."""


class Proc(JsonLinesChild):
    """One ``benchmarks._host_client`` child, JSON lines over its stdin/stdout."""

    default_wait_s = 60.0

    @classmethod
    async def start(cls, name: str) -> Proc:
        child = cls(await cls.spawn("benchmarks._host_client"), name)
        try:
            await child.call("ping", wait_s=60.0)
        except BaseException:
            await child.kill()
            raise
        return child

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    async def kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
        await self._proc.wait()

    async def close(self, close_all_s: float = 30.0, exit_s: float = 10.0) -> None:
        await super().close(close_all_s, exit_s)


def split(n: int) -> tuple[int, int]:
    """N clients over the two client processes (the first takes the odd one)."""
    return (n + 1) // 2, n // 2


def setup_timeout(n: int) -> float:
    # A full mesh of N clients is N(N-1)/2 + N handshakes on two busy cores.
    return 20.0 + 1.5 * n


class Bench:
    def __init__(self, settings: Settings, url: str, console: Console) -> None:
        self.settings = settings
        self.url = url
        self.console = console
        self.host: Proc | None = None
        self.clients: list[Proc] = []
        self.cells: list[dict[str, Any]] = []
        self.setups: list[dict[str, Any]] = []
        self.errors: dict[str, str] = {}
        # mode -> where it stopped being measurable (larger N are not tried) and why
        self.capped: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, Any] = {}

    async def start(self) -> None:
        procs = await asyncio.gather(
            *(Proc.start(name) for name in ("host", "clients-a", "clients-b")),
            return_exceptions=True,
        )
        started = [p for p in procs if isinstance(p, Proc)]
        if len(started) < len(procs):
            for proc in started:
                await proc.kill()
            raise RuntimeError(f"a child failed to start: {procs}")
        self.host, *self.clients = started

    async def stop(self) -> None:
        procs = [p for p in (self.host, *self.clients) if p is not None]
        await asyncio.gather(*(p.close() for p in procs), return_exceptions=True)
        for proc in procs:  # belt and braces: nothing outlives the benchmark
            await proc.kill()

    async def _restart_dead(self) -> None:
        if self.host is not None and not self.host.alive:
            self.host = await Proc.start("host")
        for i, proc in enumerate(self.clients):
            if not proc.alive:
                self.clients[i] = await Proc.start(proc.name)

    def _active(self, n: int) -> list[tuple[Proc, int]]:
        return [(p, c) for p, c in zip(self.clients, split(n), strict=True) if c > 0]

    # -- setup -----------------------------------------------------------

    async def _setup_netcode(self, n: int) -> dict[str, Any]:
        assert self.host is not None
        info = await self.host.call(
            "nc_host", url=self.url, max_players=n + 1, topology=self.settings.topology
        )
        room, host_id = info["room"], info["peer_id"]
        timeout = setup_timeout(n)
        await asyncio.gather(
            *(
                p.call("nc_join", wait_s=timeout, url=self.url, room=room, host_id=host_id, count=c)
                for p, c in self._active(n)
            )
        )  # fmt: skip
        wait = {"wait_s": timeout + 10, "within_s": timeout}
        meshes = await asyncio.gather(
            *(p.call("nc_wait_mesh", peers=n, **wait) for p, _ in self._active(n)),
            self.host.call("nc_host_wait", n=n, **wait),
        )
        *client_meshes, hosted = meshes
        host_links = sum(m["host_links"] for m in client_meshes)
        out = {
            "host_connected": hosted["connected"],
            "mesh_link_ends": sum(m["links"] for m in client_meshes),
            "mesh_link_ends_expected": n * n,  # each client: the host + N-1 others
        }
        if hosted["connected"] < n or host_links < n:
            raise SetupFailed(
                f"host links up after {timeout} s: {hosted['connected']}/{n} at the host, "
                f"{host_links}/{n} at the clients; mesh link ends "
                f"{out['mesh_link_ends']}/{out['mesh_link_ends_expected']}"
            )
        return out

    async def _setup_bare(self, n: int) -> dict[str, Any]:
        assert self.host is not None
        timeout = setup_timeout(n)
        offers = (await self.host.call("bare_offers", wait_s=timeout, n=n))["offers"]
        batches, i = [], 0
        for proc, count in self._active(n):
            batches.append(proc.call("bare_answer", wait_s=timeout, offers=offers[i : i + count]))
            i += count
        answers = [a for reply in await asyncio.gather(*batches) for a in reply["answers"]]
        accepted = await self.host.call(
            "bare_accept", wait_s=timeout + 10, answers=answers, within_s=timeout
        )
        await asyncio.gather(
            *(
                p.call("bare_wait", wait_s=timeout + 10, within_s=timeout)
                for p, _ in self._active(n)
            )
        )
        if accepted["open"] < n:
            raise SetupFailed(f"{accepted['open']}/{n} bare channels open in {timeout} s")
        return {"host_connected": accepted["open"]}

    # -- measuring ---------------------------------------------------------

    async def _idle(self) -> float:
        """Host CPU-seconds per wall second with every link open and nothing sent."""
        assert self.host is not None
        a = await self.host.call("ping")
        await asyncio.sleep(self.settings.idle_s)  # the idle period being measured
        b = await self.host.call("ping")
        return float((b["cpu"] - a["cpu"]) / max(1e-9, b["wall"] - a["wall"]))

    async def _cell(
        self, mode: str, n: int, rate: int, rep: int, *, profile: bool = False
    ) -> dict[str, Any]:
        assert self.host is not None
        s = self.settings
        plan = {
            "start": time.monotonic() + 0.3,
            "warmup": s.warmup_s,
            "seconds": s.seconds,
            "rate": rate,
        }
        wait = s.warmup_s + s.seconds + 30.0
        active = [p for p, _ in self._active(n)]
        # Client processes tick a third and two thirds of a period after the host,
        # as unsynchronised clients would, not all in the same instant.
        replies = await asyncio.gather(
            self.host.call("run", wait_s=wait, **plan, profile=profile),
            *(p.call("run", wait_s=wait, **plan, phase=(k + 1) / 3) for k, p in enumerate(active)),
        )
        host, clients = replies[0], replies[1:]
        cell = cell_metrics(mode, n, rate, rep, host, clients)
        if profile:
            cell["profile"] = host.get("profile")
        return cell

    async def setup_and_measure(
        self, mode: str, n: int, rep: int, *, profile_rate: int | None = None
    ) -> None:
        """One setup of ``mode`` with N clients, every rate measured on it, then torn down.

        With ``profile_rate`` only that rate is measured, profiled, into ``self.profiles``.
        """
        key = f"{mode}/N={n}/rep={rep}"
        await self._restart_dead()
        t0 = time.monotonic()
        record: dict[str, Any] = {"mode": mode, "n": n, "rep": rep}
        try:
            setup = self._setup_netcode if mode == "netcode" else self._setup_bare
            record.update(await setup(n))
            record["setup_s"] = round(time.monotonic() - t0, 2)
            record["idle_cpu"] = round(await self._idle(), 4)
            if profile_rate is not None:
                record["profiled"] = True
                self.console.print(f"  {key} {profile_rate} Hz, profiled", highlight=False)
                self.profiles[mode] = await self._cell(mode, n, profile_rate, rep, profile=True)
                return
            rates = self.settings.rates if rep % 2 == 0 else tuple(reversed(self.settings.rates))
            for rate in rates:
                self.console.print(f"  {key} {rate} Hz", highlight=False)
                self.cells.append(await self._cell(mode, n, rate, rep))
        except SetupFailed as exc:
            record["failed"] = str(exc)
        except Exception as exc:
            self.errors[key] = f"{type(exc).__name__}: {exc}"
        finally:
            self.setups.append(record)
            procs = [p for p in (self.host, *self.clients) if p is not None and p.alive]
            await asyncio.gather(*(p.call("close_all") for p in procs), return_exceptions=True)

    def check_cap(self, n: int) -> None:
        """Stop a design at N where none of its setups gave a usable measurement.

        Unusable: its links did not come up in time, or in every cell the
        client processes could not keep up (more than a fifth of their ticks
        late, or most snapshots lost), which larger N only make worse; with a
        full mesh that is where netcode's clients saturate this machine.
        """
        for mode in MODES:
            mine = [
                s for s in self.setups if (s["mode"], s["n"]) == (mode, n) and "skipped" not in s
            ]
            if mode in self.capped or not mine:
                continue
            cells = [c for c in self.cells if (c["mode"], c["n"]) == (mode, n)]
            if any("failed" in s for s in mine) and not cells:
                self.capped[mode] = {"n": n, "why": "links did not come up in time"}
            elif cells and all(saturated(c) for c in cells):
                self.capped[mode] = {"n": n, "why": "client processes saturated in every cell"}


def saturated(cell: Mapping[str, Any]) -> bool:
    late = cell["client_overruns"] > 0.2 * max(1, cell["client_ticks"])
    return bool(late or cell["loss_pct"] > 50.0)


def cell_metrics(
    mode: str, n: int, rate: int, rep: int, host: dict[str, Any], clients: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """One measured cell from the host's and the client processes' replies."""
    ticks = max(1, host["ticks"])
    received = sum(sum(c["received"]) for c in clients)
    ages = [a for c in clients for a in c["ages_ms"]]
    return {
        "mode": mode, "n": n, "rate": rate, "rep": rep,
        "host_cpu": round(host["cpu_s"] / max(1e-9, host["wall_s"]), 4),
        "us_per_client_tick": round(host["cpu_s"] * 1e6 / ticks / n, 1),
        "ticks": host["ticks"],
        "scheduled": round(host["wall_s"] * rate),
        "overruns": host["overruns"],
        "client_overruns": sum(c["overruns"] for c in clients),
        "client_ticks": sum(c["ticks"] for c in clients),
        "tick_work_ms_mean": host["work_ms_mean"],
        "tick_work_ms_p99": host["work_ms_p99"],
        "age_ms": summarize(ages, (50, 99)),
        "loss_pct": round(100.0 * (1.0 - received / (ticks * n)), 2),
        "send_drops": host["send_drops"],
        "inputs_per_client_tick": round(host["inputs"] / ticks / n, 3),
        "bytes_per_snapshot": host["bytes_per_snapshot"],
        "client_cpu": [round(c["cpu_s"] / max(1e-9, c["wall_s"]), 3) for c in clients],
        "host_links": host.get("links"),
        "client_links": [c.get("links") for c in clients],
    }  # fmt: skip


def _tree(note: str | None) -> dict[str, Any]:
    """Which code was measured: the git commit, and whether netcode/ had local changes."""
    out: dict[str, Any] = {"note": note}
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "netcode"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return out
    if commit.returncode == 0:
        out.update(commit=commit.stdout.strip(), netcode_dirty=bool(dirty.stdout.strip()))
    return out


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "note": "shared 2-core machine; other work may run concurrently",
    }


async def run(
    settings: Settings, console: Console, profile_n: int | None = None, note: str | None = None
) -> dict[str, Any]:
    """Every setup and cell (then, with ``profile_n``, one profiled cell per design)."""
    import netcode
    from netcode.config import LobbyConfig

    started = datetime.datetime.now(datetime.UTC)
    # All clients come from 127.0.0.1: lift the per-address cap for this lobby.
    lobby_config = LobbyConfig(max_connections_per_ip=None)
    async with await netcode.serve_lobby(host=LOOPBACK, port=0, config=lobby_config) as lobby:
        bench = Bench(settings, lobby.url, console)
        await bench.start()
        try:
            for n in settings.ns:
                for rep in range(settings.repeats):
                    for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                        if mode in bench.capped:
                            why = f"not tried: capped at N={bench.capped[mode]['n']}"
                            bench.setups.append({"mode": mode, "n": n, "rep": rep, "skipped": why})
                            continue
                        await bench.setup_and_measure(mode, n, rep)
                bench.check_cap(n)
            if profile_n is not None:
                for mode in MODES:
                    await bench.setup_and_measure(
                        mode, profile_n, 0, profile_rate=settings.rates[0]
                    )
        finally:
            await bench.stop()
    doc = _document(settings, bench, started)
    doc["tree"] = _tree(note)
    return doc


def _document(settings: Settings, bench: Bench, started: datetime.datetime) -> dict[str, Any]:
    summary, fits = summarize_cells(bench.cells, settings.rates, settings.ns)
    return {
        "schema": 1,
        "quick": settings.quick,
        "date": started.isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": asdict(settings),
        "design": {
            "entities": ENTITIES,
            "changing_per_tick": CHANGING,
            "input_bytes": INPUT_BYTES,
            "bare_message_bytes": BARE_BYTES,
            "processes": "host: 1 child; clients: 2 children (N split evenly); lobby: parent",
            "netcode_room": f"max_players=N+1, topology={settings.topology}",
            "bare": "one RTCPeerConnection per client, negotiated unordered channel, "
            "maxRetransmits=0, one message encoded per tick for all clients",
        },
        "summary": summary,
        "fits": fits,
        "setups": bench.setups,
        "cells": bench.cells,
        "capped": bench.capped,
        "profile": bench.profiles or None,
        "errors": bench.errors,
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
    }


def rerender(doc: dict[str, Any]) -> dict[str, Any]:
    """An earlier run's document with its summary and fits recomputed from its cells."""
    s = doc["settings"]
    doc["summary"], doc["fits"] = summarize_cells(doc["cells"], s["rates"], s["ns"])
    return doc


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks.host_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="N = 1, 4, short cells, 1 repeat")
    parser.add_argument(
        "--topology", choices=("star", "mesh"), default="star",
        help="netcode room topology (star: clients link only to the host; mesh: all pairs)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--ns", type=str, default=None, help="comma-separated N (default: all)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="measured window per cell")
    parser.add_argument("--warmup", type=float, default=None, help="ticking before the window")
    parser.add_argument(
        "--note", default=None, help="stored in the JSON (e.g. the commit measured)"
    )
    parser.add_argument(
        "--render", type=Path, default=None, metavar="JSON",
        help="measure nothing: summarize, plot and print the cells of an earlier run's JSON",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, default=None, metavar="N",
        help="then profile the host (cProfile, CPU time) at N clients, first rate, each design",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    settings = QUICK if args.quick else FULL
    if args.ns:
        ns = tuple(int(v) for v in args.ns.split(","))
        settings = Settings(**{**asdict(settings), "ns": ns})
    for name, value in (
        ("repeats", args.repeats), ("seconds", args.seconds), ("warmup_s", args.warmup),
    ):  # fmt: skip
        if value is not None:
            settings = Settings(**{**asdict(settings), name: value})
    settings = Settings(**{**asdict(settings), "topology": args.topology})
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 180)
    if args.render is not None:
        doc = rerender(json.loads(args.render.read_text()))
        stem = args.render.stem
    else:
        doc = asyncio.run(run(settings, console, args.profile, args.note))
        stem = "host_scale-quick" if settings.quick else "host_scale"
    write_json(args.out / f"{stem}.json", doc)
    plot(args.out / f"{stem}.png", doc)
    print_tables(console, doc)
    console.print(markdown_tables(doc), highlight=False, markup=False)
    console.print(f"wrote {args.out / stem}.json and .png in {doc['duration_s']} s")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
