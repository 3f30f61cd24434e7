"""``python -m netcode lobby`` as a real subprocess: URL printed, healthz, clean SIGINT."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import pytest

from netcode.errors import ConnectionClosed
from netcode.net.lobby_cli import _config_from_args, _parser, cli_main
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT, http_get

URL = re.compile(r"listening on (ws://127\.0\.0\.1:(\d+))")


async def _read_url(proc: asyncio.subprocess.Process) -> tuple[str, int]:
    assert proc.stdout is not None
    async with asyncio.timeout(TIMEOUT * 2):  # a cold interpreter start on a busy box
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "lobby exited before printing its URL"
            match = URL.search(line)
            if match:
                return match.group(1), int(match.group(2))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_cli_serves_and_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "netcode",
        "lobby",
        "--port",
        "0",
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url, port = await _read_url(proc)
        assert port > 0
        status, _, body = await http_get("127.0.0.1", port, "/healthz")
        assert status == 200 and json.loads(body)["connections"] == 0
        client = await SignalingClient.connect(url, timeout=TIMEOUT)
        await client.create_room()
        proc.send_signal(sig)
        with pytest.raises(ConnectionClosed, match="1001"):
            async with asyncio.timeout(TIMEOUT):
                await client.next_event()
        await client.close()
        async with asyncio.timeout(TIMEOUT):
            _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    assert "--max-message-bytes" in capsys.readouterr().out
    assert cli_main(["--port", "not-a-number"]) == 2
    assert cli_main(["--port", "70000"]) == 2  # a usage error, not a bind() traceback
    assert cli_main(["--port", "-1"]) == 2
    assert cli_main(["--max-rooms", "0"]) == 2
    assert cli_main(["--rate-limit", "nan"]) == 2
    assert cli_main(["--max-message-bytes", "10"]) == 2  # LobbyConfig refuses < 1024
    assert "max_message_bytes" in capsys.readouterr().err


def test_cli_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert cli_main(["--port", str(port), "--log-level", "error"]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_cli_flags_map_to_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETCODE_LOBBY_TOKEN", "from-env")
    argv = "--max-players-limit 4 --rate-limit 50 --ice-server stun:s:3478"
    argv += " --ice-server turn:t:3478 --ice-username u --ice-credential c"
    args = _parser().parse_args(argv.split())
    config = _config_from_args(args)
    assert config.token == "from-env"
    assert (config.max_players_limit, config.default_max_players) == (4, 4)
    assert config.rate_limit_per_s == 50.0
    stun, turn = config.ice_servers
    assert (stun.urls, stun.username) == (("stun:s:3478",), None)
    assert (turn.urls, turn.username, turn.credential) == (("turn:t:3478",), "u", "c")
    assert _config_from_args(_parser().parse_args(["--token", "flag"])).token == "flag"


def test_cli_abuse_limit_flags_map_to_config() -> None:
    argv = "--max-connections-per-ip 4 --rate-burst 50 --byte-rate-limit 1000"
    argv += " --byte-burst 70000 --max-errors 7 --error-refill 0.5 --max-outbound-bytes 200000"
    argv += " --trusted-proxy 127.0.0.1 --trusted-proxy 10.0.0.0/8"
    config = _config_from_args(_parser().parse_args(argv.split()))
    assert config.max_connections_per_ip == 4
    assert (config.rate_limit_burst, config.byte_rate_limit_per_s) == (50.0, 1000.0)
    assert (config.byte_rate_burst, config.max_outbound_bytes) == (70_000, 200_000)
    assert (config.max_errors_before_close, config.error_refill_per_s) == (7, 0.5)
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    defaults = _config_from_args(_parser().parse_args([]))
    assert defaults.max_connections_per_ip == 32 and defaults.trusted_proxies == ()
    off = _config_from_args(_parser().parse_args(["--max-connections-per-ip", "0"]))
    assert off.max_connections_per_ip is None


def test_cli_refuses_bad_abuse_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--max-connections-per-ip", "-1"]) == 2
    assert cli_main(["--byte-burst", "100"]) == 2  # below --max-message-bytes
    assert cli_main(["--trusted-proxy", "proxy.example"]) == 2
    err = capsys.readouterr().err
    assert "max_connections_per_ip" in err and "byte_rate_burst" in err
    assert "trusted_proxies" in err
    assert cli_main(["--help"]) == 0
    assert "--max-connections-per-ip" in capsys.readouterr().out
