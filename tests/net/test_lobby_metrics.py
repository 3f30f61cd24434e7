"""/metrics and the event log lines of a real lobby on 127.0.0.1 (issue 14, Operations)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netcode.errors import NotOwner
from netcode.lobby.messages import SignalMsg
from netcode.net import lobby_metrics
from netcode.net.lobby_log import JsonFormatter, KeyValueFormatter, RedactSecrets
from tests.lobby.netutil import (
    TIMEOUT,
    clients,
    http_get,
    lobby,
    raw_client,
    recv_json,
    wait_until,
)

TOKEN = "lobby-token-7f3a9c"
TURN_SECRET = "turn-secret-0123456789abcdef"
METRICS_TOKEN = "metrics-token-55aa"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset({"node": "n1", **labels}.items())), 0.0)


async def scrape(port: int, **kwargs: Any) -> dict[Any, float]:
    status, headers, body = await http_get("127.0.0.1", port, "/metrics", **kwargs)
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=")
    return samples(body)


async def test_scrape_counts_join_relay_error_and_rate_limit() -> None:
    # Each connection may send 3 frames at once and almost nothing after.
    async with lobby(node_id="n1", rate_limit_per_s=0.001, rate_limit_burst=3.0) as server:
        async with clients(server.url, 2) as (a, b):
            room = await a.create_room()
            await b.join_room(room.room)
            await a.send_signal(b.peer_id, "offer", {"sdp": "x" * 100})
            async with asyncio.timeout(TIMEOUT):
                while not isinstance(await b.next_event(), SignalMsg):
                    pass
            async with raw_client(server.url) as rogue:
                await recv_json(rogue)  # welcome
                for _ in range(4):  # 3 refused (bad_json), the 4th is over the burst
                    await rogue.send("not json")
                async with asyncio.timeout(TIMEOUT):
                    await rogue.wait_closed()
                assert rogue.close_code == 1008
            scraped = await scrape(server.port)
            assert value(scraped, "netcode_lobby_connections") == 2
            assert value(scraped, "netcode_lobby_rooms") == 1
            assert value(scraped, "netcode_lobby_peers_in_rooms") == 2
            assert value(scraped, "netcode_lobby_connections_opened_total") == 3
            assert value(scraped, "netcode_lobby_joins_total") == 2
            assert value(scraped, "netcode_lobby_relayed_messages_total") == 1
            relayed = value(scraped, "netcode_lobby_relayed_bytes_total")
            assert 100 < relayed < 300
            assert value(scraped, "netcode_lobby_errors_total", code="bad_json") == 3
            closes = value(
                scraped, "netcode_lobby_closes_total", code="1008", reason="rate_limit_exceeded"
            )
            assert closes == 1
            assert value(scraped, "netcode_lobby_rate_limited_total", limit="messages") == 1
            assert value(scraped, "netcode_lobby_rate_limited_total", limit="bytes") == 0
            assert value(scraped, "netcode_lobby_disconnects_total", reason="kicked") == 1
            assert value(scraped, "netcode_lobby_join_latency_seconds_count") == 2
            assert value(scraped, "netcode_lobby_join_latency_seconds_bucket", le="+Inf") == 2
            assert 0 < value(scraped, "netcode_lobby_join_latency_seconds_sum") < TIMEOUT
            assert value(scraped, "netcode_lobby_messages_sent_total", type="welcome") == 3
        await wait_until(lambda: not server.core.connections(), "clients gone")
        scraped = await scrape(server.port)
        assert value(scraped, "netcode_lobby_connections") == 0
        assert value(scraped, "netcode_lobby_disconnects_total", reason="closed") == 2
        assert not server.observer._conns  # nothing kept per connection once it is gone


async def test_each_lobby_has_its_own_series() -> None:
    async with (
        lobby(node_id="n1") as one,
        lobby(node_id="n2") as two,
        clients(one.url, 1) as (a,),
    ):
        await a.create_room()
        first, second = await scrape(one.port), await scrape(two.port)
    assert value(first, "netcode_lobby_joins_total") == 1
    assert value(second, "netcode_lobby_joins_total") == 0  # labelled n1: absent in n2
    node_two = ("netcode_lobby_joins_total", frozenset({("node", "n2")}))
    assert second[node_two] == 0


async def test_default_node_is_host_and_port() -> None:
    import socket

    async with lobby() as server:
        status, _, body = await http_get("127.0.0.1", server.port, "/metrics")
    assert status == 200
    assert f'node="{server.node_id}"' in body and server.node_id.startswith(socket.gethostname())


async def test_metrics_token() -> None:
    async with lobby(node_id="n1", metrics_token=METRICS_TOKEN) as server:
        status, _, _ = await http_get("127.0.0.1", server.port, "/metrics")
        assert status == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http_get("127.0.0.1", server.port, "/metrics", headers=wrong))[0] == 401
        good = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        scraped = await scrape(server.port, headers=good)
        assert value(scraped, "netcode_lobby_connections") == 0
        assert (await http_get("127.0.0.1", server.port, "/healthz"))[0] == 200  # probes stay open


async def test_without_prometheus_client_metrics_answer_501(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lobby_metrics, "metrics_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="netcode.lobby"):
        async with lobby() as server:
            status, _, body = await http_get("127.0.0.1", server.port, "/metrics")
            async with clients(server.url, 1) as (a,):
                await a.create_room()  # the lobby itself works
    assert status == 501
    assert body.strip() == lobby_metrics.METRICS_UNAVAILABLE and "\n" not in body.strip()
    warnings = [r for r in caplog.records if "prometheus-client" in r.getMessage()]
    assert len(warnings) == 1


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        r.netcode_event  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "netcode.lobby.events"
    ]


async def test_one_log_line_per_event_and_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "node_id": "n1",
        "token": TOKEN,
        "turn_urls": ("turn:203.0.113.1:3478",),
        "turn_secret": TURN_SECRET,
        "metrics_token": METRICS_TOKEN,
    }
    with caplog.at_level(logging.DEBUG):
        async with lobby(**config) as server:
            async with clients(server.url, 2, token=TOKEN) as (a, b):
                room = await a.create_room()
                await b.join_room(room.room)
                await a.send_signal(b.peer_id, "offer", None)
                with pytest.raises(NotOwner):
                    await b.kick(a.peer_id)
                await a.kick(b.peer_id)  # b stays connected, in no room
                await a.leave_room()
            await wait_until(lambda: not server.core.connections(), "clients gone")
    events = _events(caplog)
    kinds = [e["event"] for e in events]
    assert kinds.count("connect") == 2 and kinds.count("join") == 2
    assert kinds.count("kick") == 1 and kinds.count("leave") == 1
    assert kinds.count("error") == 1 and kinds.count("disconnect") == 2
    assert "signal" not in kinds  # relays are counted, not logged
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "not_owner" and error["room"] == room.room
    kick = next(e for e in events if e["event"] == "kick")
    assert (kick["peer"], kick["room"], kick["node"]) == (b.peer_id, room.room, "n1")
    # The lobby's own loggers; websockets' wire dumps at DEBUG (netcode.lobby.websockets)
    # are capped at INFO by the CLI (test_lobby_ops_cli checks the process's stderr).
    own = [r for r in caplog.records if r.name in ("netcode.lobby", "netcode.lobby.events")]
    assert own
    text = "".join(KeyValueFormatter().format(r) + JsonFormatter().format(r) for r in own)
    assert room.token
    for secret in (TOKEN, TURN_SECRET, METRICS_TOKEN, room.token):
        assert secret not in text


def test_formatters_write_one_line_per_record() -> None:
    fields = {"event": "close", "node": "n1", "peer": "p1", "code": 1008, "reason": 'a "b"\nc'}
    record = logging.LogRecord("netcode.lobby.events", logging.INFO, "", 0, "%s", ("x",), None)
    record.netcode_event = fields
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert 'event=close node=n1 peer=p1 code=1008 reason="a \\"b\\"\\nc"' in line
    obj = json.loads(JsonFormatter().format(record))
    assert {k: obj[k] for k in fields} == fields and obj["level"] == "info"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        plain = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    assert "\n" not in KeyValueFormatter().format(plain)
    assert "ValueError: boom" in json.loads(JsonFormatter().format(plain))["exc"]


def test_redaction_filter_hides_configured_secrets() -> None:
    record = logging.LogRecord("ws", logging.DEBUG, "", 0, "GET /?token=%s", (TOKEN,), None)
    assert RedactSecrets([TOKEN, None]).filter(record)
    assert TOKEN not in record.getMessage() and "[redacted]" in record.getMessage()
