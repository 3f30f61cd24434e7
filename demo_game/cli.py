"""Command line of ``python -m demo_game``: parse flags into :class:`Options`."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

__all__ = [
    "MAX_PLAYERS",
    "Options",
    "build_parser",
    "ice_addresses_for",
    "is_headless",
    "parse_args",
]

# Room size the demo creates (netcode.connect(max_players=...)).
MAX_PLAYERS = 8

_EPILOG = """\
examples:
  python -m demo_game                      embedded lobby + room + host + 2 bots + your window
  python -m demo_game --join ABC123 --lobby ws://127.0.0.1:PORT
  netcode lobby --port 8765 & python -m demo_game --host --lobby ws://127.0.0.1:8765
  python -m demo_game --headless --duration 6 --stats-json out.json --loss 0.1
  python -m demo_game --kill-host-after 8   the host process crashes: you become the host

keys: arrows/WASD move, I interpolation, P prediction, C conditioner, G net graph, Esc quit
      (embedded) K kill the host process, B drop a bot (it comes back with its seat token)
"""


@dataclass(frozen=True, slots=True)
class Options:
    """Everything the command line decides."""

    join: str | None
    lobby: str | None
    host: bool
    serve: bool
    bot: bool
    headless: bool
    autopilot: bool
    duration: float | None
    stats_json: str | None
    loss: float
    latency: float
    jitter: float
    seed: int
    bots: int
    condition_handshake: bool
    screenshot: str | None
    screenshot_after: float
    ice_address: tuple[str, ...] | None
    token: str | None
    parent_pid: int | None
    topology: Literal["star", "mesh"] = "star"
    seat_file: str | None = None
    bot_drop_after: float | None = None
    kill_host_after: float | None = None
    stop_host_after: float | None = None

    @property
    def embedded(self) -> bool:
        """No lobby given and not joining: run the lobby in-process."""
        return not self.join and not self.host and not self.bot and not self.serve

    @property
    def role(self) -> str:
        """ "host" (authority + a player), "server" (authority only) or "client"."""
        if self.serve:
            return "server"
        return "host" if self.host else "client"

    @property
    def creates_room(self) -> bool:
        """The room's creator is its first host: --host, or --serve (which the embedded
        launcher spawns, then joins the room it made as a client)."""
        return self.host or self.serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m demo_game",
        description="netcode demo: a host-authoritative arena over WebRTC data channels.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--join", metavar="CODE", help="join the room CODE (needs --lobby)")
    p.add_argument("--lobby", metavar="URL", help="lobby URL, e.g. ws://127.0.0.1:8765")
    p.add_argument("--host", action="store_true", help="create a room on --lobby and host it")
    p.add_argument(
        "--serve",
        action="store_true",
        help="create a room on --lobby and host it without a player (dedicated host)",
    )
    p.add_argument(
        "--topology",
        choices=("star", "mesh"),
        default="star",
        help="of the room you create (default star: everyone links to the host only)",
    )
    p.add_argument(
        "--seat-file",
        metavar="PATH",
        help="with --join: keep the seat's reconnect token in PATH; if PATH exists, take "
        "that seat back (same peer id) instead of joining anew",
    )
    p.add_argument(
        "--bot-drop-after",
        type=float,
        metavar="S",
        help="embedded: SIGKILL bot 1 after S s and restart it with its saved token "
        "(default 10; 0 = never)",
    )
    p.add_argument(
        "--kill-host-after",
        type=float,
        metavar="S",
        help="embedded: SIGKILL the host process after S s (a crash: a new host is named "
        "after the lobby's host_grace_s)",
    )
    p.add_argument(
        "--stop-host-after",
        type=float,
        metavar="S",
        help="embedded: SIGTERM the host process after S s (it leaves cleanly: a new host "
        "is named at once)",
    )
    p.add_argument("--bot", action="store_true", help="play as a headless bot (used for spawns)")
    p.add_argument("--headless", action="store_true", help="no window; the local player is a bot")
    p.add_argument("--autopilot", action="store_true", help="a bot steers your circle (window too)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--stats-json", metavar="PATH", help="write final per-peer stats here")
    p.add_argument("--loss", type=float, default=0.0, help="simulated loss, 0..1")
    p.add_argument("--latency", type=float, default=0.0, metavar="MS", help="added latency")
    p.add_argument("--jitter", type=float, default=0.0, metavar="MS", help="latency jitter")
    p.add_argument(
        "--condition-handshake",
        action="store_true",
        help="impair the connection handshake too (default: each link once connected)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed for world, bots and conditioner")
    p.add_argument("--bots", type=int, help="bots to spawn (default 2 embedded, else 0)")
    p.add_argument("--screenshot", metavar="PATH", help="save one frame as PNG")
    p.add_argument(
        "--screenshot-after", type=float, default=3.0, metavar="S", help="when (default 3 s)"
    )
    p.add_argument(
        "--ice-address",
        action="append",
        metavar="ADDR",
        help="ICE host address to offer (repeatable; default 127.0.0.1 for a loopback lobby, "
        "all interfaces otherwise)",
    )
    p.add_argument("--token", help="lobby token, if the lobby requires one")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    return p


def is_headless(flag: bool, env: dict[str, str] | None = None) -> bool:
    """Headless when asked, or when there is no X11/Wayland display to open a window on."""
    e = os.environ if env is None else env
    if flag:
        return True
    if e.get("SDL_VIDEODRIVER") in ("dummy", "offscreen"):
        return True
    return not (e.get("DISPLAY") or e.get("WAYLAND_DISPLAY"))


def ice_addresses_for(lobby_url: str, override: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Pin ICE to loopback when the lobby is on loopback (aioice never offers 127.0.0.1)."""
    if override:
        return override
    host = urlparse(lobby_url).hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return ("127.0.0.1",)
    return None


