"""Putting it together: lobby, room, bot processes, session, window, stats file.

``run(opts)`` is the whole program. It never leaves anything behind: the
session, the bot processes and the embedded lobby are closed in ``finally``
blocks, in reverse order of creation.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import netcode
from netcode import ConnectTimeout, LobbyError, NetcodeError, RoomNotFound, SessionConfig

from .cli import MAX_PLAYERS, Options, ice_addresses_for
from .drills import Drills, load_seat, save_seat
from .loop import GameLoop, _conditions
from .procs import BotProcesses, EmbeddedLobby, child_stats_path
from .render import WINDOW_SIZE, Renderer, Scene, SceneEntity
from .sim import DT, Input

if TYPE_CHECKING:
    import pygame

__all__ = ["play_url", "run"]

_END_GRACE_S = 8.0
_HOST_START_S = 30.0  # the host process's Python start-up and room creation
_LINGER_S = 5.0  # how long we wait for the others to leave a finished match


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the match like Ctrl+C does: children still write their stats."""
    raise KeyboardInterrupt


def _session_config(opts: Options, url: str) -> SessionConfig:
    return SessionConfig(
        host_addresses=ice_addresses_for(url, opts.ice_address),
        conditions=_conditions(opts) if opts.condition_handshake else None,
        token=opts.token,
        connect_timeout_s=15.0,
    )


def _child_args(opts: Options, url: str, code: str, index: int) -> list[str]:
    args = ["--join", code, "--lobby", url, "--seed", str(opts.seed + index)]
    return args + _common_args(opts)


def _common_args(opts: Options) -> list[str]:
    args: list[str] = []
    if opts.duration is not None:  # a backstop; normally the "end" event stops children
        args += ["--duration", str(opts.duration + 20.0)]
    if opts.ice_address:
        for a in opts.ice_address:
            args += ["--ice-address", a]
    if opts.token:
        args += ["--token", opts.token]
    return args


def run(opts: Options) -> int:
    """Run one peer until --duration, window close, Esc, or the match ending."""
    if opts.headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    signal.signal(signal.SIGTERM, _interrupt)
    lobby = EmbeddedLobby() if opts.embedded else None
    children = BotProcesses()
    result: dict[str, Any] = {"ok": False}
    seat_dir = tempfile.TemporaryDirectory(prefix="demo-seats-") if opts.embedded else None
    try:
        url = lobby.start() if lobby is not None else str(opts.lobby)
        result = _play(opts, url, children, seat_dir.name if seat_dir else None)
    except (NetcodeError, OSError) as exc:
        print(f"demo_game: {type(exc).__name__}: {exc}", file=sys.stderr)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        result["children_exit_codes"] = children.stop()
        result["children_killed"] = children.killed
        if lobby is not None:
            lobby.close()
        if seat_dir is not None:
            seat_dir.cleanup()
        if opts.stats_json:
            Path(opts.stats_json).write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result.get("ok") else 1


def play_url(lobby_url: str, code: str) -> str:
    """The browser page of room ``code`` on the lobby at ``lobby_url``: ws(s)://HOST:PORT
    -> http(s)://HOST:PORT/play?room=CODE (the page connects back to its own origin)."""
    parts = urlsplit(lobby_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "/play", urlencode({"room": code}), ""))


def _start_host(opts: Options, url: str, children: BotProcesses) -> str:
    """Embedded: the dedicated host process creates the room (a star's host is its
    creator) and prints its code first thing; we join it like any player."""
    args = ["--serve", "--lobby", url, "--topology", opts.topology, "--seed", str(opts.seed + 100)]
    children.spawn(args + _common_args(opts) + _stats_arg(opts, "host"), "host", pipe=True)
    line = children.read_line("host", _HOST_START_S)
    if not line.startswith("room "):
        raise ConnectTimeout(f"the host process did not create a room ({line or 'no output'!r})")
    return line.split()[1]


