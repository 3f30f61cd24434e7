"""What the lobby tells its operators: Prometheus ``/metrics`` and one log line per event.

:class:`LobbyObserver` watches the pure core's output where the server queues it
(``LobbyServer._dispatch``): per outgoing message one dictionary update keyed by the
message's ``TYPE`` (no parsing, no prometheus-client object on the hot path), and
for the rare lifecycle messages (welcome, room_joined, room_left, kicked, error) a
structured log line. Gauges (connections, rooms...) are read from
``LobbyCore.stats()`` only when ``/metrics`` is scraped.

Exposition uses a :class:`prometheus_client.CollectorRegistry` per server (several
lobbies may run in one process: tests, multi-node setups), never the global one.
prometheus-client is optional (the ``lobby`` extra): without it counting and logs
still work and ``/metrics`` answers 501 saying what to install.
"""

from __future__ import annotations

import bisect
import hmac
import http
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..lobby.rooms import CloseConnection, ConnId, DisconnectReason, LobbyCore, Outgoing
from .lobby_log import key_values

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    from .lobby_server import HttpRoute

__all__ = [
    "JOIN_LATENCY_BUCKETS",
    "METRICS_UNAVAILABLE",
    "LobbyObserver",
    "event_log",
    "metrics_available",
    "metrics_route",
]

log = logging.getLogger("netcode.lobby")
event_log = logging.getLogger("netcode.lobby.events")

# Seconds. A local join is core work (tens of µs); a slow one waited on the event
# loop, or (multi-node) on another node.
JOIN_LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
METRICS_UNAVAILABLE = "metrics need prometheus-client: pip install 'netcode[lobby]'"
# Label values come from server-side strings (error codes, close reasons): bounded
# already, capped anyway so a future free-text reason cannot grow a series per call.
_MAX_LABEL_VALUES = 64
_SLUG = re.compile(r"[^a-z0-9]+")
_RATE_LIMITS = {"rate_limit_exceeded": "messages", "byte_rate_limit_exceeded": "bytes"}


def metrics_available() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(slots=True)
class _ConnInfo:
    """What a log line needs after the core has forgotten the connection."""

    peer: str
    room: str | None = None
    received: float = 0.0  # monotonic time of its last frame (join latency)
    waiting: bool = False  # in a quick-match queue: its join latency is queue time


