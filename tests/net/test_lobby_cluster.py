"""Three lobby processes on one real Redis: the cluster as it is deployed.

Each node is ``python -m netcode lobby --port 0 --redis ...`` (its URL parsed from
its first line); the nodes are SIGKILLed and redis-server restarted for real.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest

from netcode.errors import LobbyError, RoomFull
from netcode.lobby.messages import PeerJoinedMsg, PeerReconnected, SignalMsg
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT
from tests.net.redis_util import RedisProcess, redis_process
from tests.net.test_lobby_nodes import next_of

LEASE = "1.5"
T = TypeVar("T")


class Node:
    def __init__(self, redis_url: str, name: str) -> None:
        args = [sys.executable, "-m", "netcode", "lobby", "--port", "0", "--redis", redis_url]
        args += ["--node-id", name, "--node-lease-s", LEASE]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.url = ""

    async def ready(self) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), TIMEOUT)
        found = re.search(r"ws://\S+", line)
        assert found, f"no url in {line!r}"
        self.url = found.group(0)
        return self.url

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)


@asynccontextmanager
async def cluster() -> AsyncIterator[tuple[RedisProcess, list[Node], list[SignalingClient]]]:
    async with redis_process() as redis:
        nodes = [Node(redis.url, f"p{i}") for i in range(3)]
        opened: list[SignalingClient] = []
        try:
            await asyncio.gather(*(n.ready() for n in nodes))
            yield redis, nodes, opened
        finally:
            await asyncio.gather(*(c.abort() for c in opened), return_exceptions=True)
            for node in nodes:
                node.kill()


async def client(url: str, opened: list[SignalingClient]) -> SignalingClient:
    c = await SignalingClient.connect(url, timeout=TIMEOUT)
    opened.append(c)
    return c


async def _relay_ms(a: SignalingClient, b: SignalingClient, n: int = 50) -> float:
    start = time.perf_counter()
    for i in range(n):
        await a.send_signal(b.peer_id, "candidate", {"i": i})
        await next_of(b, SignalMsg)
    return (time.perf_counter() - start) * 1000 / n


async def test_cross_node_join_relay_and_max_players() -> None:
    async with cluster() as (_redis, nodes, opened):
        home = await client(nodes[0].url, opened)
        info = await home.create_room(max_players=3)
        local, far = await client(nodes[0].url, opened), await client(nodes[1].url, opened)
        t0 = time.perf_counter()
        await local.join_room(info.room)
        same_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        await far.join_room(info.room)
        cross_ms = (time.perf_counter() - t0) * 1000
        await next_of(home, PeerJoinedMsg)
        same_relay, cross_relay = await _relay_ms(local, home), await _relay_ms(far, home)
        print(f"\njoin same-node {same_ms:.2f} ms, cross-node {cross_ms:.2f} ms")
        print(f"relay same-node {same_relay:.3f} ms, via Redis {cross_relay:.3f} ms")
        await far.send_signal(home.peer_id, "offer", {"sdp": "v=0"})
        assert (await next_of(home, SignalMsg)).sender == far.peer_id
        # A full room stays full whichever node the joiners reach.
        owner = await client(nodes[2].url, opened)
        room = await owner.create_room(max_players=4)
        joiners = [await client(nodes[i % 3].url, opened) for i in range(9)]
        got = await asyncio.gather(
            *(j.join_room(room.room) for j in joiners), return_exceptions=True
        )
        assert sum(not isinstance(r, BaseException) for r in got) == 3
        assert sum(isinstance(r, RoomFull) for r in got) == 6


async def test_a_killed_node_and_a_restarted_redis() -> None:
    async with cluster() as (redis, nodes, opened):
        home = await client(nodes[0].url, opened)
        info = await home.create_room()
        far = await client(nodes[1].url, opened)
        far_info = await far.join_room(info.room)
        await next_of(home, PeerJoinedMsg)
        killed = time.perf_counter()
        nodes[0].kill()  # mid-match: SIGKILL, nothing said
        async with asyncio.timeout(TIMEOUT):
            while not far.closed:  # noqa: ASYNC110 - the 1012 close has no event to await
                await asyncio.sleep(0.01)
        assert info.token is not None and far_info.token is not None
        back = await _rejoin(nodes[2].url, info.token, info.room, opened)
        far2 = await _rejoin(nodes[1].url, far_info.token, info.room, opened)
        print(f"\nnode SIGKILL -> clients back in their room: {time.perf_counter() - killed:.2f} s")
        assert (await next_of(back, PeerReconnected)).peer_id == far_info.peer_id
        await far2.send_signal(info.peer_id, "answer", {"sdp": "x"})
        assert (await next_of(back, SignalMsg)).sender == far_info.peer_id
        # Redis restarts (every key lost): the nodes rebuild what they own.
        redis.kill()
        restarted = time.perf_counter()
        await redis.start()
        joiner = await client(nodes[1].url, opened)
        owner = await client(nodes[2].url, opened)
        room = await _retry(owner.create_room)
        joined = await _retry(lambda: joiner.join_room(room.room))
        print(f"redis restart -> new cross-node join: {time.perf_counter() - restarted:.2f} s")
        assert joined.peers == (owner.peer_id,)
        assert all(n.proc.poll() is None for n in nodes[1:])  # no crash


async def _rejoin(
    url: str, token: str, room: str, opened: list[SignalingClient]
) -> SignalingClient:
    async with asyncio.timeout(TIMEOUT):
        while True:
            c = await client(url, opened)
            try:
                await c.rejoin(token, room)
                return c
            except LobbyError as exc:
                assert exc.code == "unavailable", exc
                await c.close()


async def _retry(call: Callable[[], Awaitable[T]]) -> T:
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                return await call()
            except LobbyError as exc:
                assert exc.code == "unavailable", exc
                await asyncio.sleep(0.1)


pytestmark = pytest.mark.timeout(120)