def _open(opts: Options, url: str, code: str | None) -> netcode.SyncSession:
    config = _session_config(opts, url)
    seat = load_seat(opts.seat_file) if opts.seat_file else None
    if seat is not None:  # we crashed (or were killed) earlier: take our seat back
        try:
            return netcode.connect_sync(url, rejoin_token=seat["token"], config=config)
        except LobbyError as exc:  # expired (grace over), banned, room gone: join anew
            if code is None or isinstance(exc, RoomNotFound):
                raise
            print(f"demo_game: seat not taken back ({exc}); joining anew", file=sys.stderr)
    if code is not None:
        return netcode.connect_sync(url, room=code, config=config)
    return netcode.connect_sync(
        url, create=True, topology=opts.topology, max_players=MAX_PLAYERS, config=config
    )


def _play(opts: Options, url: str, children: BotProcesses, seat_dir: str | None) -> dict[str, Any]:
    code = _start_host(opts, url, children) if opts.embedded else opts.join
    started, prior = time.time(), _seat_peer(opts)
    with _open(opts, url, code) as session:
        code = str(session.room)
        if opts.seat_file:
            save_seat(opts.seat_file, session.peer_id, session.reconnect_token)
        seats = _spawn_bots(opts, url, code, children, seat_dir)
        if opts.parent_pid is None or opts.creates_room:
            hint = f"python -m demo_game --join {code} --lobby {url}"
            print(f"room {code}  join from another terminal: {hint}", flush=True)
        if opts.parent_pid is None:  # (a spawned host's lines would come before ours)
            # The lobby serves the browser client at /play (LobbyConfig.serve_play).
            token = "  (add &token=... : the lobby needs one)" if opts.token else ""
            print(f"room {code}  play in a browser: {play_url(url, code)}{token}", flush=True)
        game = GameLoop(session, opts, want_peers=_expected_peers(opts))
        back = prior is not None and prior == game.me
        game.timeline.log("joined", game.me, connect_started=round(started, 3), rejoined=back)
        drills = Drills(children, opts, seats) if opts.embedded else None
        _frames(game, opts, code, url, drills)
        if opts.embedded:  # our lobby goes away with us: the match ends for everyone
            session.send_event({"k": "end"})
            game.match_over = True
        if game.match_over and (game.host is not None or opts.embedded):
            _linger(session, game.host_pid)
        # Anyone else leaving (a --host closing its window too) does not end the match:
        # the lobby names a new host. Bots we spawned see us gone and leave as well.
        out = game.result()
        out["ok"] = True
        out["lobby"] = url
        out["drills"] = drills.log if drills is not None else []
        tags = (["host"] if opts.embedded else []) + [f"bot{i}" for i in range(1, opts.bots + 1)]
        out["children_stats"] = [child_stats_path(opts.stats_json, t) for t in tags]
    if opts.embedded:  # the players left, then we did; the host follows
        children.wait(_END_GRACE_S)
    return out


def _linger(session: netcode.SyncSession, host: str | None) -> None:
    """Who ends a match, and its host, stay until the players left (at most _LINGER_S):
    the "end" event must not die with our links (a lost packet is resent only while
    the link lives), and a host leaving first would make the lobby name one of them
    host. The host is the last to go: nobody waits for it."""
    deadline = time.monotonic() + _LINGER_S
    while (left := deadline - time.monotonic()) > 0:
        peers = session.peers
        if not any(p.state == "connected" for pid, p in peers.items() if pid != host):
            return
        with contextlib.suppress(TimeoutError):
            session.next_event(timeout=min(left, 0.25))  # wakes on each leave


def _stats_arg(opts: Options, tag: str) -> list[str]:
    path = child_stats_path(opts.stats_json, tag)
    return [] if path is None else ["--stats-json", path]


def _seat_peer(opts: Options) -> str | None:
    seat = load_seat(opts.seat_file) if opts.seat_file else None
    return seat["peer_id"] if seat else None


