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
from typing import Any

from netcode import InterpolationBuffer, Predictor, RemoteClockEstimator, recommended_delay

from .messages import INPUT_REDUNDANCY, SnapshotView, encode_inputs, player_from_view
from .sim import DT, Input, Player, move_player

__all__ = ["SNAPSHOT_RATE", "ClientGame", "RenderedPlayer"]

SNAPSHOT_RATE = 30.0  # the host sends every second tick
_ERROR_DECAY = 0.85  # per tick: a correction is ~90 % absorbed after 14 ticks (~0.25 s)
_MAX_SMOOTHED_PX = 120.0  # larger corrections snap: sliding that far would look wrong


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
        self.predictor: Predictor[Player, Input] | None = None  # from the first snapshot on
        self.latest: SnapshotView | None = None
        # Remote players, stamped with the jitter-free local arrival time of their host
        # tick (RemoteClockEstimator), drawn `delay` in the past.
        self.interp = InterpolationBuffer(
            snapshot_rate=SNAPSHOT_RATE, fields=("x", "y"), max_extrapolation=0.1
        )
        self.clock = RemoteClockEstimator()
        self.moved: dict[str, float] = {}
        self.moved_before_host_change: dict[str, float] = {}
        self.latest_at = 0.0  # local time the latest snapshot arrived
        self._any_tick = False  # a new host: its first snapshot is taken whatever its tick
        self.snapshots = 0
        self.stale = 0
        self.corrections = 0  # reconciliations that moved us by more than 1 px
        # Drawn position = predicted + error; a correction moves `predicted` at once but
        # the error absorbs the jump and decays, so the circle slides instead of snapping.
        self.error = (0.0, 0.0)

    def tick(self, inp: Input) -> dict[str, Any] | None:
        """Apply our input locally (prediction); returns the input packet to send.

        None until the host has placed us in the world (nothing to predict from).
        """
        if self.predictor is None:
            return None
        self.error = (self.error[0] * _ERROR_DECAY, self.error[1] * _ERROR_DECAY)
        self.predictor.push(inp)
        return encode_inputs(self.predictor.pending_inputs(INPUT_REDUNDANCY))

    def adapt_delay(self, jitter_ms: float) -> None:
        """Two snapshot intervals plus twice the link's jitter (netcode's recommendation)."""
        self.interp.delay = recommended_delay(SNAPSHOT_RATE, jitter_ms)

    def new_host(self) -> None:
        """Another peer took over the match: its clock is not the old host's, so the
        tick-to-time mapping and the interpolation history start afresh (our own
        prediction carries on: the new host continues the input sequence)."""
        self.interp = InterpolationBuffer(
            snapshot_rate=SNAPSHOT_RATE, fields=("x", "y"), max_extrapolation=0.1
        )
        self.clock = RemoteClockEstimator()
        self.moved_before_host_change = dict(self.moved)
        self._any_tick = True

    def moved_since_host_change(self) -> dict[str, float]:
        return {p: d - self.moved_before_host_change.get(p, 0.0) for p, d in self.moved.items()}

    def on_snapshot(self, view: SnapshotView, now: float) -> None:
        stale = self.latest is not None and view.tick <= self.latest.tick
        if stale and not self._any_tick:
            self.stale += 1  # unordered channel: an older snapshot than we have is useless
            return
        self._any_tick = False
        self.latest_at = now
        self.snapshots += 1
        self.clock.add_sample(view.tick * DT, now)
        remote: dict[str | int, dict[str, Any]] = {}
        for pid, pv in view.players.items():
            if pid == self.me:
                continue
            old = self.latest.players.get(pid) if self.latest else None
            step = math.hypot(pv.x - old.x, pv.y - old.y) if old is not None else 0.0
            self.moved[pid] = self.moved.get(pid, 0.0) + step
            remote[pid] = {"x": pv.x, "y": pv.y}
        self.interp.push(self.clock.arrival_time(view.tick * DT), remote)
        self.latest = view
        self._reconcile(view)

    def _reconcile(self, view: SnapshotView) -> None:
        mine = view.players.get(self.me)
        if mine is None:
            return
        state = player_from_view(mine)
        if self.predictor is None:
            # A seat taken back after a crash: the host already applied inputs of ours
            # up to `ack` (from our previous process). Carry on past them, with a gap
            # over what it may still hold queued (its backlog is smaller than that).
            first = mine.ack + 1 + INPUT_REDUNDANCY if mine.ack >= 0 else 0
            self.predictor = Predictor(state, move_player, first_seq=first)
            return
        old = self.predictor.state
        new = self.predictor.reconcile(state, mine.ack if mine.ack >= 0 else None)
        jump = math.hypot(old.x - new.x, old.y - new.y)
        if jump > 1.0:
            self.corrections += 1
        ex, ey = self.error[0] + old.x - new.x, self.error[1] + old.y - new.y
        self.error = (ex, ey) if math.hypot(ex, ey) < _MAX_SMOOTHED_PX else (0.0, 0.0)

    def players(self, now: float, *, interpolate: bool, predict: bool) -> list[RenderedPlayer]:
        """Where to draw every player; the toggles show what each technique buys."""
        view = self.latest
        if view is None:
            return []
        sampled = self.interp.sample(now) if interpolate else {}
        out = []
        for pid, pv in view.players.items():
            x, y = pv.x, pv.y
            if pid == self.me:
                if predict and self.predictor is not None:
                    x = self.predictor.state.x + self.error[0]
                    y = self.predictor.state.y + self.error[1]
            elif pid in sampled:
                x, y = float(sampled[pid]["x"]), float(sampled[pid]["y"])
            out.append(RenderedPlayer(pid, x, y, pv.color, pv.score, local=pid == self.me))
        return out

    def pickups(self) -> list[tuple[float, float]]:
        return list(self.latest.pickups.values()) if self.latest else []

    def my_position(self) -> tuple[float, float] | None:
        if self.predictor is not None:
            return self.predictor.state.x, self.predictor.state.y
        return None
