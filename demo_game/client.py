"""A client's side of the game: predict yourself, interpolate everyone else. Pure.

Snapshots from the host arrive ~30 times a second, late and sometimes not at
all. Remote players are drawn a fixed delay in the past, between two snapshots
(interpolation), so they glide instead of teleporting; our own circle is moved
at once by our inputs (prediction) and corrected when the host's verdict comes
back (reconciliation: restart from the host's state at the newest input it
applied and replay the inputs it has not seen yet).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from .messages import SnapshotView, encode_inputs, player_from_view
from .sim import DT, Input, Player, move_player
from .smoothing import ClockOffset, Track

__all__ = ["ClientGame", "RenderedPlayer"]

INTERP_DELAY_S = 0.1
_HISTORY = 180  # inputs kept for replay: 3 s at 60 Hz, far beyond any sane RTT


class RenderedPlayer:
    """Where to draw one player this frame."""

    __slots__ = ("color", "local", "pid", "score", "x", "y")

    def __init__(
        self, pid: str, x: float, y: float, color: int, score: int, local: bool = False
    ) -> None:
        self.pid, self.x, self.y = pid, x, y
        self.color, self.score, self.local = color, score, local


class ClientGame:
    """Everything a non-host peer knows about the match."""

    def __init__(self, my_pid: str) -> None:
        self.me = my_pid
        self.seq = 0
        self.history: deque[tuple[int, Input]] = deque(maxlen=_HISTORY)
        self.predicted: Player | None = None
        self.latest: SnapshotView | None = None
        self.tracks: dict[str, Track] = {}
        self.clock = ClockOffset()
        self.moved: dict[str, float] = {}
        self.snapshots = 0
        self.stale = 0
        self.corrections = 0  # reconciliations that moved us by more than 1 px

    def tick(self, inp: Input) -> dict[str, Any]:
        """Apply our input locally (prediction) and return the input packet to send."""
        self.seq += 1
        self.history.append((self.seq, inp))
        if self.predicted is not None:
            self.predicted = move_player(self.predicted, inp)
        return encode_inputs(self.history)

    def on_snapshot(self, view: SnapshotView, now: float) -> None:
        if self.latest is not None and view.tick <= self.latest.tick:
            self.stale += 1  # unordered channel: an older snapshot than we have is useless
            return
        self.snapshots += 1
        self.clock.observe(view.tick * DT, now)
        for pid, pv in view.players.items():
            if pid == self.me:
                continue
            old = self.latest.players.get(pid) if self.latest else None
            if old is not None:
                self.moved[pid] = self.moved.get(pid, 0.0) + math.hypot(pv.x - old.x, pv.y - old.y)
            else:
                self.moved.setdefault(pid, 0.0)
            self.tracks.setdefault(pid, Track()).push(view.tick * DT, (pv.x, pv.y))
        for pid in list(self.tracks):
            if pid not in view.players:
                del self.tracks[pid]
        self.latest = view
        self._reconcile(view)

    def _reconcile(self, view: SnapshotView) -> None:
        mine = view.players.get(self.me)
        if mine is None:
            return
        state = player_from_view(mine)
        for seq, inp in self.history:
            if seq > mine.ack:
                state = move_player(state, inp)
        old = self.predicted
        if old is not None and math.hypot(old.x - state.x, old.y - state.y) > 1.0:
            self.corrections += 1
        self.predicted = state

    def render_time(self, now: float) -> float:
        """Host time to draw remote players at: our estimate of 'now' there, minus the delay."""
        return self.clock.remote_now(now) - INTERP_DELAY_S

    def players(self, now: float, *, interpolate: bool, predict: bool) -> list[RenderedPlayer]:
        """Where to draw every player; the toggles show what each technique buys."""
        view = self.latest
        if view is None:
            return []
        out = []
        t = self.render_time(now)
        for pid, pv in view.players.items():
            if pid == self.me:
                if predict and self.predicted is not None:
                    x, y = self.predicted.x, self.predicted.y
                else:
                    x, y = pv.x, pv.y
                out.append(RenderedPlayer(pid, x, y, pv.color, pv.score, local=True))
                continue
            track = self.tracks.get(pid)
            pos = track.sample(t) if (interpolate and track is not None) else None
            x, y = pos if pos is not None else (pv.x, pv.y)
            out.append(RenderedPlayer(pid, x, y, pv.color, pv.score))
        return out

    def pickups(self) -> list[tuple[float, float]]:
        return list(self.latest.pickups.values()) if self.latest else []

    def my_position(self) -> tuple[float, float] | None:
        if self.predicted is not None:
            return self.predicted.x, self.predicted.y
        return None