def _spawn_bots(
    opts: Options, url: str, code: str, children: BotProcesses, seat_dir: str | None
) -> dict[str, str]:
    """Bot processes; embedded, each keeps its seat in a file so it can come back."""
    seats: dict[str, str] = {}
    for i in range(1, opts.bots + 1):
        tag = f"bot{i}"
        args = ["--bot", *_child_args(opts, url, code, 100 + i), *_stats_arg(opts, tag)]
        if seat_dir is not None:
            seats[tag] = str(Path(seat_dir) / f"{tag}.seat")
            args += ["--seat-file", seats[tag]]
        children.spawn(args, tag)
    return seats


def _expected_peers(opts: Options) -> int | None:
    """Peers the status line counts towards: known only when we spawned them."""
    if opts.embedded:
        return opts.bots + 1
    return opts.bots if opts.creates_room and opts.bots else None


class _Window:
    """The pygame side: a real window, or (headless) an off-screen surface for screenshots."""

    def __init__(self, visible: bool) -> None:
        import pygame

        self.visible = visible
        if visible:
            pygame.display.init()
            self.surface = pygame.display.set_mode(WINDOW_SIZE)
            pygame.display.set_caption("netcode demo")
        else:
            self.surface = pygame.Surface(WINDOW_SIZE)
        self.renderer = Renderer()
        self.drills: Drills | None = None  # embedded: K and B run the lifecycle drills

    def close(self) -> None:
        import pygame

        if self.visible:
            pygame.display.quit()

    def keys(self, game: GameLoop) -> Input | None:
        """Handle window events; returns the keyboard's steering (None if not visible)."""
        import pygame

        if not self.visible:
            return None
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                game.stop_reason = "window closed"
            elif ev.type == pygame.KEYDOWN:
                _key(game, ev.key, self.drills)
        pressed = pygame.key.get_pressed()
        dx = int(pressed[pygame.K_RIGHT] or pressed[pygame.K_d]) - int(
            pressed[pygame.K_LEFT] or pressed[pygame.K_a]
        )
        dy = int(pressed[pygame.K_DOWN] or pressed[pygame.K_s]) - int(
            pressed[pygame.K_UP] or pressed[pygame.K_w]
        )
        return Input(dx, dy)

    def draw(self, game: GameLoop, code: str, url: str, now: float) -> pygame.Surface:
        import pygame

        scene = build_scene(game, code, url, now)
        self.renderer.draw(self.surface, scene, game.graph if game.toggles.graph else None)
        if self.visible:
            pygame.display.flip()
        return self.surface


def _key(game: GameLoop, key: int, drills: Drills | None = None) -> None:
    import pygame

    if drills is not None and key == pygame.K_k:
        drills.end_host(signal.SIGKILL)
    elif drills is not None and key == pygame.K_b:
        drills.drop_bot("bot1", time.monotonic())
    elif key == pygame.K_ESCAPE:
        game.stop_reason = "escape"
    elif key == pygame.K_i:
        game.toggles.interpolation = not game.toggles.interpolation
    elif key == pygame.K_p:
        game.toggles.prediction = not game.toggles.prediction
    elif key == pygame.K_g:
        game.toggles.graph = not game.toggles.graph
    elif key == pygame.K_c:
        game.toggle_conditioner()


def build_scene(game: GameLoop, code: str, url: str, now: float) -> Scene:
    """What one frame shows, from the host's world or the client's view."""
    t = game.toggles
    scene = Scene(
        room=code,
        join_hint=f"join: python -m demo_game --join {code} --lobby {url}",
        role=f"{game.role} ({game.s.topology})",
        interpolation=t.interpolation,
        prediction=t.prediction,
        conditioner=game.conditioner_label(),
        notice=game.notice(now),
    )
    if game.host is not None:
        w = game.host.world
        scene.players = [
            SceneEntity(p.pid, p.x, p.y, p.color, p.score, p.pid == game.me, game.tag_of(p.pid))
            for p in w.players.values()
        ]
        scene.pickups = [(k.x, k.y) for k in w.pickups]
    elif game.client is not None:
        c = game.client
        rendered = c.players(now, interpolate=t.interpolation, predict=t.prediction)
        scene.players = [
            SceneEntity(r.pid, r.x, r.y, r.color, r.score, r.local, game.tag_of(r.pid))
            for r in rendered
        ]
        scene.pickups = c.pickups()
        mine = c.latest.players.get(game.me) if c.latest else None
        if mine is not None and t.prediction:
            scene.ghost = (mine.x, mine.y)
    return scene


