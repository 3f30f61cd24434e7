"""``netcode lobby``: the lobby's command line (flags, environment, run until SIGTERM).

The flags are generated from :class:`netcode.config.LobbyConfig`'s fields (their
``help``/``flag``/``env``/``secret`` metadata), so a new field is a new flag and a
new environment variable without an edit here. Each value comes from the flag,
else from its variable (``NETCODE_LOBBY_<FLAG>`` unless the field names another),
else from the field's default. Secrets are never an argparse default, so
``--help`` cannot print them, and never logged.

``python -m netcode.net.lobby_cli`` prints the flags table of docs/LOBBY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config import IceServer, LobbyConfig
from ..errors import ConfigError, TransportError
from .lobby_log import LOG_FORMATS, LogFormat, setup_logging
from .lobby_server import serve_lobby

__all__ = ["Option", "all_options", "cli_main", "config_options", "flags_markdown"]

ENV_PREFIX = "NETCODE_LOBBY_"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Option:
    """One ``netcode lobby`` option: its flag, variable and how to read a value."""

    dest: str  # the LobbyConfig field, or the argparse dest of a server option
    flag: str
    env: str
    help: str
    parse: Callable[[str], Any]  # text -> value; raises ValueError
    default: Any = None  # shown in --help and docs (never for a secret)
    repeatable: bool = False  # tuple field: flag repeated, variable comma-separated
    boolean: bool = False  # --x / --no-x; variable 1/0, true/false, yes/no, on/off
    secret: bool = False
    none_if: Any = None  # a value that means None (e.g. 0: no limit)
    choices: tuple[str, ...] | None = None
    in_config: bool = True


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    return port


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    raise ValueError(f"not a boolean (1/0, true/false, yes/no, on/off): {text!r:.20}")


def _choice(choices: tuple[str, ...], upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.upper() if upper else text
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r:.20}")
        return value

    return parse


def _parser_of(hint: Any) -> tuple[Callable[[str], Any], bool, bool, tuple[str, ...] | None]:
    """(parse, repeatable, boolean, choices) for a field type; TypeError if unknown."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return _parser_of(inner)
    if hint is bool:
        return _bool, False, True, None
    if hint in (int, float, str):
        return hint, False, False, None
    if typing.get_origin(hint) is tuple and args[1:] == (Ellipsis,) and args[0] is str:
        return str, True, False, None
    if typing.get_origin(hint) is Literal and all(isinstance(a, str) for a in args):
        return _choice(args), False, False, args
    raise TypeError(
        f"no CLI type for {hint!r}: give the field metadata flag=None and a manual flag"
    )


def config_options() -> tuple[Option, ...]:
    """An :class:`Option` per LobbyConfig field (those with ``flag=None`` are built by hand)."""
    hints = typing.get_type_hints(LobbyConfig)
    out = []
    for f in dataclasses.fields(LobbyConfig):
        meta = f.metadata
        if "flag" in meta and meta["flag"] is None:
            continue
        if "help" not in meta:
            raise TypeError(f"LobbyConfig.{f.name} has no help: field(metadata={{'help': ...}})")
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        parse, repeatable, boolean, choices = _parser_of(hints[f.name])
        secret = bool(meta.get("secret", False))
        out.append(
            Option(
                dest=f.name,
                flag=flag,
                env=meta.get("env") or ENV_PREFIX + flag[2:].replace("-", "_").upper(),
                help=meta["help"],
                parse=parse,
                default=None if secret else f.default,
                repeatable=repeatable,
                boolean=boolean,
                secret=secret,
                none_if=meta.get("none_if"),
                choices=choices,
            )
        )
    return tuple(out)


def _server_options() -> tuple[Option, ...]:
    """Options that are not LobbyConfig fields: the socket, the logs, ICE records."""
    env = ENV_PREFIX
    return (
        Option("host", "--host", env + "HOST", "interface to bind", str, "127.0.0.1",
               in_config=False),
        Option("port", "--port", env + "PORT", "TCP port; 0 picks a free one", _port, 8765,
               in_config=False),
        Option("log_level", "--log-level", env + "LOG_LEVEL", "log level (logger netcode.lobby)",
               _choice(_LEVELS, upper=True), "INFO", choices=_LEVELS, in_config=False),
        Option("log_format", "--log-format", env + "LOG_FORMAT",
               "text (key=value) or json: one line per record", _choice(LOG_FORMATS), "text",
               choices=LOG_FORMATS, in_config=False),
        Option("ice_server", "--ice-server", env + "ICE_SERVERS",
               "STUN/TURN url handed to clients in welcome", str, (),
               repeatable=True, in_config=False),
        Option("ice_username", "--ice-username", env + "ICE_USERNAME",
               "username for the turn: urls of --ice-server", str, in_config=False),
        Option("ice_credential", "--ice-credential", env + "ICE_CREDENTIAL",
               "credential for the turn: urls of --ice-server", str, secret=True,
               in_config=False),
        Option("turn_secret_file", "--turn-secret-file", "NETCODE_TURN_SECRET_FILE",
               "read turn_secret from this file (wins over --turn-secret)", str,
               in_config=False),
    )  # fmt: skip


def all_options() -> tuple[Option, ...]:
    return _server_options() + config_options()


def _help(opt: Option) -> str:
    default = "" if opt.secret or opt.default in (None, ()) else f"default {opt.default}; "
    more = "repeatable; " if opt.repeatable else ""
    return f"{opt.help} ({more}{default}env {opt.env})".replace("%", "%%")


