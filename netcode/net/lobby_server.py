"""The lobby/signaling server: a thin websockets adapter around the pure LobbyCore.

Everything that decides (rooms, ids, validation, limits, abuse) lives in
:mod:`netcode.lobby.rooms`; this module only moves frames between sockets and the
core, answers ``GET /healthz``, checks the token during the HTTP handshake, and
runs the command line ``netcode lobby``.

The core's timers (reconnect grace, host grace) are deadlines it reports; one
task sleeps until :meth:`LobbyCore.next_deadline` and then calls
:meth:`LobbyCore.tick`, woken early whenever a disconnect may have set a sooner one.

Each connection has its own writer task and outbound queue, so one slow client
cannot stall the handler that relays a message to it (head-of-line blocking
across clients). The queue's size is reported to the core after every change, so
relays to a clogged client are refused (``peer_busy``, the sender's problem)
before the queue reaches its hard cap (the client's problem: closed, not reading).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import http
import ipaddress
import itertools
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.http11 import Request, Response

from ..config import LobbyConfig
from ..errors import ConfigError, LobbyProtocolError
from ..lobby.messages import ServerMessage, serialize
from ..lobby.rooms import (
    CLOSE_POLICY_VIOLATION,
    MAX_OUTBOUND_MESSAGES,
    CloseConnection,
    ConnId,
    DisconnectReason,
    LobbyCore,
    Output,
)
from ..lobby.turn import with_turn_credentials
from .lobby_bus import LobbyBus
from .lobby_cluster import ClusterNode
from .lobby_keepalive import Keepalive
from .lobby_metrics import LobbyObserver, metrics_route
from .lobby_tls import server_ssl_context
from .web_assets import PLAY_PATH, WebAssets

__all__ = ["HttpRoute", "LobbyServer", "client_address", "serve_lobby"]

log = logging.getLogger("netcode.lobby")

# A plain-HTTP GET endpoint beside the websocket: called with the connection and the
# request (path already matched), returns the response. Registered in
# LobbyServer.routes by path ("/healthz", "/metrics", "/play/...": a prefix ending in
# "/" matches everything below it).
HttpRoute = Callable[[ServerConnection, Request], Response]

# websockets' reason for a keepalive failure; maps to peer_left reason "timeout".
_KEEPALIVE_CLOSE_CODE = 1011
# A client's normal close (1000) means it left on purpose: no reconnect grace.
_NORMAL_CLOSE_CODE = 1000
# What an open connection's ws.request.headers becomes (shared; never mutated).
_NO_HEADERS = Headers()
# asyncio's socket transport reads up to 256 KiB per recv() into a fresh bytes object
# that it then shrinks: with thousands of connections those short-lived 256 KiB
# blocks fragment the C heap (measured: +1.3 KiB per idle connection in 2 runs of 6;
# 0 of 5 with 16 KiB reads). A lobby frame is at most max_message_bytes (64 KiB):
# a few reads more for the largest.
_READ_CHUNK = 16 * 1024


@dataclass(eq=False, slots=True)
class _Link:
    """One websocket as the server sees it: its socket, queue and writer task.

    The writer task and its queue exist only while something is queued (both go
    once the queue is drained): an idle connection holds no task and no deque
    (an empty deque is 760 bytes), which at 10k connections is a few KiB each
    (measured by benchmarks.lobby_load).
    """

    conn_id: ConnId
    ws: ServerConnection
    # Frames already UTF-8 encoded, so their size is exact and nothing encodes twice.
    queue: collections.deque[bytes | CloseConnection] | None = None
    writer: asyncio.Task[None] | None = None
    closing: bool = False
    kicked: bool = False
    queued_bytes: int = 0  # bounds memory per slow reader


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[str, ...] = ()
) -> str | None:
    """The client's IP address for the per-address cap.

    ``peer`` is the TCP peer. If it is a trusted proxy, the client is the rightmost
    ``X-Forwarded-For`` entry that is not a trusted proxy itself (entries further
    left were written by the client and prove nothing); an unreadable entry there
    counts as the proxy itself, so a broken header never bypasses the cap.
    """
    nets = [ipaddress.ip_network(t, strict=False) for t in trusted_proxies]

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in net for net in nets)

    if peer is None or not forwarded_for or not trusted(_ip(peer)):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        ip = _ip(hop.strip())
        if not trusted(ip):
            return peer if ip is None else str(ip)
    return peer


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _format_url(host: str, port: int, tls: bool = False) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host}:{port}"


class LobbyServer:
    """A running lobby. Get one from :func:`serve_lobby`; ``async with`` closes it.

    ``close()`` stops accepting, closes every websocket with 1001 (going away) and
    waits for the handlers to finish.
    """

    def __init__(self, config: LobbyConfig | None = None, *, bus: LobbyBus | None = None) -> None:
        self.config = config if config is not None else LobbyConfig()
        self.core = LobbyCore(self.config)
        self._links: dict[ConnId, _Link] = {}
        self._ids = itertools.count(1)
        self._started = time.monotonic()
        self._server: Server | None = None
        self._close_timeout = min(2.0, self.config.ping_timeout_s)
        self._host = ""
        self._port = 0
        self._tls = False
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        # One keepalive task for every connection (docs/LOBBY.md "Dead connections").
        self._keepalive = Keepalive(self.config.ping_interval_s, self.config.ping_timeout_s)
        # Plain-HTTP endpoints; a websocket upgrade on any path still reaches the lobby.
        self.routes: dict[str, HttpRoute] = {"/healthz": self._healthz}
        # Counts and event logs from the core's output (docs/LOBBY.md "Operations").
        # One name for this node in metrics, logs and the cluster: given, or the host
        # name plus a fresh random part (a restarted node must not pass for its former
        # self, whose leases and rooms the other nodes are about to adopt).
        self.node_id = self.config.node_id or f"{socket.gethostname()}-{secrets.token_hex(3)}"
        self.observer = LobbyObserver(self.core, self.node_id)
        self.routes["/metrics"] = metrics_route(self.observer, self.config.metrics_token)
        if self.config.serve_play:  # the browser client and demo page (docs/BROWSER.md)
            play = WebAssets().handle
            self.routes.update({PLAY_PATH: play, PLAY_PATH + "/": play})
        # Several nodes sharing rooms (docs/LOBBY.md "Several nodes"): a bus given
        # (in-process) or config.redis_url; None: the single-process lobby.
        self.cluster = self._cluster_for(bus)

    def _cluster_for(self, bus: LobbyBus | None) -> ClusterNode | None:
        if bus is None and self.config.redis_url is not None:
            from .lobby_redis import RedisBus  # redis is the optional "lobby" extra

            bus = RedisBus(self.config.redis_url)
        return None if bus is None else ClusterNode(self, bus)

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        cfg = self.config
        if self.cluster is not None:
            await self.cluster.start()  # registered before the first client arrives
        tls = server_ssl_context(cfg)
        self._server = await serve(
            self._handler,
            host,
            port,
            ssl=tls,
            process_request=self._process_request,
            # Signaling frames are small; per-connection deflate state costs ~64 KiB.
            compression=None,
            max_size=cfg.max_message_bytes,
            # Not websockets' keepalive (a task per connection): self._keepalive
            # pings every connection from one task, with the same timings.
            ping_interval=None,
            ping_timeout=cfg.ping_timeout_s,
            # A peer that missed its pong won't answer a close frame either: don't
            # wait long for it. Worst case, a dead peer is gone after
            # ping_interval + ping_timeout + close_timeout (5 + 10 + 2 s by default).
            close_timeout=self._close_timeout,
            logger=logging.getLogger("netcode.lobby.websockets"),
        )
        self._timer = asyncio.create_task(self._timer_loop())
        self._keepalive.start()
        sockname = self._server.sockets[0].getsockname()
        self._host, self._port = host, int(sockname[1])
        self._tls = tls is not None
        self._started = time.monotonic()
        self.observer.started(self.url)

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return _format_url(self._host, self._port, self._tls)

    async def close(self) -> None:
        """Close every connection with 1001 and stop. Idempotent."""
        if self._server is None:
            return
        if self.cluster is not None:
            await self.cluster.close()
        self._server.close(code=1001, reason="lobby shutting down")
        await self._server.wait_closed()
        await self._keepalive.close()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    async def serve_forever(self) -> None:
        """Run until cancelled or closed."""
        assert self._server is not None, "call start() first"
        await self._server.wait_closed()

    async def __aenter__(self) -> LobbyServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def health(self) -> dict[str, Any]:
        """The /healthz body."""
        stats = self.core.stats()
        return {
            "status": "ok",
            "v": 1,
            "rooms": stats.rooms,
            "connections": stats.connections,
            "peers_in_rooms": stats.peers_in_rooms,
            "reconnecting": stats.reconnecting,
            "quick_match_waiting": stats.quick_match_waiting,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "keepalive": {"pings": self._keepalive.pings, "timeouts": self._keepalive.timeouts},
        } | ({} if self.cluster is None else {"cluster": self.cluster.health()})

    # --- HTTP handshake --------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """HTTP routes, plain-HTTP 404s, and the token check; None lets websockets accept."""
        parts = urlsplit(request.path)
        upgrade = request.headers.get("Upgrade", "")
        if upgrade.lower() != "websocket":
            route = self._route(parts.path)
            if route is not None:
                return route(connection, request)
            if parts.path not in ("", "/"):
                return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found\n")
            return None  # websockets answers 426 Upgrade Required
        if not self._token_ok(parts.query, request.headers):
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing or invalid token\n")
        return None

    def _route(self, path: str) -> HttpRoute | None:
        route = self.routes.get(path)
        if route is not None:
            return route
        for prefix, handler in self.routes.items():
            if prefix.endswith("/") and path.startswith(prefix):
                return handler
        return None

    def _healthz(self, connection: ServerConnection, request: Request) -> Response:
        return self._json_response(connection, http.HTTPStatus.OK, self.health())

    def _token_ok(self, query: str, headers: Headers) -> bool:
        expected = self.config.token
        if expected is None:
            return True
        given = parse_qs(query).get("token", [""])[-1]
        auth = headers.get("Authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        # Constant time: the comparison must not leak how much of the token matched.
        return hmac.compare_digest(given.encode(), expected.encode())

    @staticmethod
    def _json_response(
        connection: ServerConnection, status: http.HTTPStatus, body: dict[str, Any]
    ) -> Response:
        response = connection.respond(status, json.dumps(body) + "\n")
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- websocket connections -------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        conn_id = next(self._ids)
        link = _Link(conn_id, ws)
        self._links[conn_id] = link
        self._keepalive.add(ws)
        try:
            self._connect(link)
            while True:  # recv() rather than `async for`: no async generator per connection
                data = await ws.recv()
                now = time.monotonic()
                self.observer.received(conn_id, now)
                if self.cluster is None:
                    self._dispatch(self.core.receive(conn_id, data, now))
                else:
                    await self.cluster.on_frame(link, data)
        except WsConnectionClosed:
            pass  # any close (1000, 1006, 1009, keepalive...): cleaned up below
        finally:
            reason = self._disconnect_reason(link)
            del self._links[conn_id]
            self.observer.disconnected(conn_id, reason)
            if self.cluster is not None:
                self.cluster.on_close(conn_id, reason)
            self._dispatch(self.core.disconnect(conn_id, reason, time.monotonic()))
            self._wake.set()  # the disconnect may have started a grace period
            await self._stop_writer(link)

    def _connect(self, link: _Link) -> None:
        """Greet a new connection. Its own frame, so that what it built (the address,
        the greeting) is not held by the handler for the connection's life."""
        address = self._address_of(link.ws)
        self._forget_handshake(link.ws)
        if hasattr(link.ws.transport, "max_size"):  # asyncio's selector transport
            link.ws.transport.max_size = _READ_CHUNK
        out = self.core.connect(link.conn_id, time.monotonic(), address)
        self._dispatch(with_turn_credentials(out, self.config, time.time()))

    async def _timer_loop(self) -> None:
        """Run the core's deadlines: sleep until the next one (or a wake), tick."""
        while True:
            deadline = self.core.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                self._dispatch(self.core.tick(time.monotonic()))
            except Exception:  # a bug here must not stop every later deadline
                log.exception("lobby timer failed")

    def _address_of(self, ws: ServerConnection) -> str | None:
        remote = ws.remote_address
        peer = str(remote[0]) if isinstance(remote, tuple) and remote else None
        # Several X-Forwarded-For headers are one list, in order (RFC 9110 5.3).
        headers = ws.request.headers.get_all("X-Forwarded-For") if ws.request else []
        forwarded = ",".join(headers) or None
        return client_address(peer, forwarded, self.config.trusted_proxies)

    @staticmethod
    def _forget_handshake(ws: ServerConnection) -> None:
        """Drop the handshake's headers, read once above: websockets keeps the request
        and response for the connection's life (two header maps, ~3.8 KiB per
        connection). ``ws.request`` itself stays (websockets tells the handshake
        from later frames by it), with no headers."""
        if ws.request is not None:
            ws.request.headers = _NO_HEADERS
        ws.response = None

    @staticmethod
    def _disconnect_reason(link: _Link) -> DisconnectReason:
        if link.kicked:
            return "kicked"
        sent, rcvd = link.ws.protocol.close_sent, link.ws.protocol.close_rcvd
        if rcvd is None and sent is not None and sent.code == _KEEPALIVE_CLOSE_CODE:
            return "timeout"
        if rcvd is not None and rcvd.code == _NORMAL_CLOSE_CODE:
            return "closed"  # the client said goodbye: it left on purpose
        return "disconnected"

    async def _stop_writer(self, link: _Link) -> None:
        writer = link.writer
        if writer is None:
            return
        if not writer.done() and not link.closing:
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer

    def _dispatch(self, out: Output) -> None:
        """Queue the core's output on each recipient's writer (never blocks); with
        several nodes, output that follows a room change waits for its snapshot."""
        if self.cluster is not None and self.cluster.hold(out):
            return
        self._deliver(out)

    def _deliver(self, out: Output) -> None:
        for conn_id, item in out:
            link = self._links.get(conn_id)
            if link is None:
                if self.cluster is not None:  # a connection another node proxies here
                    self.cluster.deliver(conn_id, item)
                continue
            if link.closing:
                continue
            if isinstance(item, CloseConnection):
                self.observer.close(conn_id, item)
                self._dispatch_close(link, item)
                continue
            try:
                frame = self._encode(item)
            except ValueError as exc:
                log.warning("not sending an unencodable %s to %s: %s", item.TYPE, conn_id, exc)
                continue
            self.observer.sent(conn_id, item, len(frame))
            self._push_frame(link, frame)
        if self.cluster is not None and self.core.dirty:
            self.cluster.changed()

    @staticmethod
    def _encode(item: ServerMessage) -> bytes:
        """One server message as a UTF-8 frame; ValueError if it cannot be encoded."""
        try:
            return serialize(item).encode("utf-8")
        except (LobbyProtocolError, UnicodeEncodeError) as exc:
            # The codec refuses what cannot be encoded at decode already; never
            # let a miss kill the connection of the recipient.
            raise ValueError(str(exc)) from None

    def _dispatch_close(self, link: _Link, item: CloseConnection) -> None:
        if link.closing:
            return
        link.closing = link.kicked = True
        self._enqueue(link, item)  # after the error reply queued before it

    def _push_frame(self, link: _Link, frame: bytes) -> None:
        """Queue one encoded frame on ``link``'s writer (a reader too slow is dropped)."""
        if link.closing:
            return
        link.queued_bytes += len(frame)
        too_many = link.queue is not None and len(link.queue) >= MAX_OUTBOUND_MESSAGES
        if too_many or link.queued_bytes > self.config.max_outbound_bytes:
            self._drop_slow_reader(link.conn_id, link)
        else:
            self._enqueue(link, frame)
            self._report_backlog(link)

    def _enqueue(self, link: _Link, item: bytes | CloseConnection) -> None:
        if link.queue is None:
            link.queue = collections.deque()
        link.queue.append(item)
        if link.writer is None:  # started on demand; it exits when the queue is empty
            link.writer = asyncio.create_task(self._write_loop(link))

    def _report_backlog(self, link: _Link) -> None:
        queued = 0 if link.queue is None else len(link.queue)
        self.core.report_backlog(link.conn_id, link.queued_bytes, queued)

    def _drop_slow_reader(self, conn_id: ConnId, link: _Link) -> None:
        """A client that does not read would make us buffer without bound: close it
        now, past its clogged queue (the writer is stuck in send())."""
        self.observer.close(conn_id, CloseConnection(CLOSE_POLICY_VIOLATION, "not reading"))
        link.closing = link.kicked = True
        if link.writer is not None:
            link.writer.cancel()
        link.writer = asyncio.create_task(
            self._close_or_abort(link.ws, CLOSE_POLICY_VIOLATION, "not reading")
        )

    async def _close_or_abort(self, ws: ServerConnection, code: int, reason: str) -> None:
        # With its buffers full the close frame may never get out (websockets waits
        # for the transport to drain first): give up after the close timeout.
        try:
            async with asyncio.timeout(self._close_timeout):
                await ws.close(code, reason)
        except TimeoutError:
            ws.transport.abort()

    async def _write_loop(self, link: _Link) -> None:
        try:
            while link.queue:
                item = link.queue.popleft()
                if isinstance(item, CloseConnection):
                    await self._close_or_abort(link.ws, item.code, item.reason)
                    return
                await link.ws.send(item, text=True)
                link.queued_bytes -= len(item)
                self._report_backlog(link)
        except WsConnectionClosed:
            return
        finally:
            # Not if a close task has replaced this writer (_drop_slow_reader).
            if link.writer is asyncio.current_task():
                link.writer = None
                if not link.queue:
                    link.queue = None  # drained: an idle connection keeps no deque


async def serve_lobby(
    host: str = "127.0.0.1",
    port: int = 0,
    config: LobbyConfig | None = None,
    *,
    bus: LobbyBus | None = None,
) -> LobbyServer:
    """Start a lobby on ``host:port`` (0: a free port) and return its handle.

    ``server.url`` is what clients connect to; ``await server.close()`` or
    ``async with await serve_lobby(...) as server:`` shuts it down. ``bus``: share
    rooms with the other servers on it (a :class:`netcode.net.lobby_bus.MemoryBus`
    in one process; ``config.redis_url`` for separate processes).
    """
    if not isinstance(host, str):
        raise ConfigError(f"host must be a str, got {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an int in 0..65535, got {port!r}")
    if config is not None and not isinstance(config, LobbyConfig):
        raise ConfigError(f"config must be a LobbyConfig, got {type(config).__name__}")
    server = LobbyServer(config, bus=bus)
    await server.start(host, port)
    return server
