"""Interpolation track and remote-clock estimate used by the client. Pure.

Thin wrappers, so the game code reads the same whichever engine sits underneath
(netcode's InterpolationBuffer / TickClock where available).
"""

from __future__ import annotations

from collections import deque

__all__ = ["ClockOffset", "Track"]

_MAX_EXTRAPOLATE_S = 0.1


class Track:
    """Timestamped positions of one remote entity; sample between them."""

    def __init__(self, capacity: int = 32) -> None:
        self._points: deque[tuple[float, tuple[float, float]]] = deque(maxlen=capacity)

    def push(self, t: float, pos: tuple[float, float]) -> None:
        if self._points and t <= self._points[-1][0]:
            return
        self._points.append((t, pos))

    def sample(self, t: float) -> tuple[float, float] | None:
        pts = self._points
        if not pts:
            return None
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, p0), (t1, p1) in zip(pts, list(pts)[1:], strict=False):
            if t0 <= t <= t1:
                a = (t - t0) / (t1 - t0)
                return p0[0] + (p1[0] - p0[0]) * a, p0[1] + (p1[1] - p0[1]) * a
        if len(pts) >= 2:  # ran out of data: extrapolate a little, then hold
            (t0, p0), (t1, p1) = pts[-2], pts[-1]
            dt = min(t - t1, _MAX_EXTRAPOLATE_S)
            vx, vy = (p1[0] - p0[0]) / (t1 - t0), (p1[1] - p0[1]) / (t1 - t0)
            return p1[0] + vx * dt, p1[1] + vy * dt
        return pts[-1][1]


class ClockOffset:
    """Estimates local_time - remote_time from one-way arrivals.

    The smallest observed (arrival - send) is the least-delayed packet, so it is
    the best offset estimate; it creeps upward slowly so a clock drift or a route
    change is eventually followed.
    """

    def __init__(self, drift_per_s: float = 0.002) -> None:
        self.offset: float | None = None
        self._last: float | None = None
        self._drift = drift_per_s

    def observe(self, remote_t: float, local_t: float) -> None:
        sample = local_t - remote_t
        if self.offset is None or self._last is None:
            self.offset = sample
        else:
            self.offset = min(sample, self.offset + self._drift * (local_t - self._last))
        self._last = local_t

    def remote_now(self, local_t: float) -> float:
        return local_t - (self.offset or 0.0)