def _arg_type(opt: Option) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return opt.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid value {text!r:.40}: {exc}") from None

    parse.__name__ = opt.flag  # argparse names it in "invalid <name> value"
    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netcode lobby",
        description="Run the netcode lobby/signaling server (websockets, JSON protocol v1)."
        " Every option also reads its environment variable; a flag wins over it.",
    )
    for opt in all_options():
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": None, "help": _help(opt)}
        if opt.boolean:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _arg_type(opt)
            kwargs["metavar"] = "|".join(opt.choices) if opt.choices else opt.dest.upper()
        if opt.repeatable:
            kwargs["action"] = "append"
        p.add_argument(opt.flag, **kwargs)
    return p


def _from_env(opt: Option, environ: Mapping[str, str]) -> Any:
    text = environ.get(opt.env)
    if text is None or (text == "" and not opt.repeatable):
        return None
    try:
        if opt.repeatable:
            return [opt.parse(part.strip()) for part in text.split(",") if part.strip()]
        return opt.parse(text)
    except ValueError as exc:
        shown = "(hidden)" if opt.secret else f"{text!r:.40}"
        raise ConfigError(f"{opt.env}={shown}: {exc}") from None


def _resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """dest -> value given by flag or variable (flag wins); absent ones left out."""
    out: dict[str, Any] = {}
    for opt in all_options():
        value = getattr(args, opt.dest, None)
        if value is None:
            value = _from_env(opt, environ)
        if value is None:
            continue
        if opt.repeatable:
            value = tuple(value)
        out[opt.dest] = None if opt.none_if is not None and value == opt.none_if else value
    return out


def _ice_servers(given: Mapping[str, Any]) -> tuple[IceServer, ...]:
    servers = []
    for url in given.get("ice_server", ()):
        is_turn = url.startswith(("turn:", "turns:"))
        servers.append(
            IceServer(
                urls=(url,),
                username=given.get("ice_username") if is_turn else None,
                credential=given.get("ice_credential") if is_turn else None,
            )
        )
    return tuple(servers)


def _secret_file(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ConfigError(f"turn_secret: cannot read {path}: {exc}") from None


def _config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> LobbyConfig:
    """The LobbyConfig of parsed flags, falling back to ``environ`` (os.environ)."""
    given = _resolve(args, os.environ if environ is None else environ)
    names = {f.name for f in dataclasses.fields(LobbyConfig)}
    kwargs = {k: v for k, v in given.items() if k in names}
    if "default_max_players" not in kwargs and "max_players_limit" in kwargs:
        # A small --max-players-limit caps the default room size instead of refusing it.
        kwargs["default_max_players"] = min(
            LobbyConfig().default_max_players, kwargs["max_players_limit"]
        )
    if "turn_secret_file" in given:
        kwargs["turn_secret"] = _secret_file(given["turn_secret_file"])
    kwargs["ice_servers"] = _ice_servers(given)
    return LobbyConfig(**kwargs)


def flags_markdown() -> str:
    """The flags table of docs/LOBBY.md (a test keeps the doc current)."""
    rows = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    fields = {f.name for f in dataclasses.fields(LobbyConfig)}
    for opt in all_options():
        flag = f"`{opt.flag}`" + (f" / `--no-{opt.flag[2:]}`" if opt.boolean else "")
        field = f" (`{opt.dest}`)" if opt.dest in fields else ""
        default = "none" if opt.secret or opt.default in (None, ()) else f"`{opt.default}`"
        more = " (repeatable; comma-separated in the variable)" if opt.repeatable else ""
        rows.append(f"| {flag}{field} | `{opt.env}` | {default} | {opt.help}{more} |")
    return "\n".join(rows) + "\n"


async def _run(host: str, port: int, config: LobbyConfig) -> int:
    try:
        server = await serve_lobby(host, port, config)
    except OSError as exc:
        print(f"netcode lobby: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except TransportError as exc:  # --redis given but Redis unreachable at start
        print(f"netcode lobby: cannot join the cluster: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    auth = " (token required)" if config.token else ""
    print(f"netcode lobby listening on {server.url}{auth}", flush=True)
    http_url = ("https:" if server.url.startswith("wss") else "http:") + server.url.split(":", 1)[1]
    print(f"health check: {http_url}/healthz, metrics: {http_url}/metrics", flush=True)
    try:
        await stop.wait()
    finally:
        print("netcode lobby: shutting down", flush=True)
        await server.close()
    return 0


def cli_main(argv: list[str]) -> int:
    """``netcode lobby [options]``: run until Ctrl-C / SIGTERM, then exit 0."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        given = _resolve(args, os.environ)
        config = _config_from_args(args)
    except ConfigError as exc:
        print(f"netcode lobby: invalid option: {exc}", file=sys.stderr)
        return 2
    level: str = given.get("log_level", "INFO")
    fmt: LogFormat = given.get("log_format", "text")
    # Every secret field (token, turn_secret, metrics_token, a redis url's password...).
    secrets = [getattr(config, o.dest) for o in config_options() if o.secret]
    secrets.append(given.get("ice_credential"))
    setup_logging(level, fmt, secrets)
    try:
        return asyncio.run(_run(given.get("host", "127.0.0.1"), given.get("port", 8765), config))
    except ConfigError as exc:  # e.g. an unreadable certfile, found at start
        print(f"netcode lobby: invalid option: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # platforms without add_signal_handler
        return 0


if __name__ == "__main__":
    sys.stdout.write(flags_markdown())