def _frames(game: GameLoop, opts: Options, code: str, url: str, drills: Drills | None) -> None:
    """The frame loop; paced by the tick clock, renders only where someone can see it."""
    window, headless = _open_window(opts)
    if window is not None:
        window.drills = drills
    shot = _Shot(opts)
    prev = time.monotonic()
    try:
        while game.stop_reason is None:
            now = time.monotonic()
            if drills is not None:
                drills.tick(now, game.match_up())
            _frame(game, opts, window, shot, now, code, url, headless)
            game.frame_done(now - prev)
            prev = now
            _sleep_until(game, time.monotonic())
    except KeyboardInterrupt:  # Ctrl+C, or SIGTERM (see run): end the match cleanly
        game.stop_reason = "interrupted"
    finally:
        if window is not None:
            window.close()


def _open_window(opts: Options) -> tuple[_Window | None, bool]:
    """The window (or an off-screen surface when a screenshot is wanted) and whether
    we run headless. A display that is set but unusable falls back to headless."""
    import pygame

    if not opts.headless:
        try:
            window = _Window(visible=True)
            driver = pygame.display.get_driver()
            if driver not in ("dummy", "offscreen"):
                return window, False
            window.close()  # SDL fell back to an invisible driver: nobody can see it
            reason = f"SDL picked the {driver!r} video driver"
        except pygame.error as exc:
            reason = str(exc)
        print(f"demo_game: no usable display ({reason}); running headless", file=sys.stderr)
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    return (_Window(visible=False) if opts.screenshot else None), True


class _Shot:
    """When to save the --screenshot frame (once)."""

    def __init__(self, opts: Options) -> None:
        self.path = opts.screenshot
        self.after = opts.screenshot_after

    def due(self, elapsed: float) -> bool:
        return self.path is not None and elapsed >= self.after

    def warming(self, elapsed: float) -> bool:
        """Headless: draw the last second before the shot too, so trails have history."""
        return self.path is not None and elapsed >= self.after - 1.0


def _frame(
    game: GameLoop,
    opts: Options,
    window: _Window | None,
    shot: _Shot,
    now: float,
    code: str,
    url: str,
    headless: bool,
) -> None:
    game.handle_events(now)
    game.check_host(now)
    keys = window.keys(game) if window is not None else None
    local = keys if keys is not None and not opts.autopilot else game.bot_input()
    game.run_ticks(now, local if game.role != "server" else None)
    game.sample_stats(now)
    elapsed = now - game.start
    if window is not None and (window.visible or shot.warming(elapsed)):
        surface = window.draw(game, code, url, now)
        if shot.due(elapsed) and shot.path is not None:
            _save(surface, shot.path)
            shot.path = None
    if headless and opts.parent_pid is None:
        game.maybe_status(now)
    if opts.duration is not None and elapsed >= opts.duration:
        game.stop_reason = "duration"
    if opts.parent_pid is not None and os.getppid() != opts.parent_pid:
        game.stop_reason = "parent exited"


def _save(surface: pygame.Surface, path: str) -> None:
    import pygame

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(surface, path)
    print(f"screenshot saved to {path}", flush=True)


def _sleep_until(game: GameLoop, now: float) -> None:
    """Frame pacing (not synchronisation): wake for the next tick."""
    delay = game.next_tick_at() - now
    if delay > 0:
        time.sleep(min(delay, DT))
