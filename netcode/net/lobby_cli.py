"""``netcode lobby``: the lobby's command line (flags, environment, run until SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from ..config import IceServer, LobbyConfig
from ..errors import ConfigError
from .lobby_server import serve_lobby
from .turn_options import add_turn_arguments, turn_settings

__all__ = ["cli_main"]


def _port(text: str) -> int:
    """argparse type: a TCP port, so a typo is a usage error, not a bind() traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _parser() -> argparse.ArgumentParser:
    d = LobbyConfig()
    p = argparse.ArgumentParser(
        prog="netcode lobby",
        description="Run the netcode lobby/signaling server (websockets, JSON protocol v1).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind")
    p.add_argument("--port", type=_port, default=8765, help="TCP port; 0 picks a free one")
    p.add_argument(
        "--token",
        default=None,  # not the env value: --help would print the secret
        help="require this token (?token=... or Authorization: Bearer); env NETCODE_LOBBY_TOKEN",
    )
    p.add_argument(
        "--max-players-limit",
        type=int,
        default=d.max_players_limit,
        help="largest max_players a room may ask for",
    )
    p.add_argument(
        "--default-max-players",
        type=int,
        default=None,
        help=f"room size if create_room names none ({d.default_max_players}, capped by limit)",
    )
    p.add_argument("--max-rooms", type=int, default=d.max_rooms, help="rooms at once")
    p.add_argument(
        "--max-connections", type=int, default=d.max_connections, help="beyond: close 1013"
    )
    p.add_argument(
        "--max-connections-per-ip",
        type=int,
        default=d.max_connections_per_ip,
        help="per IPv4 address / IPv6 /64; beyond: close 1008; 0: no limit",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="reverse proxy (address or network) whose X-Forwarded-For is believed (repeatable)",
    )
    p.add_argument(
        "--max-message-bytes", type=int, default=d.max_message_bytes, help="beyond: close 1009"
    )
    p.add_argument("--max-metadata-bytes", type=int, default=d.max_metadata_bytes, help="per room")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=d.rate_limit_per_s,
        help="messages/s per connection (sustained); beyond the burst: close 1008",
    )
    p.add_argument("--rate-burst", type=float, default=d.rate_limit_burst, help="messages at once")
    p.add_argument(
        "--byte-rate-limit",
        type=float,
        default=d.byte_rate_limit_per_s,
        help="bytes/s per connection (sustained); beyond the burst: close 1008",
    )
    p.add_argument("--byte-burst", type=int, default=d.byte_rate_burst, help="bytes at once")
    p.add_argument(
        "--max-errors",
        type=int,
        default=d.max_errors_before_close,
        help="error budget: refused messages at once per connection; beyond: close 1008",
    )
    p.add_argument(
        "--error-refill",
        type=float,
        default=d.error_refill_per_s,
        help="errors/s the budget regains; 0: lifetime count",
    )
    p.add_argument(
        "--max-outbound-bytes",
        type=int,
        default=d.max_outbound_bytes,
        help="queued for one client; from half: relays to it refused (peer_busy); beyond: 1008",
    )
    p.add_argument(
        "--ping-interval", type=float, default=d.ping_interval_s, help="keepalive, seconds"
    )
    p.add_argument(
        "--ping-timeout", type=float, default=d.ping_timeout_s, help="pong wait, seconds"
    )
    p.add_argument(
        "--reconnect-grace",
        type=float,
        default=d.reconnect_grace_s,
        help="seconds a dropped member keeps its seat (0: leaves at once)",
    )
    p.add_argument(
        "--host-grace",
        type=float,
        default=d.host_grace_s,
        help="seconds a dropped host keeps the host role before migration",
    )
    p.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN url handed to clients (repeatable)",
    )
    p.add_argument("--ice-username", default=None, help="username for turn: urls")
    p.add_argument("--ice-credential", default=None, help="credential for turn: urls")
    add_turn_arguments(p)
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
    )
    return p


def _ice_servers(args: argparse.Namespace) -> tuple[IceServer, ...]:
    servers = []
    for url in args.ice_server:
        is_turn = url.startswith(("turn:", "turns:"))
        servers.append(
            IceServer(
                urls=(url,),
                username=args.ice_username if is_turn else None,
                credential=args.ice_credential if is_turn else None,
            )
        )
    return tuple(servers)


def _config_from_args(args: argparse.Namespace) -> LobbyConfig:
    return LobbyConfig(
        max_message_bytes=args.max_message_bytes,
        max_rooms=args.max_rooms,
        max_connections=args.max_connections,
        max_connections_per_ip=args.max_connections_per_ip or None,
        max_players_limit=args.max_players_limit,
        default_max_players=(
            min(LobbyConfig().default_max_players, args.max_players_limit)
            if args.default_max_players is None
            else args.default_max_players
        ),
        max_metadata_bytes=args.max_metadata_bytes,
        max_errors_before_close=args.max_errors,
        error_refill_per_s=args.error_refill,
        rate_limit_per_s=args.rate_limit,
        rate_limit_burst=args.rate_burst,
        byte_rate_limit_per_s=args.byte_rate_limit,
        byte_rate_burst=args.byte_burst,
        max_outbound_bytes=args.max_outbound_bytes,
        trusted_proxies=tuple(args.trusted_proxy),
        ping_interval_s=args.ping_interval,
        ping_timeout_s=args.ping_timeout,
        reconnect_grace_s=args.reconnect_grace,
        host_grace_s=args.host_grace,
        token=args.token or os.environ.get("NETCODE_LOBBY_TOKEN") or None,
        ice_servers=_ice_servers(args),
        **turn_settings(args, os.environ),
    )


async def _run(host: str, port: int, config: LobbyConfig) -> int:
    try:
        server = await serve_lobby(host, port, config)
    except OSError as exc:
        print(f"netcode lobby: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    auth = " (token required)" if config.token else ""
    print(f"netcode lobby listening on {server.url}{auth}", flush=True)
    print(f"health check: http://{server.url[5:]}/healthz", flush=True)
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
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.log_level != "DEBUG":  # websockets logs every connection at INFO
        logging.getLogger("netcode.lobby.websockets").setLevel(logging.WARNING)
    try:
        config = _config_from_args(args)
    except ConfigError as exc:
        print(f"netcode lobby: invalid option: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args.host, args.port, config))
    except KeyboardInterrupt:  # platforms without add_signal_handler
        return 0
