"""``netcode lobby`` flags generated from LobbyConfig, their environment variables,
the docs table, and the process's log lines (format, level, no secret)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import LobbyConfig
from netcode.errors import ConfigError
from netcode.net.lobby_cli import _config_from_args, _parser, cli_main, config_options
from netcode.net.lobby_cli import flags_markdown as table
from netcode.net.signaling import SignalingClient
from tests.lobby.netutil import TIMEOUT

DOC = Path(__file__).resolve().parents[2] / "docs" / "LOBBY.md"
SECRET = "s3cret-token-value-42"
TURN_SECRET = "turn-secret-0123456789abcdef"


def config(argv: list[str], env: dict[str, str] | None = None) -> LobbyConfig:
    return _config_from_args(_parser().parse_args(argv), env or {})


def test_every_field_is_a_flag_with_help_and_a_variable() -> None:
    options = {o.dest: o for o in config_options()}
    for f in dataclasses.fields(LobbyConfig):
        if f.name == "ice_servers":  # records: --ice-server/--ice-username/--ice-credential
            continue
        opt = options[f.name]
        assert opt.help and opt.env.startswith("NETCODE_"), f.name
    flags = [o.flag for o in config_options()]
    envs = [o.env for o in config_options()]
    assert len(set(flags)) == len(flags) and len(set(envs)) == len(envs)


def test_a_new_field_becomes_a_flag_without_an_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Grown(LobbyConfig):
        widgets: int = dataclasses.field(default=3, metadata={"help": "how many widgets"})
        tags: tuple[str, ...] = dataclasses.field(default=(), metadata={"help": "tags"})
        fast: bool = dataclasses.field(default=False, metadata={"help": "go fast"})

    import netcode.net.lobby_cli as cli

    monkeypatch.setattr(cli, "LobbyConfig", Grown)
    args = _parser().parse_args(["--widgets", "5"])
    grown = cli._config_from_args(args, {"NETCODE_LOBBY_TAGS": "x, y", "NETCODE_LOBBY_FAST": "yes"})
    assert (grown.widgets, grown.tags, grown.fast) == (5, ("x", "y"), True)  # type: ignore[attr-defined]
    assert "--no-fast" in _parser().format_help()


def test_precedence_flag_then_env_then_default() -> None:
    env = {"NETCODE_LOBBY_MAX_ROOMS": "7", "NETCODE_LOBBY_RATE_LIMIT": "9.5"}
    assert config([], env).max_rooms == 7
    assert config(["--max-rooms", "3"], env).max_rooms == 3
    assert config([], env).rate_limit_per_s == 9.5
    assert config([], {}).max_rooms == LobbyConfig().max_rooms
    both = config([], {"NETCODE_LOBBY_TRUSTED_PROXY": "127.0.0.1, 10.0.0.0/8"})
    assert both.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    off = config([], {"NETCODE_LOBBY_MAX_CONNECTIONS_PER_IP": "0"})
    assert off.max_connections_per_ip is None
    assert config([], {"NETCODE_LOBBY_SERVE_PLAY": "off"}).serve_play is False
    assert config(["--no-serve-play"], {"NETCODE_LOBBY_SERVE_PLAY": "1"}).serve_play is False
    assert config([], {"NETCODE_LOBBY_TOKEN": SECRET}).token == SECRET
    assert config(["--token", "flag"], {"NETCODE_LOBBY_TOKEN": SECRET}).token == "flag"
    named = config(
        [], {"NETCODE_LOBBY_NODE_ID": "lobby-1", "NETCODE_LOBBY_ICE_SERVERS": "stun:a:1"}
    )
    assert named.node_id == "lobby-1" and named.ice_servers[0].urls == ("stun:a:1",)


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("NETCODE_LOBBY_MAX_ROOMS", "lots"),
        ("NETCODE_LOBBY_RATE_LIMIT", "fast"),
        ("NETCODE_LOBBY_SERVE_PLAY", "maybe"),
        ("NETCODE_LOBBY_PORT", "99999"),
        ("NETCODE_LOBBY_LOG_FORMAT", "xml"),
        ("NETCODE_LOBBY_MAX_ROOMS", "0"),  # parses, then LobbyConfig refuses it
    ],
)
def test_bad_env_value_is_a_usage_error_naming_it(
    variable: str, text: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, text)
    assert cli_main([]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    name = variable if text != "0" else "max_rooms"
    assert name in err


def test_secrets_stay_out_of_help_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NETCODE_LOBBY_TOKEN", "NETCODE_LOBBY_METRICS_TOKEN", "NETCODE_TURN_SECRET"):
        monkeypatch.setenv(var, SECRET)
    text = _parser().format_help() + table()
    assert SECRET not in text
    for name in ("--token", "--metrics-token", "--turn-secret", "--ice-credential"):
        assert name in text
    assert "NETCODE_LOBBY_METRICS_TOKEN" in text
    cfg = config([], dict(os.environ))
    assert SECRET not in repr(cfg)


def test_docs_table_is_current() -> None:
    doc = DOC.read_text(encoding="utf-8")
    block = doc.split("<!-- flags:begin -->\n", 1)[1].split("<!-- flags:end -->", 1)[0]
    assert block == table(), "regenerate: python -m netcode.net.lobby_cli"


def test_bad_flag_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--max-rooms", "x"]) == 2
    assert cli_main(["--log-format", "xml"]) == 2
    err = capsys.readouterr().err
    assert "--max-rooms" in err and "--log-format" in err and "Traceback" not in err


async def _lobby(*argv: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "netcode", "lobby", "--port", "0", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )  # fmt: skip


async def _url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(TIMEOUT * 2):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "lobby exited before printing its URL"
            match = re.search(r"listening on (ws://\S+)", line)
            if match:
                return match.group(1)


async def _stop(proc: asyncio.subprocess.Process) -> str:
    try:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    return stderr.decode()


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_process_logs_one_line_per_event_without_secrets(fmt: str) -> None:
    env = {
        "NETCODE_LOBBY_TOKEN": SECRET,
        "NETCODE_TURN_SECRET": TURN_SECRET,
        "NETCODE_TURN_URLS": "turn:203.0.113.1:3478",
        "NETCODE_LOBBY_LOG_LEVEL": "debug",
        "NETCODE_LOBBY_NODE_ID": "node-a",
    }
    proc = await _lobby("--log-format", fmt, env=env)
    try:
        url = await _url(proc)
        client = await SignalingClient.connect(url, token=SECRET, timeout=TIMEOUT)
        room = await client.create_room()
        await client.close()
    finally:
        stderr = await _stop(proc)
    assert room.token and room.token not in stderr
    assert SECRET not in stderr and TURN_SECRET not in stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    if fmt == "json":
        records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # each line is one
        events = [r for r in records if r["logger"] == "netcode.lobby.events"]
        join = next(r for r in events if r["event"] == "join")
        assert (join["node"], join["room"], join["peer"]) == ("node-a", room.room, room.peer_id)
        assert [r["event"] for r in events].count("connect") == 1
    else:
        joins = [ln for ln in lines if "event=join" in ln]
        assert len(joins) == 1
        assert f"node=node-a room={room.room} peer={room.peer_id}" in joins[0]


@given(
    variable=st.sampled_from([o.env for o in config_options()]),
    text=st.text(max_size=40),
)
def test_any_env_text_gives_a_config_or_a_config_error(variable: str, text: str) -> None:
    """Hostile environment: only the documented error escapes, naming the variable
    (or the field, when the value parses but LobbyConfig refuses it)."""
    if "\x00" in text:
        return  # not representable in a real environment
    try:
        cfg = config([], {variable: text})
    except ConfigError as exc:
        field = next(o.dest for o in config_options() if o.env == variable)
        message = str(exc)
        # turn_urls without a secret is refused as a missing turn_secret
        assert variable in message or field in message or message.startswith("turn_secret")
    else:
        assert isinstance(cfg, LobbyConfig)
