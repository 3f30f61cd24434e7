"""A throwaway redis-server on a free loopback port (tests of several lobby nodes)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.conftest import require_service
from tests.lobby.netutil import TIMEOUT

__all__ = ["RedisProcess", "free_port", "redis_process", "redis_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """redis-server without persistence; :meth:`kill` and :meth:`start` again on the
    same port simulate a restart that loses every key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(TIMEOUT):
            while not await self._answers():
                assert self.proc.poll() is None, "redis-server exited"
                await asyncio.sleep(0.02)

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await reader.readline()).startswith(b"+PONG")
        finally:
            writer.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)


@asynccontextmanager
async def redis_process() -> AsyncIterator[RedisProcess]:
    require_service(shutil.which("redis-server") is not None, "redis-server")
    redis = RedisProcess()
    try:
        await redis.start()
        yield redis
    finally:
        redis.kill()


@asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    async with redis_process() as redis:
        yield redis.url
