"""Drawing the arena, players, pickups and the HUD. Only reads a :class:`Scene`.

The game logic builds a :class:`Scene` (plain data) each frame, so what is drawn
is decided outside pygame and the renderer stays a dumb painter.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .sim import ARENA_H, ARENA_W, PICKUP_RADIUS, PLAYER_RADIUS

if TYPE_CHECKING:
    import pygame

    from .netgraph import NetGraphData

__all__ = ["HUD_H", "PALETTE", "WINDOW_SIZE", "Renderer", "Scene", "SceneEntity"]

HUD_H = 40
WINDOW_SIZE = (int(ARENA_W), int(ARENA_H) + HUD_H)
PALETTE = [
    (255, 99, 72),
    (72, 219, 251),
    (254, 202, 87),
    (29, 209, 161),
    (255, 159, 243),
    (162, 155, 254),
    (255, 255, 255),
    (84, 160, 255),
]
_BG = (18, 22, 34)
_TRAIL = 24  # frames of trail
_GRID = (28, 34, 50)
_WALL = (70, 80, 110)
_COIN = (255, 211, 42)
_TEXT = (220, 230, 240)
_DIM = (130, 140, 160)
_GRAPH_W = 384  # the net graph panel's width, at the top right


@dataclass(frozen=True, slots=True)
class SceneEntity:
    """One circle to draw."""

    pid: str
    x: float
    y: float
    color: int
    score: int
    local: bool = False
    tag: str = ""  # e.g. "reconnecting..." while its player is away


@dataclass(slots=True)
class Scene:
    """Everything one frame shows."""

    players: list[SceneEntity] = field(default_factory=list)
    pickups: list[tuple[float, float]] = field(default_factory=list)
    ghost: tuple[float, float] | None = None  # the host's (unpredicted) view of us
    room: str = ""
    join_hint: str = ""
    role: str = "host"
    interpolation: bool = True
    prediction: bool = True
    conditioner: str = "off"
    status: str = ""
    notice: str = ""  # the match's lifecycle: host lost, new host


class Renderer:
    """Owns the fonts and paints scenes onto a surface."""

    def __init__(self) -> None:
        import pygame

        pygame.font.init()
        self.font = pygame.font.SysFont("dejavusansmono,monospace", 14)
        self.small = pygame.font.SysFont("dejavusansmono,monospace", 12)
        self.big = pygame.font.SysFont("dejavusans,sans", 16, bold=True)
        self._trails: dict[str, deque[tuple[int, int]]] = {}

    def _trail(self, surface: pygame.Surface, e: SceneEntity) -> None:
        """A fading trail of the last positions drawn: motion (and stutter) is visible."""
        import pygame

        trail = self._trails.setdefault(e.pid, deque(maxlen=_TRAIL))
        trail.append((int(e.x), int(e.y) + HUD_H))
        color = PALETTE[e.color % len(PALETTE)]
        for i, (tx, ty) in enumerate(trail):
            k = (i + 1) / len(trail)
            faded = tuple(int(c * k * 0.5 + _BG[j] * (1 - k * 0.5)) for j, c in enumerate(color))
            pygame.draw.circle(surface, faded, (tx, ty), max(2, int(PLAYER_RADIUS * 0.45 * k)))

    def draw(self, surface: pygame.Surface, scene: Scene, graph: NetGraphData | None) -> None:
        surface.fill(_BG)
        self._arena(surface)
        for kx, ky in scene.pickups:
            self._coin(surface, kx, ky)
        if scene.ghost is not None:
            self._ghost(surface, *scene.ghost)
        live = {e.pid for e in scene.players}
        for pid in [p for p in self._trails if p not in live]:
            del self._trails[pid]
        for e in scene.players:
            self._trail(surface, e)
        for e in sorted(scene.players, key=lambda e: e.local):
            self._player(surface, e)
        self._hud(surface, scene)
        if graph is not None:
            from .netgraph import draw_net_graph

            draw_net_graph(surface, self.small, graph, int(ARENA_W) - _GRAPH_W, HUD_H + 8)

    def _arena(self, surface: pygame.Surface) -> None:
        import pygame

        for gx in range(0, int(ARENA_W), 40):
            pygame.draw.line(surface, _GRID, (gx, HUD_H), (gx, HUD_H + int(ARENA_H)))
        for gy in range(0, int(ARENA_H), 40):
            pygame.draw.line(surface, _GRID, (0, HUD_H + gy), (int(ARENA_W), HUD_H + gy))
        pygame.draw.rect(surface, _WALL, (0, HUD_H, int(ARENA_W), int(ARENA_H)), 3)

    def _coin(self, surface: pygame.Surface, x: float, y: float) -> None:
        import pygame

        c = (int(x), int(y) + HUD_H)
        pygame.draw.circle(surface, (120, 90, 10), c, int(PICKUP_RADIUS) + 2)
        pygame.draw.circle(surface, _COIN, c, int(PICKUP_RADIUS))
        pygame.draw.circle(surface, (255, 245, 180), (c[0] - 2, c[1] - 2), 3)

    def _ghost(self, surface: pygame.Surface, x: float, y: float) -> None:
        import pygame

        pygame.draw.circle(surface, _DIM, (int(x), int(y) + HUD_H), int(PLAYER_RADIUS), 1)

    def _player(self, surface: pygame.Surface, e: SceneEntity) -> None:
        import pygame

        color = PALETTE[e.color % len(PALETTE)]
        c = (int(e.x), int(e.y) + HUD_H)
        r = int(PLAYER_RADIUS)
        pygame.draw.circle(surface, (0, 0, 0), (c[0] + 3, c[1] + 4), r)
        pygame.draw.circle(surface, color, c, r)
        if e.local:
            pygame.draw.circle(surface, (255, 255, 255), c, r + 4, 2)
        label = self.small.render(f"{e.pid[:6]} {e.score}", True, _TEXT)
        surface.blit(label, (c[0] - label.get_width() // 2, c[1] - r - 18))
        if e.tag:
            tag = self.small.render(e.tag, True, _COIN)
            surface.blit(tag, (c[0] - tag.get_width() // 2, c[1] + r + 4))

    def _hud(self, surface: pygame.Surface, scene: Scene) -> None:
        import pygame

        pygame.draw.rect(surface, (12, 15, 24), (0, 0, WINDOW_SIZE[0], HUD_H))
        title = self.big.render(f"ROOM {scene.room or '-'}", True, _COIN)
        surface.blit(title, (10, 10))
        flags = (
            f"{scene.role}  [I]nterp {'on' if scene.interpolation else 'OFF'}  "
            f"[P]redict {'on' if scene.prediction else 'OFF'}  [C]ond {scene.conditioner}"
        )
        surface.blit(self.font.render(flags, True, _TEXT), (10 + title.get_width() + 20, 12))
        ranking = sorted(scene.players, key=lambda e: -e.score)[:4]
        board = "  ".join(f"{e.pid[:6]}:{e.score}" for e in ranking)
        text = self.font.render(board, True, _DIM)
        surface.blit(text, (WINDOW_SIZE[0] - text.get_width() - 10, 12))
        if scene.notice:
            banner = self.big.render(scene.notice, True, _COIN)
            free = WINDOW_SIZE[0] - _GRAPH_W  # left of the net graph, which may be shown
            surface.blit(banner, (max(10, (free - banner.get_width()) // 2), HUD_H + 12))
        bottom = scene.join_hint or scene.status
        if bottom:
            hint = self.small.render(bottom, True, _DIM)
            surface.blit(hint, (10, WINDOW_SIZE[1] - hint.get_height() - 6))