class _Fields:
    """A log message rendered ``event=join node=a room=B peer=c`` when formatted."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, object]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return key_values(self.fields)


class LobbyObserver:
    """Counts the core's output and logs its lifecycle events (see module doc).

    The server calls :meth:`received` per frame read, :meth:`sent` per message
    queued, :meth:`close` per close it orders and :meth:`disconnected` per socket
    gone. ``node`` names this lobby in every series and log line.
    """

    def __init__(self, core: LobbyCore, node: str = "") -> None:
        self.core = core
        self.node = node
        self.sent_by_type: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.closes: dict[tuple[int, str], int] = {}
        self._close_reasons: set[str] = set()
        self.disconnects: dict[str, int] = {}
        self.relayed_bytes = 0
        self.latency_buckets = [0] * (len(JOIN_LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._conns: dict[ConnId, _ConnInfo] = {}
        self._now = 0.0
        self._on = {
            "welcome": self._on_welcome,
            "room_joined": self._on_joined,
            "room_left": self._on_left,
            "kicked": self._on_kicked,
            "error": self._on_error,
            "quick_match_waiting": self._on_waiting,
        }

    # --- called by the server --------------------------------------------------------

    def started(self, url: str) -> None:
        self._event(logging.INFO, "listening", url=url)
        if not metrics_available():
            log.warning("/metrics disabled: %s", METRICS_UNAVAILABLE)

    def received(self, conn_id: ConnId, now: float) -> None:
        self._now = now
        info = self._conns.get(conn_id)
        if info is not None:
            info.received = now

    def sent(self, conn_id: ConnId, item: Outgoing, nbytes: int) -> None:
        """One message queued for ``conn_id`` (``nbytes``: its encoded frame)."""
        kind = item.TYPE  # type: ignore[union-attr]  # never a CloseConnection here
        counts = self.sent_by_type
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "signal":  # the hot path: nothing more
            self.relayed_bytes += nbytes
            return
        handler = self._on.get(kind)
        if handler is not None:
            handler(conn_id, item)

    def close(self, conn_id: ConnId, order: CloseConnection) -> None:
        reason = _slug(order.reason)
        if reason not in self._close_reasons:
            if len(self._close_reasons) >= _MAX_LABEL_VALUES:
                reason = "other"
            self._close_reasons.add(reason)
        key = (order.code, reason)
        self.closes[key] = self.closes.get(key, 0) + 1
        info = self._conns.get(conn_id)
        self._event(
            logging.INFO,
            "close",
            room=None if info is None else info.room,
            peer=None if info is None else info.peer,
            code=order.code,
            reason=order.reason,
        )

    def disconnected(self, conn_id: ConnId, reason: DisconnectReason) -> None:
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1
        info = self._conns.pop(conn_id, None)
        if info is not None:  # refused before welcome: its close was the event
            self._event(logging.INFO, "disconnect", room=info.room, peer=info.peer, reason=reason)

    # --- lifecycle messages ----------------------------------------------------------

    def _on_welcome(self, conn_id: ConnId, item: Any) -> None:
        self._conns[conn_id] = _ConnInfo(item.peer_id, received=self._now)
        self._event(logging.INFO, "connect", peer=item.peer_id)

    def _on_joined(self, conn_id: ConnId, item: Any) -> None:
        info = self._conns.get(conn_id)
        if info is None:
            return
        if not info.waiting and info.received:
            self._observe_latency(time.monotonic() - info.received)
        info.room, info.peer, info.waiting = item.room, item.peer_id, False
        self._event(logging.INFO, "join", room=item.room, peer=item.peer_id)

    def _on_left(self, conn_id: ConnId, item: Any) -> None:
        info = self._conns.get(conn_id)
        if info is not None:
            info.room = None
            self._event(logging.INFO, "leave", room=item.room, peer=info.peer)

    def _on_kicked(self, conn_id: ConnId, item: Any) -> None:
        info = self._conns.get(conn_id)
        if info is not None:
            info.room = None
            self._event(logging.INFO, "kick", room=item.room, peer=info.peer)

    def _on_error(self, conn_id: ConnId, item: Any) -> None:
        code = item.code if item.code in self.errors else self._cap_error(item.code)
        self.errors[code] = self.errors.get(code, 0) + 1
        info = self._conns.get(conn_id)
        peer, room = (None, None) if info is None else (info.peer, info.room)
        self._event(logging.INFO, "error", room=room, peer=peer, code=item.code)

    def _on_waiting(self, conn_id: ConnId, item: Any) -> None:
        info = self._conns.get(conn_id)
        if info is not None:
            info.waiting = True

    # --- helpers ---------------------------------------------------------------------

    def _observe_latency(self, seconds: float) -> None:
        self.latency_buckets[bisect.bisect_left(JOIN_LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def _event(self, level: int, event: str, **fields: object) -> None:
        if not event_log.isEnabledFor(level):
            return
        record = {"event": event, "node": self.node, **fields}
        event_log.log(level, "%s", _Fields(record), extra={"netcode_event": record})

    def _cap_error(self, code: str) -> str:
        return code if len(self.errors) < _MAX_LABEL_VALUES else "other"


def _slug(reason: str) -> str:
    return _SLUG.sub("_", reason.lower()).strip("_")[:48] or "none"


# --- exposition (prometheus-client) --------------------------------------------------


def _families(observer: LobbyObserver) -> Iterator[Any]:
    """Every series, built at scrape time from the observer's plain counters."""
    yield from _gauges(observer)
    yield from _counters(observer)
    yield from _closes(observer)
    yield _join_latency(observer)


