"""netcode.net.ice: the relay check, path types, the transport policy, lobby TURN options."""

from __future__ import annotations

import json
import logging

import pytest

from netcode.config import IceServer, LobbyConfig, SessionConfig
from netcode.errors import ConfigError, TransportError
from netcode.net.ice import check_relay, path_type, relay_problem, rtc_ice_transport_policy
from netcode.net.lobby_cli import _config_from_args, _parser
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT, http_get, lobby

TURN = (IceServer(urls="stun:s:1"), IceServer(urls=("turn:t:3478",), username="u", credential="c"))
HOST = "a=candidate:1 1 udp 2130706431 198.51.100.2 40000 typ host\r\n"
RELAY = "a=candidate:2 1 udp 16777215 203.0.113.1 49160 typ relay raddr 0.0.0.0 rport 0\r\n"
SECRET = "lab-secret-0123456789"


@pytest.mark.parametrize(
    ("local", "remote", "path"),
    [
        ("host", "host", "host"),
        ("host", "srflx", "srflx"),
        ("host", "prflx", "srflx"),
        ("srflx", "host", "srflx"),
        ("host", "relay", "relay"),
        ("relay", "prflx", "relay"),
    ],
)
def test_path_type(local: str, remote: str, path: str) -> None:
    assert path_type(local, remote) == path


def test_relay_problem() -> None:
    assert relay_problem(HOST + RELAY, TURN, "relay") is None
    assert relay_problem(HOST, (), "all") is None  # no TURN asked for: nothing missing
    assert "no TURN server" in (relay_problem(HOST, TURN[:1], "relay") or "")
    why = relay_problem(HOST, TURN, "all") or ""
    assert "turn:t:3478" in why and "credentials" in why


def test_check_relay_fails_relay_only_and_warns_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TransportError, match="no relay candidate from TURN server turn:t:3478"):
        check_relay(HOST, TURN, "relay", "p1")
    with caplog.at_level(logging.WARNING, logger="netcode.ice"):
        check_relay(HOST, TURN, "all", "p1")
    assert "peer p1: no relay candidate" in caplog.text
    check_relay(HOST + RELAY, TURN, "relay", "p1")  # fine: no raise


def test_policy() -> None:
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    assert rtc_ice_transport_policy("relay") == RTCIceTransportPolicy.RELAY
    assert rtc_ice_transport_policy("all") == RTCIceTransportPolicy.ALL
    with pytest.raises(ConfigError, match="ice_transport_policy"):
        SessionConfig(ice_transport_policy="turn")  # type: ignore[arg-type]


def test_cli_flags_and_env() -> None:
    args = _parser().parse_args(
        ["--turn-url", "turn:203.0.113.1:3478", "--stun-url", "stun:203.0.113.1:3478"]
    )
    cfg = _config_from_args_env(args, {"NETCODE_TURN_SECRET": SECRET, "NETCODE_TURN_TTL": "120"})
    assert cfg.turn_urls == ("turn:203.0.113.1:3478",) and cfg.turn_secret == SECRET
    assert cfg.stun_urls == ("stun:203.0.113.1:3478",) and cfg.turn_ttl_s == 120
    env = {"NETCODE_TURN_URLS": "turn:a:1, turn:b:2", "NETCODE_TURN_SECRET": SECRET}
    cfg = _config_from_args_env(_parser().parse_args([]), env)
    assert cfg.turn_urls == ("turn:a:1", "turn:b:2")
    with pytest.raises(ConfigError, match="turn_secret"):
        _config_from_args_env(_parser().parse_args(["--turn-url", "turn:a:1"]), {})
    assert SECRET not in _parser().format_help()


def test_secret_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "secret"  # type: ignore[operator]
    path.write_text(SECRET + "\n")
    args = _parser().parse_args(["--turn-url", "turn:a:1", "--turn-secret-file", str(path)])
    assert _config_from_args_env(args, {}).turn_secret == SECRET


def _config_from_args_env(args: object, env: dict[str, str]) -> LobbyConfig:
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return _config_from_args(args)  # type: ignore[arg-type]


async def test_welcome_carries_minted_credentials_secret_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = {"turn_urls": ("turn:203.0.113.1:3478",), "turn_secret": SECRET, "turn_ttl_s": 300}
    with caplog.at_level(logging.DEBUG):
        async with lobby(**cfg) as server:
            client = await SignalingClient.connect(server.url, timeout=TIMEOUT)
            try:
                turn = client.ice_servers[0]
                assert turn.urls == ("turn:203.0.113.1:3478",)
                assert turn.username is not None and turn.username.endswith(":" + client.peer_id)
                assert turn.credential and turn.credential != SECRET
                status, _, body = await http_get(server.host, server.port, "/healthz")
                assert status == 200 and json.loads(body)["connections"] == 1
                assert SECRET not in body
            finally:
                await client.close()
    assert SECRET not in caplog.text


async def test_a_rejoining_session_takes_fresh_credentials() -> None:
    """The lobby connection drops; the session's new welcome brings new TURN
    credentials, and links it builds from then on use them."""
    from netcode.lobby.turn import turn_password
    from netcode.net.session import connect
    from tests.helpers import LOOPBACK
    from tests.lobby.netutil import wait_until

    cfg = {"turn_urls": ("turn:127.0.0.1:9",), "turn_secret": SECRET, "reconnect_grace_s": 20.0}
    async with lobby(**cfg) as server, connect(server.url, create=True, config=LOOPBACK) as a:
        before = a._ice_servers[0]
        old = a._client
        await old.abort()  # the lobby socket dies
        await wait_until(lambda: a._client is not old and a.lobby_connected, "rejoined")
        after = a._ice_servers[0]
        assert after.username != before.username
        # Named after the new connection's welcome id: the seat is only known later.
        assert after.username is not None and before.username is not None
        assert after.username.split(":")[1] != before.username.split(":")[1]
        assert after.credential == turn_password(SECRET, after.username)


def test_path_on_loopback_is_host_and_the_net_graph_shows_it() -> None:
    """Two players on one machine: host -> host, seen by SyncSession.link_view and
    written on the demo's net graph."""
    from demo_game.netgraph import NetGraphData, NetSample
    from netcode.net.sync import connect_sync
    from tests.helpers import LOOPBACK, TIMEOUT, lobby_in_thread

    with (
        lobby_in_thread() as url,
        connect_sync(url, create=True, config=LOOPBACK) as a,
        connect_sync(url, room=a.room, config=LOOPBACK) as b,
    ):
        a.wait_for_peers(1, TIMEOUT)
        b.wait_for_peers(1, TIMEOUT)
        view = a.link_view(b.peer_id)
        assert view is not None and view.path == "host"
        assert a.link_view("nobody") is None
    graph = NetGraphData()
    graph.add(NetSample(1.0, 0.5, 0.0, 10.0, 10.0, 300, 7, 60.0, path=view.path))
    assert "path host" in graph.text_lines()[0]
    graph.add(NetSample(1.0, 0.5, 0.0, 10.0, 10.0, 300, 8, 60.0))
    assert "path" not in graph.text_lines()[0]
