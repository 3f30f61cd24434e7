"""One netcode player of the NAT lab, run inside a network namespace.

``ip netns exec NS python -m benchmarks._nat_peer`` reads one JSON command per line
on stdin and answers one JSON line on stdout (``{"ok": true, ...}`` or
``{"ok": false, "error": ...}``). It holds at most one session at a time:

- ``join`` {url, room?, policy?, ice?}: connect (create a room if no ``room``);
  ``ice``: a list of {urls, username?, credential?} overriding the lobby's servers.
- ``wait`` {peer?, n?, timeout}: until ``n`` peers connected (or one failed).
- ``paths``: per peer: path (host/srflx/relay), the candidate pair, connect time.
- ``ping`` {peer, n, hz}: state pings at ``hz``; the peer's echo gives RTT samples.
- ``events`` {peer, n}: send ``n`` reliable events; ``received`` counts arrivals.
- ``lost``: peers lost/failed so far, with when and why.
- ``leave``: close the session.

Every peer echoes state pings back, so any two players can measure each other.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import netcode
from netcode.config import IceServer, SessionConfig
from netcode.events import (
    EventReceived,
    PeerConnected,
    PeerConnectFailed,
    PeerLeft,
    PeerLost,
    StateReceived,
)
from netcode.net.ice import selected_pair

__all__ = ["main"]


class Player:
    def __init__(self) -> None:
        self.session: Any = None
        self.t_join = 0.0
        self.connected: dict[str, float] = {}
        self.ended: dict[str, dict[str, Any]] = {}
        self.received: dict[str, int] = {}
        self.rtts: list[float] = []
        self.changed = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None

    async def cmd_join(
        self,
        url: str,
        room: str | None = None,
        policy: str = "all",
        ice: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        servers = tuple(IceServer(**s) for s in ice or ())
        cfg = SessionConfig(ice_servers=servers, ice_transport_policy=policy)  # type: ignore[arg-type]
        self.t_join = time.monotonic()
        self.session = await netcode.connect(url, room=room, create=room is None, config=cfg)
        self.pump = asyncio.create_task(self._pump())
        return {"peer_id": self.session.peer_id, "room": self.session.room}

    async def _pump(self) -> None:
        async for event in self.session:
            now = time.monotonic()
            if isinstance(event, PeerConnected):
                self.connected[event.peer_id] = now
            elif isinstance(event, PeerLost | PeerLeft):
                self.ended[event.peer_id] = {"at": now, "why": type(event).__name__}
                self.ended[event.peer_id]["reason"] = event.reason
            elif isinstance(event, PeerConnectFailed):
                self.ended[event.peer_id] = {"at": now, "why": "failed", "reason": event.reason}
            elif isinstance(event, StateReceived):
                self._on_state(event)
            elif isinstance(event, EventReceived):
                self.received[event.peer_id] = self.received.get(event.peer_id, 0) + 1
            self.changed.set()

    def _on_state(self, event: StateReceived) -> None:
        data = event.data
        if not isinstance(data, dict):
            return
        if data.get("k") == "ping":
            self.session.send_state({"k": "pong", "t": data.get("t")}, to=event.peer_id)
        elif data.get("k") == "pong" and isinstance(data.get("t"), float):
            self.rtts.append((time.monotonic() - data["t"]) * 1000.0)

    async def cmd_wait(self, n: int = 1, timeout: float = 20.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while len(self.connected) < n and not any(
                e["why"] == "failed" for e in self.ended.values()
            ):
                self.changed.clear()
                await self.changed.wait()
        return {"connected": sorted(self.connected), "ended": self.ended}

    async def cmd_paths(self) -> dict[str, Any]:
        out = {}
        for peer, at in self.connected.items():
            view = self.session.link_view(peer)
            link = self.session._link(peer)  # the lab looks at the candidate pair too
            pair = None if link is None else selected_pair(link.pc)
            out[peer] = {
                "path": None if view is None else view.path,
                "pair": None if pair is None else f"{pair[0]}->{pair[1]}",
                "connect_ms": (at - self.t_join) * 1000.0,
            }
        return {"peers": out}

    async def cmd_ping(self, peer: str, n: int = 100, hz: float = 60.0) -> dict[str, Any]:
        self.rtts = []
        for _ in range(n):
            self.session.send_state({"k": "ping", "t": time.monotonic()}, to=peer)
            await asyncio.sleep(1.0 / hz)
        await asyncio.sleep(0.5)  # the last echoes in flight (a report, not a sync)
        return {"rtt_ms": self.rtts, "sent": n}

    async def cmd_events(self, peer: str, n: int = 20) -> dict[str, Any]:
        for i in range(n):
            self.session.send_event({"i": i}, to=peer)
        return {"sent": n}

    async def cmd_received(self, peer: str, n: int, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        with_timeout = asyncio.timeout(timeout)
        try:
            async with with_timeout:
                while self.received.get(peer, 0) < n:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        return {"received": self.received.get(peer, 0)}

    async def cmd_lost(self, n: int = 1, timeout: float = 0.0) -> dict[str, Any]:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                while len(self.ended) < n:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pass
        return {"ended": self.ended, "now": time.monotonic()}

    async def cmd_now(self) -> dict[str, Any]:
        return {"now": time.monotonic()}

    async def cmd_leave(self) -> dict[str, Any]:
        if self.session is not None:
            await self.session.close()
        if self.pump is not None:
            self.pump.cancel()
        self.__init__()  # type: ignore[misc]
        return {}


async def _serve() -> None:
    player = Player()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        try:
            result = await getattr(player, "cmd_" + cmd.pop("cmd"))(**cmd)
            reply = {"ok": True, **result}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    await player.cmd_leave()


def main() -> None:
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
