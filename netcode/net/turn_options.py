"""``netcode lobby`` options for internet play: STUN/TURN urls and coturn's shared secret.

Each option has an environment variable, and the secret is best given by one
(``NETCODE_TURN_SECRET``) or a file (``--turn-secret-file``): a ``--turn-secret``
on the command line is visible to every local user in ``ps``. The secret is never
an argparse default (``--help`` would print it) and never logged.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import LobbyConfig
from ..errors import ConfigError

__all__ = ["add_turn_arguments", "turn_settings"]


def add_turn_arguments(p: argparse.ArgumentParser) -> None:
    """Add --stun-url, --turn-url, --turn-secret(-file) and --turn-ttl to the lobby CLI."""
    g = p.add_argument_group("internet play (docs/DEPLOY.md)")
    g.add_argument(
        "--stun-url",
        action="append",
        default=[],
        metavar="URL",
        help="stun: url for clients (repeatable; aiortc uses the first); env NETCODE_STUN_URLS",
    )
    g.add_argument(
        "--turn-url",
        action="append",
        default=[],
        metavar="URL",
        help="turn: url of a coturn with use-auth-secret (repeatable; aiortc uses the first);"
        " env NETCODE_TURN_URLS (comma-separated)",
    )
    g.add_argument(
        "--turn-secret",
        default=None,
        help="coturn's static-auth-secret (visible in ps: prefer env NETCODE_TURN_SECRET)",
    )
    g.add_argument(
        "--turn-secret-file", default=None, metavar="PATH", help="read the secret from a file"
    )
    g.add_argument(
        "--turn-ttl",
        type=int,
        default=None,
        help=f"seconds minted TURN credentials stay valid (default"
        f" {LobbyConfig().turn_ttl_s}); env NETCODE_TURN_TTL",
    )


def _urls(flag: list[str], env: str | None) -> tuple[str, ...]:
    if flag:
        return tuple(flag)
    return tuple(u.strip() for u in (env or "").split(",") if u.strip())


def _secret(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    if args.turn_secret_file:
        try:
            return Path(args.turn_secret_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"turn_secret: cannot read {args.turn_secret_file}: {exc}") from None
    secret: str | None = args.turn_secret or environ.get("NETCODE_TURN_SECRET") or None
    return secret


def turn_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """LobbyConfig keyword arguments from the parsed flags, falling back to ``environ``."""
    ttl_env = environ.get("NETCODE_TURN_TTL")
    try:
        ttl = args.turn_ttl if args.turn_ttl is not None else int(ttl_env) if ttl_env else None
    except ValueError:
        raise ConfigError(f"turn_ttl_s: NETCODE_TURN_TTL is not an int: {ttl_env!r:.20}") from None
    out: dict[str, Any] = {
        "stun_urls": _urls(args.stun_url, environ.get("NETCODE_STUN_URLS")),
        "turn_urls": _urls(args.turn_url, environ.get("NETCODE_TURN_URLS")),
        "turn_secret": _secret(args, environ),
    }
    if ttl is not None:
        out["turn_ttl_s"] = ttl
    return out