def _check_numbers(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Range-check numeric flags up front: "nan" and "inf" parse as floats."""
    if not 0.0 <= a.loss <= 1.0:  # False for nan too
        p.error("--loss must be in 0..1")
    for name in ("latency", "jitter"):
        if not 0.0 <= getattr(a, name) <= 60_000.0:
            p.error(f"--{name} must be in 0..60000 ms")
    if a.duration is not None and not 0.0 < a.duration < math.inf:
        p.error("--duration must be a finite number of seconds > 0")
    if not 0.0 <= a.screenshot_after < math.inf:
        p.error("--screenshot-after must be a finite number of seconds >= 0")
    for name in ("bot_drop_after", "kill_host_after", "stop_host_after"):
        v = getattr(a, name)
        if v is not None and not 0.0 <= v < math.inf:
            p.error(f"--{name.replace('_', '-')} must be a finite number of seconds >= 0")


def _check_modes(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.bot and not a.join:
        p.error("--bot needs --join CODE")
    if a.serve and a.join:
        p.error("--serve creates the room it hosts (a star's host is its creator): no --join")
    if a.serve and (a.bot or a.host):
        p.error("--serve excludes --bot and --host")
    if (a.join or a.host or a.serve) and not a.lobby:
        p.error("--join/--host/--serve need --lobby URL")
    if a.join and a.host:
        p.error("--join and --host are exclusive")
    if a.seat_file and not a.join:
        p.error("--seat-file needs --join CODE")


def parse_args(argv: list[str] | None = None) -> Options:
    p = build_parser()
    a = p.parse_args(argv)
    _check_modes(p, a)
    _check_numbers(p, a)
    embedded = not (a.join or a.host or a.bot or a.serve)
    if not embedded and (a.bot_drop_after or a.kill_host_after or a.stop_host_after):
        p.error("--bot-drop-after/--kill-host-after/--stop-host-after: embedded mode only")
    bots = a.bots if a.bots is not None else (2 if embedded else 0)
    drop = a.bot_drop_after if a.bot_drop_after is not None else (10.0 if embedded else 0.0)
    # The room holds MAX_PLAYERS: you, the dedicated host process (embedded), the bots.
    most = MAX_PLAYERS - 1 - (1 if embedded else 0)
    if not 0 <= bots <= most:
        p.error(f"--bots must be in 0..{most} (a room holds {MAX_PLAYERS} players)")
    if a.stats_json and not os.path.isdir(os.path.dirname(os.path.abspath(a.stats_json))):
        p.error(f"--stats-json: directory of {a.stats_json!r} does not exist")
    return Options(
        join=a.join,
        lobby=a.lobby,
        host=a.host,
        serve=a.serve,
        bot=a.bot,
        headless=is_headless(a.headless or a.bot or a.serve),
        autopilot=a.autopilot,
        duration=a.duration,
        stats_json=a.stats_json,
        loss=a.loss,
        latency=a.latency,
        jitter=a.jitter,
        seed=a.seed,
        bots=bots if a.join is None else 0,
        condition_handshake=a.condition_handshake,
        screenshot=a.screenshot,
        screenshot_after=a.screenshot_after,
        ice_address=tuple(a.ice_address) if a.ice_address else None,
        token=a.token,
        parent_pid=a.parent_pid,
        topology="mesh" if a.topology == "mesh" else "star",
        seat_file=a.seat_file,
        bot_drop_after=drop or None,
        kill_host_after=a.kill_host_after,
        stop_host_after=a.stop_host_after,
    )
