"""Load on the lobby: idle crowds, join latency under them, relay cost (not a test).

Run: ``.venv/bin/python -m benchmarks.lobby_load [--quick] [--out DIR]``.

The lobby runs as its own process(es) (``python -m netcode lobby --port 0``); the
clients run in several other processes (``benchmarks._lobby_load_client``), each
from its own 127.0.0.x source address. The server's memory is read from
``/proc/<pid>/status`` (VmRSS) and its CPU from ``/proc/<pid>/stat`` (utime +
stime), so the figures are the server's alone. Modes, in one run:

* ``lobby``: one node;
* ``lobby3``: three nodes sharing a private ``redis-server`` (``--redis``), when
  ``netcode lobby`` has that flag (otherwise recorded as pending);
* ``bare``: a bare websockets relay server (websockets' defaults: its own keepalive
  task per connection, the handshake kept), the reference the lobby is compared with.

Per crowd level (idle connections per node): KiB per idle connection (RSS delta
over the empty server / connections), idle CPU (CPU-seconds per second: the
keepalive cost), create+join p50/p99/max. At the top level: relayed signals/s
and server CPU microseconds per relay. After closing: how much RSS came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import percentile
from benchmarks._runner import JsonLinesChild

__all__ = ["main", "proc_cpu_s", "proc_rss_kib", "summarize_ms"]

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (fields 14 and 15 of /proc/pid/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def summarize_ms(ms: list[float]) -> dict[str, float | int]:
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(max(ms), 3),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server process (a lobby node or the bare relay) with its printed URL."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc, self.url = proc, url

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(cls, argv: list[str]) -> Server:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            cwd=str(ROOT), env=env,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                while line := (await proc.stdout.readline()).decode():
                    if m := re.search(r"(wss?://\S+)", line):
                        return cls(proc, m.group(1))
        except BaseException:
            await cls(proc, "").stop()
            raise
        await cls(proc, "").stop()
        raise RuntimeError(f"{argv[:4]} exited without printing its URL")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _lobby_flags(help_text: str, connections: int) -> list[str]:
    """Limits raised for the run, under whichever flag names this CLI has."""
    wanted = [
        (("--max-connections",), str(connections + 1000)),
        (("--max-connections-per-ip",), "0"),
        (("--max-rooms",), "100000"),
        (("--rate-limit", "--rate-limit-per-s"), "1000000"),
        (("--rate-burst", "--rate-limit-burst"), "1000000"),
        (("--byte-rate-limit", "--byte-rate-limit-per-s"), "1000000000"),
        (("--byte-burst", "--byte-rate-burst"), "1000000000"),
        (("--reconnect-grace", "--reconnect-grace-s"), "0"),
        (("--log-level",), "WARNING"),
    ]
    flags: list[str] = []
    for names, value in wanted:
        name = next((n for n in names if re.search(rf"{re.escape(n)}[\s=,]", help_text)), None)
        if name is not None:
            flags += [name, value]
    return flags


async def _lobby_help() -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "netcode", "lobby", "--help",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    out, _ = await proc.communicate()
    return out.decode()


class Crowd(JsonLinesChild):
    @classmethod
    async def start(cls, index: int) -> Crowd:
        child = cls(await cls.spawn("benchmarks._lobby_load_client"), f"crowd {index}")
        await child.call("ping", wait_s=60)
        return child

    async def close(self, close_all_s: float = 120.0, exit_s: float = 15.0) -> None:
        await super().close(close_all_s, exit_s)  # thousands of sockets to close first


async def _fill(crowds: list[Crowd], servers: list[Server], add_per_node: int) -> dict[str, Any]:
    """Open ``add_per_node`` more idle connections on every node, spread over crowds."""
    calls = []
    for s_i, server in enumerate(servers):
        share = [add_per_node // len(crowds)] * len(crowds)
        share[0] += add_per_node - sum(share)
        for c_i, crowd in enumerate(crowds):
            if share[c_i]:
                src = f"127.0.0.{2 + c_i + s_i * len(crowds)}"
                calls.append(crowd.call("open", wait_s=600, url=server.url, n=share[c_i], src=src))
    replies = await asyncio.gather(*calls)
    errors: dict[str, int] = {}
    for r in replies:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"opened": sum(r["opened"] for r in replies), "errors": errors}


def _cpu(servers: list[Server]) -> float:
    return sum(proc_cpu_s(s.pid) for s in servers)


def _redis_cpu(args: argparse.Namespace) -> float:
    return proc_cpu_s(args.redis_pid) if args.redis_pid else 0.0


def _rss(servers: list[Server]) -> int:
    return sum(proc_rss_kib(s.pid) for s in servers)


async def _idle_cpu(servers: list[Server], seconds: float) -> float:
    c0, t0 = _cpu(servers), time.monotonic()
    await asyncio.sleep(seconds)  # measuring idle time itself, not synchronisation
    return round((_cpu(servers) - c0) / (time.monotonic() - t0), 4)


async def _relay(
    crowds: list[Crowd], servers: list[Server], args: argparse.Namespace, rooms: bool
) -> dict[str, Any]:
    users = crowds[:2]
    for i, crowd in enumerate(users):
        a, b = servers[i % len(servers)], servers[(i + 1) % len(servers)]
        await crowd.call(
            "relay_start", wait_s=120, url_a=a.url, url_b=b.url,
            pairs=args.pairs, window=args.window, rooms=rooms,
        )  # fmt: skip
    try:
        await asyncio.sleep(args.relay_s / 4)  # warm-up: let the pumps reach steady state
        n0 = sum([(await c.call("relay_count"))["relays"] for c in users])
        c0, t0, r0 = _cpu(servers), time.monotonic(), _redis_cpu(args)
        await asyncio.sleep(args.relay_s)  # the measuring window
        c1, t1, r1 = _cpu(servers), time.monotonic(), _redis_cpu(args)
        n1 = sum([(await c.call("relay_count"))["relays"] for c in users])
    finally:
        for crowd in users:
            await crowd.call("relay_stop", wait_s=60)
    relays, cpu = n1 - n0, c1 - c0
    return {
        "relays": relays,
        "per_s": round(relays / (t1 - t0), 1),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_per_s": round(cpu / (t1 - t0), 3),
        "us_per_relay": round(cpu * 1e6 / relays, 2) if relays else None,
        "per_core_per_s": round(relays / cpu, 1) if cpu > 0 else None,
        # The nodes' shared redis-server, not counted above (lobby3 only).
        "redis_us_per_relay": round((r1 - r0) * 1e6 / relays, 2)
        if args.redis_pid and relays
        else None,
    }


async def _measure(
    mode: str, servers: list[Server], crowds: list[Crowd], args: argparse.Namespace
) -> dict[str, Any]:
    # Warm the code paths (imports, caches) before the baseline.
    await _fill(crowds[:1], servers, 20)
    await crowds[0].call("close_all", wait_s=60)
    await asyncio.sleep(1.0)  # let the closes finish on the server
    baseline = _rss(servers)
    result: dict[str, Any] = {"mode": mode, "nodes": len(servers), "levels": []}
    result["rss_baseline_kib"] = baseline
    held = 0
    for level in args.levels:
        fill = await _fill(crowds, servers, level - held)
        held = level
        await asyncio.sleep(1.0)  # let the last handshakes settle before reading RSS
        rss = _rss(servers)
        conns = level * len(servers)
        row: dict[str, Any] = {
            "per_node": level, "connections": conns, "opened": fill["opened"],
            "errors": fill["errors"], "rss_kib": rss,
            "kib_per_conn": round((rss - baseline) / max(1, fill["opened"] and conns), 2),
            "idle_cpu": await _idle_cpu(servers, args.idle_s),
        }  # fmt: skip
        if mode != "bare":
            a, b = servers[0], servers[1 % len(servers)]
            joins = await crowds[-1].call(
                "joins", wait_s=300, url_a=a.url, url_b=b.url, count=args.joins
            )
            row["join_ms"] = summarize_ms(joins["ms"])
        result["levels"].append(row)
    result["relay"] = await _relay(crowds, servers, args, rooms=mode != "bare")
    result["rss_after_relay_kib"] = _rss(servers)
    for crowd in crowds:
        await crowd.call("close_all", wait_s=300)
    await asyncio.sleep(2.0)  # the server frees closed connections as their handlers end
    after = _rss(servers)
    peak = max([r["rss_kib"] for r in result["levels"]] + [result["rss_after_relay_kib"]])
    result["rss_after_close_kib"] = after
    result["returned_pct"] = round(100 * (peak - after) / max(1, peak - baseline), 1)
    return result


async def _servers(mode: str, args: argparse.Namespace, help_text: str) -> list[Server]:
    if mode == "bare":
        return [
            await Server.start(
                [
                    sys.executable,
                    "-m",
                    "benchmarks._lobby_load_client",
                    "bare",
                    "--port",
                    "0",
                    "--ping-interval",
                    str(args.ping_interval),
                ]
            )
        ]
    flags = _lobby_flags(help_text, max(args.levels) + 2 * args.pairs + 10)
    base = [sys.executable, "-m", "netcode", "lobby", "--port", "0", *flags]
    base += ["--ping-interval", str(args.ping_interval)]
    if mode == "lobby":
        return [await Server.start(base)]
    servers: list[Server] = []
    try:
        for _ in range(3):
            servers.append(await Server.start([*base, "--redis", args.redis_url]))
    except BaseException:
        for s in servers:
            await s.stop()
        raise
    return servers


async def _run_mode(mode: str, args: argparse.Namespace, help_text: str) -> dict[str, Any]:
    servers: list[Server] = []
    crowds: list[Crowd] = []
    try:
        servers = await _servers(mode, args, help_text)
        crowds = [await Crowd.start(i) for i in range(args.clients)]
        return await _measure(mode, servers, crowds, args)
    finally:
        for crowd in crowds:
            await crowd.close()
        for server in servers:
            await server.stop()


async def _redis(port: int) -> asyncio.subprocess.Process:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):  # bounded: up to ~10 s for the port to open
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        await asyncio.sleep(0.1)
    proc.kill()
    await proc.wait()
    raise RuntimeError("redis-server did not start")


def _ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["mode"]: r for r in runs if "levels" in r}
    bare = by.get("bare")
    out: dict[str, Any] = {}
    for mode, run in by.items():
        if mode == "bare" or bare is None:
            continue
        top, btop = run["levels"][-1], bare["levels"][-1]
        us, bus = run["relay"]["us_per_relay"], bare["relay"]["us_per_relay"]
        out[f"{mode}_vs_bare"] = {
            "kib_per_conn": round(top["kib_per_conn"] / btop["kib_per_conn"], 2)
            if btop["kib_per_conn"] > 0 else None,
            "idle_cpu": round(top["idle_cpu"] / btop["idle_cpu"], 2)
            if btop["idle_cpu"] > 0 else None,
            "us_per_relay": round(us / bus, 2) if us and bus else None,
        }  # fmt: skip
    return out


def _table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="lobby load (server process; CPU in CPU-seconds per second)")
    for col in ("mode", "conns/node", "KiB/conn", "idle CPU", "join p50/p99/max ms"):
        t.add_column(col)
    for run in doc["runs"]:
        if "levels" not in run:
            t.add_row(run["mode"], "-", "-", "-", run.get("pending") or run.get("error", ""))
            continue
        for row in run["levels"]:
            j = row.get("join_ms", {})
            js = f"{j['p50']}/{j['p99']}/{j['max']}" if j.get("n") else "-"
            t.add_row(run["mode"], str(row["per_node"]), str(row["kib_per_conn"]),
                      str(row["idle_cpu"]), js)  # fmt: skip
        r = run["relay"]
        t.add_row(run["mode"], "relay", f"{r['per_s']}/s", f"{r['us_per_relay']} µs/relay",
                  f"returned {run['returned_pct']} % RSS")  # fmt: skip
    Console().print(t)
    if doc["ratios"]:
        Console().print(doc["ratios"])


async def _amain(args: argparse.Namespace) -> dict[str, Any]:
    help_text = await _lobby_help()
    runs: list[dict[str, Any]] = []
    for mode in args.modes:
        if mode == "lobby3" and not re.search(r"--redis[\s=,]", help_text):
            runs.append({"mode": mode, "pending": "netcode lobby has no --redis flag yet"})
            continue
        redis = None
        try:
            if mode == "lobby3":
                port = _free_port()
                args.redis_url = f"redis://127.0.0.1:{port}/0"
                redis = await _redis(port)
                args.redis_pid = redis.pid
            runs.append(await _run_mode(mode, args, help_text))
        except Exception as exc:  # recorded: the other modes still run
            runs.append({"mode": mode, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            args.redis_pid = 0
            if redis is not None:
                redis.terminate()
                await redis.wait()
    return {
        "bench": "lobby_load",
        "quick": args.quick,
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("out", "redis_url", "redis_pid")
        },
        "cpus": os.cpu_count(),
        "runs": runs,
        "ratios": _ratios(runs),
    }


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 connections, seconds")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--modes", default="lobby,lobby3,bare")
    p.add_argument("--levels", default=None, help="idle connections per node, e.g. 1000,5000")
    p.add_argument("--ping-interval", type=float, default=5.0, help="keepalive of every server")
    p.add_argument("--name", default=None, help="output file stem (default lobby_load[-quick])")
    args = p.parse_args(argv)
    q = args.quick
    args.modes = args.modes.split(",")
    args.levels = [int(x) for x in (args.levels or ("200" if q else "1000,5000,10000")).split(",")]
    args.clients = 2 if q else 4
    # Two keepalive periods: a window shorter than one can miss every ping.
    args.idle_s = 2.0 if q else max(10.0, 2 * args.ping_interval)
    args.joins = 30 if q else 300
    args.relay_s = 2.0 if q else 8.0
    args.pairs, args.window = (4, 4) if q else (16, 8)
    args.redis_url, args.redis_pid = "", 0
    return args


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    doc = asyncio.run(_amain(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("lobby_load-quick" if args.quick else "lobby_load")
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    _table(doc)


if __name__ == "__main__":
    main()
