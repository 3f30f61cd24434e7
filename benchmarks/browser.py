"""Browser <-> Python beside Python <-> Python: connect time and echo RTT, same run.

Run: ``python -m benchmarks.browser [--quick] [--rounds N] [--messages N] [--no-bare]
[--out DIR]``.

The benchmark process holds an embedded lobby and the Python host (one host
session per netcode path, each in its own room). The remote peer is, per path:

- ``browser``: a headless Chromium tab running the JS client (js/, the
  tests' harness page), joining through the lobby;
- ``python``: a netcode session in a separate process
  (``python -m benchmarks._browser_peer``), joining the same way;
- ``aiortc``: bare aiortc in that same process, one negotiated unordered
  channel, offer/answer over the process pipe (no lobby): the floor.

Every round connects each path in turn (the order rotates from round to round),
then sends ``messages`` state payloads of 100 B at 60 Hz to every path in the
same ticks (spread within the tick, rotating which goes first), each echoed
back at once by the peer, then disconnects. Connect = the join call until the
host sees the link up (``PeerConnected``), on the host's clock (bare aiortc:
createOffer until the channel is open). Echo RTT = host send until the echo is
back in the host's ``on_state`` handler. Ratios are per round against the
Python peer, then median (min-max) over rounds, so load drift on a shared
machine cancels out. Writes ``browser.json`` + ``browser.png``
(``browser-quick.*`` with ``--quick``) to ``benchmarks/results`` or ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from rich.console import Console

from benchmarks._browser_report import (
    markdown_table,
    plot,
    ratios,
    results_table,
    strip_samples,
    summarize_paths,
)
from benchmarks._browser_tab import BrowserTab, chromium_missing, open_tab
from benchmarks._common import RATE_HZ, summarize
from benchmarks._report import write_json
from benchmarks._runner import ROOT, JsonLinesChild
from benchmarks._transports import RtcClient, pin_loopback, session_config

__all__ = ["PATHS", "Settings", "main", "make_echo_payload", "parse_echo", "run"]

SIZE = 100
BASE = "python"
PATHS: dict[str, str] = {
    "browser": "Chromium tab, JS client (js/), via the lobby",
    "python": "netcode Python peer in a separate process, via the lobby",
    "aiortc": "bare aiortc in a separate process, one unordered channel, no lobby",
}
EchoSink = Callable[[Any], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    quick: bool = False
    rounds: int = 10
    messages: int = 300
    warmup_messages: int = 20
    bare: bool = True
    timeout_s: float = 20.0
    drain_s: float = 2.0

    @classmethod
    def make(cls, *, quick: bool, rounds: int | None, messages: int | None, bare: bool) -> Settings:
        return cls(
            quick=quick,
            rounds=rounds or (3 if quick else 10),
            messages=messages or (60 if quick else 300),
            warmup_messages=10 if quick else 20,
            bare=bare,
        )

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(k for k in PATHS if self.bare or k != "aiortc")


# --------------------------------------------------------------------------- payloads


def make_echo_payload(seg: int, n: int, size: int = SIZE) -> dict[str, Any]:
    """``{"s": seg, "n": n, "p": padding}`` packing to ``size`` bytes (size >= ~20).

    No send time inside: the host keeps it, so the echo need not carry a float
    (a JS client re-encodes an integral number as an int).
    """
    obj: dict[str, Any] = {"s": seg, "n": n, "p": b""}
    pad = size - len(msgpack.packb(obj))
    for length in (pad, pad - 1, pad - 2):
        obj["p"] = bytes(max(0, length))
        if len(msgpack.packb(obj)) == size:
            break
    return obj


def parse_echo(data: Any) -> tuple[int, int] | None:
    """(segment, seq) of an echoed payload (bytes or decoded), None if it is not one."""
    if isinstance(data, bytes | bytearray):
        if len(data) > 4 * SIZE:
            return None
        try:
            data = msgpack.unpackb(bytes(data), max_map_len=8, max_array_len=8, max_ext_len=0)
        except (ValueError, TypeError, msgpack.StackError):
            return None
    if not isinstance(data, dict):
        return None
    seg, n = data.get("s"), data.get("n")
    if type(seg) is not int or type(n) is not int:
        return None
    return seg, n


class Echoes:
    """Send times and RTTs of one path's payloads in one round (first echo counts)."""

    def __init__(self, seg: int, expected: int) -> None:
        self.seg = seg
        self.expected = expected
        self.sent: dict[int, float] = {}
        self.rtt: dict[int, float] = {}
        self.done = asyncio.Event()

    def __call__(self, data: Any) -> None:
        now = time.monotonic()
        got = parse_echo(data)
        if got is None or got[0] != self.seg or got[1] in self.rtt or got[1] not in self.sent:
            return
        self.rtt[got[1]] = (now - self.sent[got[1]]) * 1000.0
        if len(self.rtt) >= self.expected:
            self.done.set()


