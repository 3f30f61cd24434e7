"""Measure the lobby: join latency and many concurrent clients (not a test).

Run: ``.venv/bin/python -m benchmarks.lobby [--joins 100] [--clients 200 --rooms 50]``.
Everything runs in one process on loopback, so the numbers include both the
client's and the server's work on the same event loop: an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from benchmarks._common import percentile
from netcode.config import LobbyConfig
from netcode.lobby.messages import SignalMsg
from netcode.net.lobby_server import serve_lobby
from netcode.net.signaling import SignalingClient

__all__ = ["main"]


async def measure_joins(url: str, joins: int) -> dict[str, float]:
    """create_room on A, then join_room on B, each answered by room_joined."""
    a = await SignalingClient.connect(url)
    b = await SignalingClient.connect(url)
    create_ms: list[float] = []
    join_ms: list[float] = []
    total_ms: list[float] = []
    try:
        for _ in range(joins):
            t0 = time.perf_counter()
            room = (await a.create_room(max_players=2)).room
            t1 = time.perf_counter()
            await b.join_room(room)
            t2 = time.perf_counter()
            create_ms.append((t1 - t0) * 1e3)
            join_ms.append((t2 - t1) * 1e3)
            total_ms.append((t2 - t0) * 1e3)
            await b.leave_room()
            await a.leave_room()
            a.poll_events()
    finally:
        await a.close()
        await b.close()
    return {
        "joins": joins,
        "join_p50_ms": statistics.median(join_ms),
        "join_p95_ms": percentile(join_ms, 95),
        "create_p50_ms": statistics.median(create_ms),
        "create_then_join_p50_ms": statistics.median(total_ms),
    }


async def _exchange(group: list[SignalingClient]) -> None:
    """Every later member sends offer + 2 candidates to the room's host, who answers."""
    host, others = group[0], group[1:]
    for peer in others:
        await peer.send_signal(host.peer_id, "offer", {"type": "offer", "sdp": "v=0" * 200})
        for i in range(2):
            await peer.send_signal(host.peer_id, "candidate", {"candidate": f"c{i}"})
    expected = 3 * len(others)
    while expected:
        event = await host.next_event()
        if isinstance(event, SignalMsg):
            expected -= 1
            if event.kind == "offer":
                await host.send_signal(event.sender, "answer", {"type": "answer", "sdp": "v=0"})
    for peer in others:
        while not isinstance(event := await peer.next_event(), SignalMsg):
            pass
        assert event.kind == "answer" and event.sender == host.peer_id


async def measure_crowd(url: str, n_clients: int, n_rooms: int) -> dict[str, float]:
    t0 = time.perf_counter()
    crowd = await asyncio.gather(
        *(SignalingClient.connect(url, timeout=60) for _ in range(n_clients))
    )
    t1 = time.perf_counter()
    try:
        size = n_clients // n_rooms
        groups = [crowd[i * size : (i + 1) * size] for i in range(n_rooms)]
        infos = await asyncio.gather(*(g[0].create_room(max_players=size) for g in groups))
        await asyncio.gather(
            *(c.join_room(info.room) for g, info in zip(groups, infos, strict=True) for c in g[1:])
        )
        t2 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(_exchange(g) for g in groups)), 120)
        t3 = time.perf_counter()
    finally:
        await asyncio.gather(*(c.close() for c in crowd), return_exceptions=True)
    return {
        "clients": n_clients,
        "rooms": n_rooms,
        "connect_all_s": t1 - t0,
        "fill_rooms_s": t2 - t1,
        "signal_exchange_s": t3 - t2,
        "signals_relayed": n_rooms * (size - 1) * 4,
    }


async def _main(args: argparse.Namespace) -> dict[str, object]:
    if args.url:  # a lobby in another process, e.g. `netcode lobby --port 0`
        joins = await measure_joins(args.url, args.joins)
        crowd = await measure_crowd(args.url, args.clients, args.rooms)
        return {"joins": joins, "crowd": crowd}
    # Every client comes from 127.0.0.1: lift the per-address cap (32 by default).
    config = LobbyConfig(
        max_connections=max(10_000, args.clients + 10), max_connections_per_ip=None
    )
    async with await serve_lobby("127.0.0.1", 0, config) as server:
        joins = await measure_joins(server.url, args.joins)
        crowd = await measure_crowd(server.url, args.clients, args.rooms)
        return {"joins": joins, "crowd": crowd, "health_after": server.health()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=100)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--url", default=None, help="measure this lobby instead of an embedded one")
    result = asyncio.run(_main(parser.parse_args(argv)))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
