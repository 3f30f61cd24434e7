"""Child process of the lobby load benchmark: a crowd of raw lobby clients, or the
bare websockets relay server it is compared with.

``python -m benchmarks._lobby_load_client`` reads one JSON command per line on
stdin and answers one JSON line on stdout (the protocol of ``benchmarks._runner``'s
``JsonLinesChild``). It speaks the lobby JSON protocol (docs/PROTOCOL.md section 1)
with plain ``websockets`` connections, without keepalive of its own (the server
pings; websockets answers pongs by itself), so the client side stays cheap.

``python -m benchmarks._lobby_load_client bare --port 0`` runs the alternative: a
bare websockets server that greets with a peer id and relays ``signal`` frames by
``to``, stamping ``from``. No rooms, no limits, no queues, websockets' defaults
(its keepalive task per connection, the handshake kept): the reference the lobby
is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks._child import serve_json_lines

__all__ = ["Crowd", "main", "run_bare"]

# A typical ICE candidate signal (~150 B of JSON): what a lobby relays most.
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def _recv_type(ws: ClientConnection, wanted: str) -> dict[str, Any]:
    """The next message of type ``wanted`` (others, e.g. peer_joined, are skipped)."""
    async with asyncio.timeout(15.0):
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if msg.get("type") == wanted:
                return msg
            if msg.get("type") == "error":
                raise RuntimeError(f"lobby error: {msg.get('code')} {msg.get('message')}")


async def _open(url: str, src: str | None) -> tuple[ClientConnection, str]:
    kwargs: dict[str, Any] = {"local_addr": (src, 0)} if src else {}
    ws = await connect(
        url, ping_interval=None, compression=None, open_timeout=30, close_timeout=5, **kwargs
    )
    welcome = await _recv_type(ws, "welcome")
    return ws, str(welcome["peer_id"])


class Crowd:
    """The commands: idle connections, create+join timing, relay traffic."""

    def __init__(self) -> None:
        self.idle: list[ClientConnection] = []
        self.pairs: list[tuple[ClientConnection, ClientConnection]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.relays = 0

    async def cmd_ping(self) -> dict[str, Any]:
        return {"cpu": time.process_time(), "wall": time.monotonic()}

    async def cmd_open(
        self, url: str, n: int, src: str | None = None, concurrency: int = 64
    ) -> dict[str, Any]:
        sem = asyncio.Semaphore(concurrency)
        errors: dict[str, int] = {}

        async def one() -> None:
            async with sem:
                try:
                    ws, _ = await _open(url, src)
                    self.idle.append(ws)
                except Exception as exc:  # counted: a refused connection is a result
                    key = type(exc).__name__
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(one() for _ in range(n)))
        return {"opened": n - sum(errors.values()), "errors": errors, "held": len(self.idle)}

    async def cmd_close_all(self) -> dict[str, Any]:
        conns, self.idle = self.idle, []
        sem = asyncio.Semaphore(256)

        async def one(ws: ClientConnection) -> None:
            async with sem:
                try:
                    async with asyncio.timeout(5):
                        await ws.close()
                except Exception:
                    ws.transport.abort()

        await asyncio.gather(*(one(ws) for ws in conns))
        await self.cmd_relay_stop()
        return {"closed": len(conns)}

    async def cmd_joins(self, url_a: str, url_b: str, count: int) -> dict[str, Any]:
        """create_room on A then join_room on B, timed to B's room_joined; both leave."""
        (a, _), (b, _) = await _open(url_a, None), await _open(url_b, None)
        ms: list[float] = []
        try:
            for i in range(count):
                t0 = time.perf_counter()
                await a.send(json.dumps({"type": "create_room", "max_players": 2, "rid": i}))
                room = (await _recv_type(a, "room_joined"))["room"]
                await b.send(json.dumps({"type": "join_room", "room": room, "rid": i}))
                await _recv_type(b, "room_joined")
                ms.append((time.perf_counter() - t0) * 1e3)
                for ws in (b, a):
                    await ws.send('{"type":"leave_room"}')
                    await _recv_type(ws, "room_left")
        finally:
            await asyncio.gather(a.close(), b.close(), return_exceptions=True)
        return {"ms": ms}

    async def cmd_relay_start(
        self, url_a: str, url_b: str, pairs: int, window: int, rooms: bool
    ) -> dict[str, Any]:
        """``pairs`` A/B pairs; A keeps ``window`` signals in flight to B, B echoes."""
        for _ in range(pairs):
            (a, ida), (b, idb) = await _open(url_a, None), await _open(url_b, None)
            if rooms:
                await a.send('{"type":"create_room","max_players":2}')
                room = (await _recv_type(a, "room_joined"))["room"]
                await b.send(json.dumps({"type": "join_room", "room": room}))
                await _recv_type(b, "room_joined")
            self.pairs.append((a, b))
            to_b = json.dumps({"type": "signal", "to": idb, "kind": "candidate", "data": CANDIDATE})
            to_a = json.dumps({"type": "signal", "to": ida, "kind": "candidate", "data": CANDIDATE})
            self.tasks.append(asyncio.create_task(self._pump(a, to_b, window)))
            self.tasks.append(asyncio.create_task(self._pump(b, to_a, 0)))
        return {"pairs": len(self.pairs)}

    async def _pump(self, ws: ClientConnection, frame: str, window: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(window):
                await ws.send(frame)
            async for raw in ws:
                if '"signal"' in raw:
                    self.relays += 1
                    await ws.send(frame)

    async def cmd_relay_count(self) -> dict[str, Any]:
        return {"relays": self.relays, "wall": time.monotonic()}

    async def cmd_relay_stop(self) -> dict[str, Any]:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pairs, self.pairs = self.pairs, []
        await asyncio.gather(*(ws.close() for pair in pairs for ws in pair), return_exceptions=True)
        return {"relays": self.relays}


async def _crowd_main() -> None:
    crowd = Crowd()
    try:
        await serve_json_lines(crowd)
    finally:
        await crowd.cmd_close_all()


async def run_bare(host: str, port: int, ping_interval: float, ping_timeout: float) -> None:
    """The bare websockets relay: welcome with a peer id, relay signals by ``to``."""
    peers: dict[str, ServerConnection] = {}
    ids = itertools.count(1)

    async def handler(ws: ServerConnection) -> None:
        pid = f"p{next(ids)}"
        peers[pid] = ws
        try:
            await ws.send(json.dumps({"type": "welcome", "v": 1, "peer_id": pid}))
            async for raw in ws:
                msg = json.loads(raw)
                target = peers.get(msg.get("to")) if msg.get("type") == "signal" else None
                if target is not None:
                    out = {"type": "signal", "from": pid, "kind": msg["kind"], "data": msg["data"]}
                    with contextlib.suppress(ConnectionClosed):
                        await target.send(json.dumps(out))
        except ConnectionClosed:
            pass
        finally:
            del peers[pid]

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        handler, host, port, compression=None, max_size=65_536,
        ping_interval=ping_interval, ping_timeout=ping_timeout,
    ) as server:  # fmt: skip
        sock_port = server.sockets[0].getsockname()[1]
        print(f"bare listening on ws://{host}:{sock_port}", flush=True)
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", nargs="?", default="crowd", choices=["crowd", "bare"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ping-interval", type=float, default=5.0)
    p.add_argument("--ping-timeout", type=float, default=10.0)
    args = p.parse_args()
    if args.mode == "bare":
        asyncio.run(run_bare(args.host, args.port, args.ping_interval, args.ping_timeout))
    else:
        asyncio.run(_crowd_main())


if __name__ == "__main__":
    main()