def _gauges(observer: LobbyObserver) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    stats = observer.core.stats()
    for name, value, doc in (
        ("connections", stats.connections, "open websocket connections"),
        ("rooms", stats.rooms, "rooms that exist"),
        ("peers_in_rooms", stats.peers_in_rooms, "connected room members"),
        ("reconnecting", stats.reconnecting, "seats kept for a dropped member"),
        ("quick_match_waiting", stats.quick_match_waiting, "connections in quick-match queues"),
    ):
        g = GaugeMetricFamily(f"netcode_lobby_{name}", doc, labels=["node"])
        g.add_metric([observer.node], value)
        yield g


def _counters(observer: LobbyObserver) -> Iterator[Any]:
    node, sent = [observer.node], observer.sent_by_type
    yield _counter("connections_opened", "connections welcomed", node, sent.get("welcome", 0))
    yield _counter("joins", "room_joined sent (create, join, rejoin, match)", node,
                   sent.get("room_joined", 0))  # fmt: skip
    yield _counter("relayed_messages", "signals relayed", node, sent.get("signal", 0))
    yield _counter("relayed_bytes", "bytes of relayed signal frames", node, observer.relayed_bytes)
    yield _labelled("messages_sent", "messages queued by type", "type", node, sent)
    yield _labelled("errors", "error replies by code", "code", node, observer.errors)
    yield _labelled("disconnects", "sockets gone by reason", "reason", node, observer.disconnects)


def _closes(observer: LobbyObserver) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily

    closes = CounterMetricFamily(
        "netcode_lobby_closes", "closes ordered by the server", labels=["node", "code", "reason"]
    )
    limited = dict.fromkeys(_RATE_LIMITS.values(), 0)
    for (code, reason), n in sorted(observer.closes.items()):
        closes.add_metric([observer.node, str(code), reason], n)
        if reason in _RATE_LIMITS:
            limited[_RATE_LIMITS[reason]] += n
    yield closes
    yield _labelled("rate_limited", "connections closed over a rate limit", "limit",
                    [observer.node], limited)  # fmt: skip


def _join_latency(observer: LobbyObserver) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    hist = HistogramMetricFamily(
        "netcode_lobby_join_latency_seconds",
        "join request read -> room_joined queued, on the node that read it",
        labels=["node"],
    )
    cumulative, buckets = 0, []
    edges = (*map(str, JOIN_LATENCY_BUCKETS), "+Inf")
    for le, n in zip(edges, observer.latency_buckets, strict=True):
        cumulative += n
        buckets.append((le, cumulative))
    hist.add_metric([observer.node], buckets, observer.latency_sum)
    return hist


def _counter(name: str, doc: str, node: list[str], value: float) -> Any:
    from prometheus_client.core import CounterMetricFamily

    c = CounterMetricFamily(f"netcode_lobby_{name}", doc, labels=["node"])
    c.add_metric(node, value)
    return c


def _labelled(name: str, doc: str, label: str, node: list[str], values: Mapping[str, int]) -> Any:
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(f"netcode_lobby_{name}", doc, labels=["node", label])
    for key, n in sorted(values.items()):
        family.add_metric([*node, key], n)
    return family


class _Collector:
    def __init__(self, observer: LobbyObserver) -> None:
        self.observer = observer

    def collect(self) -> Iterator[Any]:
        return _families(self.observer)


def metrics_text(observer: LobbyObserver) -> bytes:
    """The Prometheus text exposition of one lobby (its own registry)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(observer))
    text: bytes = generate_latest(registry)
    return text


def metrics_route(observer: LobbyObserver, token: str | None = None) -> HttpRoute:
    """The ``GET /metrics`` handler; with ``token``, only for ``Authorization: Bearer``."""
    available = metrics_available()

    def route(connection: ServerConnection, request: Request) -> Response:
        if not available:
            return connection.respond(http.HTTPStatus.NOT_IMPLEMENTED, METRICS_UNAVAILABLE + "\n")
        if token is not None:
            auth = request.headers.get("Authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            # Constant time, like the lobby token.
            if not hmac.compare_digest(given.encode(), token.encode()):
                return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Missing or bad token\n")
        from prometheus_client import CONTENT_TYPE_LATEST

        response = connection.respond(http.HTTPStatus.OK, metrics_text(observer).decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response

    return route
