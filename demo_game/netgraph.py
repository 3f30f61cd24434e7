"""A net_graph overlay in the spirit of Source's: numbers plus a rolling plot.

:class:`NetGraphData` is pure bookkeeping (what the graph would show), so it is
unit-tested without a display; :func:`draw_net_graph` only paints it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pygame

__all__ = ["NetGraphData", "NetSample", "draw_net_graph"]


@dataclass(frozen=True, slots=True)
class NetSample:
    """One frame's network numbers (for the worst / host peer)."""

    rtt_ms: float
    jitter_ms: float
    loss: float
    kbps_in: float
    kbps_out: float
    snapshot_bytes: int
    tick: int
    fps: float
    # host / srflx / relay: the ICE path of the link shown (None: unknown yet)
    path: str | None = None


class NetGraphData:
    """A bounded history of samples; the plot scrolls right to left."""

    def __init__(self, capacity: int = 180) -> None:
        self._samples: deque[NetSample] = deque(maxlen=capacity)
        self.capacity = capacity
        self.extra = ""  # one more line the game fills in (interp delay, pending inputs)

    def add(self, sample: NetSample) -> None:
        self._samples.append(sample)

    @property
    def samples(self) -> list[NetSample]:
        return list(self._samples)

    @property
    def latest(self) -> NetSample | None:
        return self._samples[-1] if self._samples else None

    def rtt_scale(self) -> float:
        """Plot ceiling (ms): the next 25 ms step above the worst recent RTT, at least 50."""
        worst = max((s.rtt_ms for s in self._samples), default=0.0)
        return max(50.0, 25.0 * (int(worst // 25) + 1))

    def size_scale(self) -> int:
        """Plot ceiling (bytes) for the snapshot-size bars: next 128 B step, at least 256."""
        worst = max((s.snapshot_bytes for s in self._samples), default=0)
        return max(256, 128 * (worst // 128 + 1))

    def text_lines(self) -> list[str]:
        s = self.latest
        if s is None:
            return ["net_graph: waiting for peers"]
        return [
            f"fps {s.fps:5.1f}   tick {s.tick}" + (f"   path {s.path}" if s.path else ""),
            f"rtt {s.rtt_ms:6.1f} ms   jitter {s.jitter_ms:5.1f} ms",
            f"loss {s.loss * 100:5.1f} %   snapshot {s.snapshot_bytes} B",
            f"in {s.kbps_in:6.1f} kbps   out {s.kbps_out:6.1f} kbps",
            *([self.extra] if self.extra else []),
        ]


_BG = (10, 14, 24, 175)
_TEXT = (220, 230, 240)
_RTT = (90, 220, 140)
_BAR = (80, 140, 255)
_LOSS = (255, 90, 90)
_GRID = (60, 70, 90)


def draw_net_graph(
    surface: pygame.Surface, font: pygame.font.Font, data: NetGraphData, x: int, y: int
) -> None:
    """Paint the panel with its top-left corner at (x, y)."""
    import pygame

    width, plot_h = data.capacity * 2 + 16, 70
    lines = data.text_lines()
    line_h = font.get_linesize()
    height = 8 + len(lines) * line_h + 6 + plot_h + 4 + line_h + 6
    panel = pygame.Surface((width, height), pygame.SRCALPHA)
    panel.fill(_BG)
    for i, line in enumerate(lines):
        panel.blit(font.render(line, True, _TEXT), (8, 6 + i * line_h))
    top = 8 + len(lines) * line_h + 4
    _plot(panel, data, pygame.Rect(8, top, width - 16, plot_h))
    _legend(panel, font, data, 8, top + plot_h + 4)
    surface.blit(panel, (x, y))


def _legend(
    panel: pygame.Surface, font: pygame.font.Font, data: NetGraphData, x: int, y: int
) -> None:
    """Colour key and the current plot scales."""
    parts = [
        (f"rtt 0-{data.rtt_scale():.0f} ms", _RTT),
        (f"snapshot 0-{data.size_scale()} B", _BAR),
        ("loss", _LOSS),
    ]
    for text, color in parts:
        label = font.render(text, True, color)
        panel.blit(label, (x, y))
        x += label.get_width() + 16


def _plot(panel: pygame.Surface, data: NetGraphData, rect: pygame.Rect) -> None:
    """Snapshot sizes as bars, RTT as a line, a red tick wherever loss rose."""
    import pygame

    pygame.draw.rect(panel, _GRID, rect, 1)
    samples = data.samples
    rtt_max, size_max = data.rtt_scale(), data.size_scale()
    x0 = rect.right - 2 * len(samples)
    points = []
    prev_loss = samples[0].loss if samples else 0.0
    for i, s in enumerate(samples):
        x = x0 + 2 * i
        bar = int((rect.height - 2) * min(1.0, s.snapshot_bytes / size_max))
        if bar:
            pygame.draw.line(panel, _BAR, (x, rect.bottom - 2), (x, rect.bottom - 1 - bar))
        if s.loss > prev_loss:
            pygame.draw.line(panel, _LOSS, (x, rect.top + 1), (x, rect.top + 8))
        prev_loss = s.loss
        ry = rect.bottom - 2 - int((rect.height - 4) * min(1.0, s.rtt_ms / rtt_max))
        points.append((x, ry))
    if len(points) >= 2:
        pygame.draw.lines(panel, _RTT, False, points, 2)
