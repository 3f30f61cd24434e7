"""The lobby cluster's registry and bus in Redis (redis-py's asyncio client).

Keys (docs/LOBBY.md "Several nodes"), all under ``netcode:``:

=============================  ===============================================
``netcode:nodes``              set: every registered node id
``netcode:node:{id}``          the node's lease (expires after ``lease_s``)
``netcode:home:{code}``        the node id homing room ``code``
``netcode:rooms:{id}``         set: the room codes node ``id`` homes
``netcode:snap:{code}``        the room's snapshot (JSON, tokens hashed)
``netcode:summary:{id}``       the node's public room summaries (expire)
channel ``netcode:to:{id}``    frames proxied to node ``id`` (msgpack)
=============================  ===============================================

Redis must be private to the lobby nodes: what comes from it is trusted as far as
routing goes (payloads are still decoded against a schema, never executed). One
Redis server (replicas fine), not Redis Cluster: the Lua scripts touch several keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import ConfigError, TransportError
from .lobby_bus import BusHandler, LobbyBus

__all__ = ["RedisBus"]

log = logging.getLogger("netcode.lobby.redis")

_P = "netcode:"
# KEYS: home, rooms of dead, rooms of node; ARGV: dead, node, code
_ADOPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""
# KEYS: home, rooms of node; ARGV: node, code
_KEEP = """
local home = redis.call('GET', KEYS[1])
if home and home ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""
# KEYS: home, rooms of node, snapshot; ARGV: node, code
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[3]) end
return 1
"""
# KEYS: rooms of node, then home and snapshot of each code; ARGV: node, then the
# code and snapshot of each: written unless another node homes it (returned).
_SAVE = """
local lost = {}
for i = 2, #ARGV, 2 do
  local home_key, snap_key = KEYS[i], KEYS[i + 1]
  local home = redis.call('GET', home_key)
  if home and home ~= ARGV[1] then
    lost[#lost + 1] = ARGV[i]
  else
    redis.call('SET', home_key, ARGV[1])
    redis.call('SADD', KEYS[1], ARGV[i])
    redis.call('SET', snap_key, ARGV[i + 1])
  end
end
return lost
"""
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _bin(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


@contextlib.asynccontextmanager
async def _store() -> AsyncIterator[None]:
    """Every Redis failure is a TransportError (the cluster layer retries)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise TransportError(f"redis: {type(exc).__name__}: {exc}") from None


class RedisBus(LobbyBus):
    """A :class:`LobbyBus` on one Redis server (``redis://host:port/db``)."""

    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        try:
            self._redis = Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                # One quick retry: after a restart the first use of a pooled
                # connection fails; the retry opens a new one.
                retry=Retry(NoBackoff(), 1),
                health_check_interval=0,
            )
        except ValueError as exc:
            raise ConfigError(f"redis url {url!r:.80}: {exc}") from None
        self._timeout = timeout_s
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._adopt = self._redis.register_script(_ADOPT)
        self._keep = self._redis.register_script(_KEEP)
        self._release = self._redis.register_script(_RELEASE)
        self._claim = self._redis.register_script(_CLAIM)
        self._save = self._redis.register_script(_SAVE)

    # -- messages -------------------------------------------------------------------

    async def subscribe(self, node: str, handler: BusHandler) -> None:
        async with _store():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(_P + "to:" + node)
        self._listener = asyncio.create_task(self._listen(node, handler, pubsub))

    async def _listen(self, node: str, handler: BusHandler, pubsub: PubSub) -> None:
        """Read this node's channel; on a failure, tell the node (messages may be
        lost) and resubscribe, backing off up to 1 s."""
        delay = 0.05
        while True:
            try:
                while True:
                    self._pubsub = pubsub
                    msg = await pubsub.get_message(timeout=None)
                    if msg is not None and msg.get("type") == "message":
                        handler(msg["data"])
                        delay = 0.05
            except (RedisError, OSError) as exc:
                log.warning("redis subscription lost (%s): resubscribing", type(exc).__name__)
                self.lost()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            while True:
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)
                try:
                    pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(_P + "to:" + node)
                    break
                except (RedisError, OSError):
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            log.info("redis subscription restored")

    async def unsubscribe(self, node: str) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=1.0)  # bounded, see ClusterNode
            self._listener = None
        if self._pubsub is not None:  # gone from the channel at once, like a dead process
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def publish(self, items: list[tuple[str, bytes]]) -> list[int]:
        async with _store(), self._redis.pipeline(transaction=False) as pipe:
            for node, payload in items:
                pipe.publish(_P + "to:" + node, payload)
            return [int(n) for n in await pipe.execute()]

    # -- nodes ----------------------------------------------------------------------

    async def heartbeat(self, node: str, ttl_s: float) -> bool:
        async with _store(), self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_P + "node:" + node, b"1", px=max(1, int(ttl_s * 1000)))
            pipe.sadd(_P + "nodes", node)
            _, added = await pipe.execute()
        return not added

    async def nodes(self) -> dict[str, bool]:
        async with _store():
            ids = sorted(_text(m) for m in await self._redis.smembers(_P + "nodes"))
            if not ids:
                return {}
            alive = await self._redis.mget([_P + "node:" + n for n in ids])
        return {n: a is not None for n, a in zip(ids, alive, strict=True)}

    async def forget_node(self, node: str) -> None:
        async with _store(), self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(_P + "nodes", node)
            pipe.delete(_P + "rooms:" + node, _P + "summary:" + node)
            await pipe.execute()

    # -- rooms ----------------------------------------------------------------------

    async def claim(self, code: str, node: str) -> bool:
        async with _store():
            keys = [_P + "home:" + code, _P + "rooms:" + node]
            return bool(await self._claim(keys=keys, args=[node, code]))

    async def keep(self, code: str, node: str) -> bool:
        async with _store():
            keys = [_P + "home:" + code, _P + "rooms:" + node]
            return bool(await self._keep(keys=keys, args=[node, code]))

    async def adopt(self, code: str, dead: str, node: str) -> bool:
        async with _store():
            keys = [_P + "home:" + code, _P + "rooms:" + dead, _P + "rooms:" + node]
            return bool(await self._adopt(keys=keys, args=[dead, node, code]))

    async def home(self, code: str) -> str | None:
        async with _store():
            value = await self._redis.get(_P + "home:" + code)
        return None if value is None else _text(value)

    async def rooms_of(self, node: str) -> list[str]:
        async with _store():
            members = await self._redis.smembers(_P + "rooms:" + node)
        return sorted(_text(m) for m in members)

    async def release(self, code: str, node: str) -> None:
        async with _store():
            keys = [_P + "home:" + code, _P + "rooms:" + node, _P + "snap:" + code]
            await self._release(keys=keys, args=[node, code])

    async def save(self, snapshots: dict[str, bytes], node: str) -> list[str]:
        if not snapshots:
            return []
        keys: list[str] = [_P + "rooms:" + node]
        args: list[str | bytes] = [node]
        for code, data in snapshots.items():
            keys += [_P + "home:" + code, _P + "snap:" + code]
            args += [code, data]
        async with _store():
            lost = await self._save(keys=keys, args=args)
        return [_text(code) for code in lost]

    async def load(self, code: str) -> bytes | None:
        async with _store():
            value = await self._redis.get(_P + "snap:" + code)
        return None if value is None else _bin(value)

    async def put_summaries(self, node: str, data: bytes, ttl_s: float) -> None:
        async with _store():
            await self._redis.set(_P + "summary:" + node, data, px=max(1, int(ttl_s * 1000)))

    async def summaries(self) -> dict[str, bytes]:
        async with _store():
            ids = sorted(_text(m) for m in await self._redis.smembers(_P + "nodes"))
            if not ids:
                return {}
            values = await self._redis.mget([_P + "summary:" + n for n in ids])
        return {n: _bin(v) for n, v in zip(ids, values, strict=True) if v is not None}

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