# --------------------------------------------------------------------------- host side


class HostRoom:
    """A host session in its own room: when each peer's link came up, who left."""

    def __init__(self, session: Any) -> None:
        from netcode.events import StateReceived

        self.session = session
        self.connected: dict[str, float] = {}
        self.gone: set[str] = set()
        self.on_echo: EchoSink = lambda _d: None
        self._changed = asyncio.Condition()
        self._task = asyncio.ensure_future(self._pump())

        def on_state(ev: StateReceived) -> None:
            self.on_echo(ev.data)

        session.on_state(on_state)

    async def _pump(self) -> None:
        from netcode.events import PeerConnected, PeerLeft, PeerLost

        async for ev in self.session:
            now = time.monotonic()  # stamped on arrival: this task does nothing else
            if isinstance(ev, PeerConnected):
                self.connected[ev.peer_id] = now
            elif isinstance(ev, PeerLeft | PeerLost):
                self.gone.add(ev.peer_id)
            else:
                continue
            async with self._changed:
                self._changed.notify_all()

    async def wait_connected(self, peer_id: str, timeout: float) -> float:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: peer_id in self.connected)
        return self.connected[peer_id]

    async def wait_gone(self, peer_id: str, timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: peer_id in self.gone)

    def stats(self, peer_id: str) -> dict[str, Any]:
        st = self.session.stats(peer_id)
        return {"rtt_ms": round(st.rtt_ms, 3), "loss": round(st.loss, 4),
                "bad_packets": st.bad_packets, "packets_received": st.packets_received}  # fmt: skip

    def close(self) -> None:
        self._task.cancel()


class Remote:
    """One path's remote peer, as the round loop drives it."""

    key = ""

    async def connect(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Connect; {"connect_ms", "peer_connect_ms"}."""
        raise NotImplementedError

    def send(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def set_sink(self, sink: EchoSink) -> None:
        raise NotImplementedError

    async def stats(self) -> dict[str, Any]:
        return {}

    async def disconnect(self, timeout: float) -> None:  # noqa: ASYNC109
        raise NotImplementedError


class LobbyRemote(Remote):
    """A peer joining the host's room through the lobby: the tab or the Python peer."""

    def __init__(self, key: str, host: HostRoom, url: str, join: Any, leave: Any) -> None:
        self.key, self.host, self.url = key, host, url
        self._join, self._leave = join, leave  # async (url, room, timeout) -> info; () -> None
        self.peer_id = ""

    async def connect(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        self.peer_id = ""
        t0 = time.monotonic()
        info = await self._join(self.url, self.host.session.room, timeout)
        self.peer_id = info["peer_id"]
        up = await self.host.wait_connected(self.peer_id, timeout)
        return {"connect_ms": (up - t0) * 1e3, "peer_connect_ms": info["peer_connect_ms"]}

    def send(self, obj: dict[str, Any]) -> None:
        self.host.session.send_state(obj, to=self.peer_id)

    def set_sink(self, sink: EchoSink) -> None:
        self.host.on_echo = sink

    async def stats(self) -> dict[str, Any]:
        return {"host": self.host.stats(self.peer_id)}

    async def disconnect(self, timeout: float) -> None:  # noqa: ASYNC109
        await self._leave()
        if self.peer_id:
            await self.host.wait_gone(self.peer_id, timeout)


class TabRemote(LobbyRemote):
    def __init__(self, host: HostRoom, url: str, tab: BrowserTab) -> None:
        super().__init__("browser", host, url, tab.join, tab.leave)
        self.tab = tab

    async def stats(self) -> dict[str, Any]:
        out = await super().stats()
        out["peer"] = await self.tab.stats(self.host.session.peer_id)
        return out


class AiortcRemote(Remote):
    key = "aiortc"

    def __init__(self, peer: JsonLinesChild) -> None:
        self.peer = peer
        self.client: RtcClient | None = None
        self._sink: EchoSink = lambda _d: None

    async def connect(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        t0 = time.monotonic()
        client = self.client = RtcClient()
        client.on_echo = lambda data: self._sink(data)
        offer = await client.offer()
        answer = await self.peer.call("rtc_answer", sdp=offer["sdp"], type=offer["type"])
        await client.accept(answer, wait_s=timeout)
        return {"connect_ms": (time.monotonic() - t0) * 1e3, "peer_connect_ms": None}

    def send(self, obj: dict[str, Any]) -> None:
        assert self.client is not None
        self.client.send(obj)

    def set_sink(self, sink: EchoSink) -> None:
        self._sink = sink

    async def disconnect(self, timeout: float) -> None:  # noqa: ASYNC109
        client, self.client = self.client, None
        if client is not None:
            await asyncio.wait_for(client.close(), timeout)
        await self.peer.call("rtc_close")


# --------------------------------------------------------------------------- rounds


class Bench:
    def __init__(self, settings: Settings, remotes: dict[str, Remote], console: Console) -> None:
        self.settings = settings
        self.remotes = remotes
        self.console = console
        self.seg = 0

    async def round(self, index: int, messages: int) -> dict[str, Any]:
        """Connect each path (rotating order), echo in the same ticks, disconnect."""
        keys = list(self.remotes)
        shift = index % len(keys)
        order = keys[shift:] + keys[:shift]
        out: dict[str, Any] = {"round": index, "order": order, "paths": {}}
        up: list[str] = []
        for key in order:
            cell: dict[str, Any] = {"connected": False}
            out["paths"][key] = cell
            try:
                got = await self.remotes[key].connect(self.settings.timeout_s)
            except Exception as exc:  # recorded; the other paths still run
                cell["error"] = f"{type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):  # whatever half of it is up
                    await self.remotes[key].disconnect(5.0)
                continue
            cell.update(connected=True, **{k: _ms(v) for k, v in got.items()})
            up.append(key)
        rtts = await self.echo(up, messages)
        for key in order:
            cell = out["paths"][key]
            if key in up:
                cell.update(sent=messages, echoed=len(rtts[key]), rtt_ms=summarize(rtts[key]))
                cell["_rtts"] = rtts[key]
                with contextlib.suppress(Exception):
                    cell["stats"] = await self.remotes[key].stats()
        await self.disconnect(up, out)
        return out

    async def echo(self, keys: list[str], messages: int) -> dict[str, list[float]]:
        """``messages`` ticks at 60 Hz, one payload per path per tick (spread, rotated)."""
        sinks: dict[str, Echoes] = {}
        for key in keys:
            self.seg += 1
            sinks[key] = Echoes(self.seg, messages)
            self.remotes[key].set_sink(sinks[key])
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(messages):
            shift = n % max(1, len(keys))
            for j, key in enumerate(keys[shift:] + keys[:shift]):
                at = start + (n + j / len(keys)) / RATE_HZ
                await asyncio.sleep(max(0.0, at - loop.time()))
                sinks[key].sent[n] = time.monotonic()
                self.remotes[key].send(make_echo_payload(sinks[key].seg, n))
        for sink in sinks.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.done.wait(), self.settings.drain_s)
        for key in keys:
            self.remotes[key].set_sink(lambda _d: None)
        return {key: list(sink.rtt.values()) for key, sink in sinks.items()}

    async def disconnect(self, keys: list[str], out: dict[str, Any]) -> None:
        for key in keys:
            try:
                await self.remotes[key].disconnect(self.settings.timeout_s)
            except Exception as exc:
                out["paths"][key]["leave_error"] = f"{type(exc).__name__}: {exc}"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class PythonPeer(JsonLinesChild):
    """``python -m benchmarks._browser_peer``: the Python netcode peer and bare aiortc."""

    @classmethod
    async def start(cls) -> PythonPeer:
        peer = cls(await cls.spawn("benchmarks._browser_peer"), "python peer")
        await peer.call("ping", wait_s=60.0)
        return peer


async def _setup(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[dict[str, Remote], BrowserTab]:
    """Lobby, host rooms, the tab and the peer process (all closed with ``stack``)."""
    import netcode

    lobby = await stack.enter_async_context(await netcode.serve_lobby(host="127.0.0.1", port=0))
    peer = await PythonPeer.start()
    stack.push_async_callback(peer.close)
    rooms = {}
    for key in ("browser", "python"):
        session = await stack.enter_async_context(
            netcode.connect(lobby.url, create=True, config=session_config())
        )
        rooms[key] = HostRoom(session)
        stack.callback(rooms[key].close)
    tab = await stack.enter_async_context(open_tab(settings.timeout_s))

    async def join_py(url: str, room: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        return await peer.call("join", wait_s=timeout + 5, url=url, room=room, timeout=timeout)

    async def leave_py() -> None:
        await peer.call("leave")

    remotes: dict[str, Remote] = {
        "browser": TabRemote(rooms["browser"], lobby.url, tab),
        "python": LobbyRemote("python", rooms["python"], lobby.url, join_py, leave_py),
    }
    if settings.bare:
        remotes["aiortc"] = AiortcRemote(peer)
    return remotes, tab


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "note": "shared 2-core machine; other work may run concurrently",
    }


async def run(settings: Settings, console: Console) -> dict[str, Any]:
    """Every round; the JSON document (rounds still hold their raw ``_rtts``)."""
    started = datetime.datetime.now(datetime.UTC)
    machine = _machine()
    rounds: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        remotes, tab = await _setup(settings, stack)
        machine["chromium"] = tab.version
        bench = Bench(settings, remotes, console)
        warm = await bench.round(0, settings.warmup_messages)  # first connects pay for JIT etc.
        console.print(f"warm-up: {_brief(warm)}")
        for i in range(1, settings.rounds + 1):
            rounds.append(await bench.round(i, settings.messages))
            console.print(f"round {i}/{settings.rounds}: {_brief(rounds[-1])}")
        page_errors = list(tab.errors)
    for r in rounds:
        for key, cell in r["paths"].items():
            if not cell["connected"] or "leave_error" in cell:
                errors[f"round{r['round']}/{key}"] = cell.get("error") or cell["leave_error"]
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "benchmark": "browser",
        "quick": settings.quick,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {**dataclasses.asdict(settings), "size": SIZE, "rate_hz": RATE_HZ},
        "paths": {k: PATHS[k] for k in settings.paths},
        "method": {
            "connect_ms": "join call -> host's PeerConnected for that peer, host's clock "
            "(aiortc: createOffer -> channel open, signalling over the process pipe)",
            "peer_connect_ms": "join call -> the peer's own PeerConnected, peer's clock",
            "rtt_ms": "host send_state -> echo back in the host's on_state handler; "
            "the peer echoes from its receive handler; all paths in the same 60 Hz ticks",
        },
        "rounds": rounds,
        "summary": summarize_paths(rounds, settings.paths),
        "ratios": ratios(rounds, BASE),
        "page_errors": page_errors,
        "errors": errors,
        "duration_s": round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1),
    }


def _brief(r: dict[str, Any]) -> str:
    parts = []
    for key, c in r["paths"].items():
        if not c["connected"]:
            parts.append(f"{key} FAILED ({c.get('error')})")
        else:
            p50 = c["rtt_ms"]["p50"]
            parts.append(f"{key} connect {c['connect_ms']:.0f} ms, p50 {_fmt_ms(p50)}")
    return "; ".join(parts)


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.browser", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short run (< 40 s), same schema")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 10; quick 3)")
    parser.add_argument("--messages", type=int, default=None, help="echoes per path and round")
    parser.add_argument("--no-bare", action="store_true", help="leave out bare aiortc")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    missing = chromium_missing()
    if missing is not None:
        console.print(f"[red]cannot run the browser benchmark:[/] {missing}")
        return 2
    settings = Settings.make(
        quick=args.quick, rounds=args.rounds, messages=args.messages, bare=not args.no_bare
    )
    pin_loopback()
    doc = asyncio.run(run(settings, console))
    stem = "browser-quick" if args.quick else "browser"
    pooled = strip_samples(doc["rounds"])
    write_json(args.out / f"{stem}.json", doc)
    plot(args.out / f"{stem}.png", doc, pooled)
    console.print(results_table(doc))
    if args.markdown:
        console.print(markdown_table(doc), markup=False)
    if doc["errors"] or doc["page_errors"]:
        console.print("[red]errors:[/]", doc["errors"], doc["page_errors"])
    console.print(f"wrote {args.out / stem}.json and .png in {doc['duration_s']} s")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
