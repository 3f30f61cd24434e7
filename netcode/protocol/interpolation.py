"""Snapshot interpolation: render remote entities a little in the past, smoothly.

Pure: no I/O; time is a parameter. Remote state arrives in snapshots at the
sender's tick rate with network jitter; drawing the newest snapshot directly
stutters. Instead the game draws the world as it was ``delay`` seconds ago,
where two snapshots usually surround the render time and can be blended
(Valve's ``cl_interp`` model; Fiedler, "Snapshot Interpolation").

Policy, per entity id, at render time ``rt = now - delay``:

* **Between two snapshots** ``t0 <= rt < t1``: numeric fields (int/float, not
  bool; optionally only the names in ``fields``) are linearly interpolated and
  clamped to the two values; other fields take the older snapshot's value.
* **Teleport**: when a field changes by more than ``teleport[field]`` between
  the two snapshots it snaps (older value until ``t1``, newer after) instead of
  sliding across the map.
* **Appearing / disappearing**: the entities drawn are those of the ``t0``
  snapshot. A new entity appears when ``rt`` reaches the first snapshot that
  has it; an entity missing from ``t1`` holds its ``t0`` values until ``rt``
  reaches ``t1``, then is gone.
* **Buffer ran dry** (``rt`` past the newest snapshot): extrapolate numeric
  fields along the last two snapshots' velocity for at most
  ``max_extrapolation`` seconds (default 0.1), then hold that value. Fields
  that teleported between those two snapshots are held, not extrapolated, and
  no field is extrapolated further than its ``teleport`` threshold.
* **Render time before the oldest snapshot** (just started, or the delay was
  raised): the oldest snapshot is drawn as is.
* **Time jumps** (the remote clock was reset, the game paused): call
  :meth:`InterpolationBuffer.clear`; :meth:`InterpolationBuffer.lag` tells how
  far the newest snapshot is ahead of the render time.

What :meth:`InterpolationBuffer.push` refuses (it returns False and counts;
snapshot contents come from the network, so they never raise):

* a time that is NaN or infinite, a time closer than ``min_spacing`` to a held
  snapshot (duplicates included: velocity over a few nanoseconds is noise that
  extrapolation would multiply into a throw across the map), and a snapshot
  older than every held one while the buffer is full: ``dropped_snapshots``;
* an entity with a NaN or infinite value in a field that is interpolated:
  that entity alone is left out of the snapshot (``dropped_entities``), so one
  bad entity never stops the others.

So every interpolated value drawn is finite, and an extrapolated one is at most
``|v1 - v0| * max_extrapolation / min_spacing`` (and ``teleport[field]``) away
from the newest value ``v1``. Mistakes of the game itself raise:
:class:`~netcode.errors.ConfigError` for a bad setting or a time argument that
is not a finite number (``now``, ``render_time``, the type of ``t``), and
:class:`~netcode.errors.EncodeError` for entities that are not a map of maps.

Snapshot times must be on the same clock as ``now``: either the local arrival
time (simple, carries the jitter) or the sender's timestamp mapped to local
time with :class:`netcode.protocol.clock.RemoteClockEstimator` (smoother).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigError, EncodeError
from .snapshot import Entities, EntityId

__all__ = ["InterpolationBuffer", "recommended_delay"]

_Frame = dict[EntityId, dict[str, Any]]


def recommended_delay(snapshot_rate: float, jitter_ms: float = 0.0) -> float:
    """Two snapshot intervals plus twice the measured jitter, in seconds.

    Two intervals leave one lost snapshot bridged by interpolation instead of
    extrapolation; the jitter term keeps a late snapshot from running the
    buffer dry. Feed ``PeerStats.jitter_ms`` to adapt it at run time.
    """
    return 2.0 / snapshot_rate + 2.0 * max(0.0, jitter_ms) / 1000.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN/inf, an int beyond float)."""
    if not _is_number(value):
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _setting(name: str, value: object, *, positive: bool = False) -> float:
    """A finite number >= 0 (> 0 if ``positive``), else :class:`ConfigError`."""
    f = _finite(value)
    if f is None or f < 0 or (positive and f == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return f


def _time(name: str, value: object) -> float:
    """A time argument from the game: a finite number, else :class:`ConfigError`."""
    f = _finite(value)
    if f is None:
        raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
    return f


def _lerp_value(v0: float, v1: float, alpha: float) -> float:
    """``v0 -> v1`` at ``alpha`` in [0, 1], clamped to the two values, never overflowing."""
    d = v1 - v0
    x = v0 + d * alpha if math.isfinite(d) else v0 * (1.0 - alpha) + v1 * alpha
    lo, hi = (v0, v1) if v0 <= v1 else (v1, v0)
    return min(hi, max(lo, x))


class InterpolationBuffer:
    """Buffers timestamped snapshots of remote entities and samples them in the past.

    Counters (plain ints, never reset by :meth:`clear`): ``dropped_snapshots``
    (pushes refused for their time) and ``dropped_entities`` (entities left out
    of a pushed snapshot for a NaN/inf interpolated field).
    """

    def __init__(
        self,
        *,
        delay: float | None = None,
        snapshot_rate: float = 60.0,
        max_extrapolation: float = 0.1,
        teleport: Mapping[str, float] | None = None,
        fields: Collection[str] | None = None,
        # Limits
        capacity: int = 64,
        min_spacing: float | None = None,
    ) -> None:
        rate = _setting("snapshot_rate", snapshot_rate, positive=True)
        if type(capacity) is not int or capacity < 2:
            raise ConfigError(f"capacity must be an int >= 2, got {capacity!r}")
        self._delay = _setting("delay", recommended_delay(rate) if delay is None else delay)
        self._max_extrapolation = _setting("max_extrapolation", max_extrapolation)
        # A quarter interval: arrival-time stamps jitter, but two snapshots closer than
        # that carry no usable velocity (5 ns apart once threw a player 165 million px).
        spacing = 0.25 / rate if min_spacing is None else min_spacing
        self._min_spacing = _setting("min_spacing", spacing, positive=True)
        self._teleport = {
            name: _setting(f"teleport[{name!r}]", limit) for name, limit in (teleport or {}).items()
        }
        self._fields = None if fields is None else frozenset(fields)
        self._capacity = capacity
        self._times: list[float] = []
        self._frames: list[_Frame] = []
        self.dropped_snapshots = 0
        self.dropped_entities = 0

    @property
    def delay(self) -> float:
        """How far in the past the world is drawn, in seconds (settable at run time)."""
        return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        self._delay = _setting("delay", value)

    @property
    def max_extrapolation(self) -> float:
        """Seconds past the newest snapshot that motion is extrapolated (settable)."""
        return self._max_extrapolation

    @max_extrapolation.setter
    def max_extrapolation(self, value: float) -> None:
        self._max_extrapolation = _setting("max_extrapolation", value)

    @property
    def min_spacing(self) -> float:
        """Smallest gap in seconds between two held snapshot times."""
        return self._min_spacing

    def __len__(self) -> int:
        return len(self._times)

    @property
    def newest_time(self) -> float | None:
        return self._times[-1] if self._times else None

    def lag(self, now: float) -> float | None:
        """Newest snapshot time minus render time (< 0: the buffer has run dry)."""
        render_time = self._render_time(now)
        return None if not self._times else self._times[-1] - render_time

    def push(self, t: float, entities: Entities) -> bool:
        """Add the snapshot taken at time ``t``; False if refused (counted, see the module doc).

        Snapshots may arrive out of order; they are kept sorted by time. When
        full, the oldest is dropped, and a snapshot older than all held ones
        is refused.
        """
        if not _is_number(t):
            raise ConfigError(f"snapshot time must be a number of seconds, got {t!r:.60}")
        frame = self._frame(entities)  # first: a malformed map raises even if t is refused
        i = self._slot(t)
        if i is None:
            self.dropped_snapshots += 1
            return False
        self._times.insert(i, float(t))
        self._frames.insert(i, frame)
        if len(self._times) > self._capacity:
            del self._times[0], self._frames[0]
        return True

    def _slot(self, t: float) -> int | None:
        """Where ``t`` goes in the sorted times, or None if it must be refused."""
        times = self._times
        try:
            if not math.isfinite(t):
                return None
        except OverflowError:  # an int beyond float range
            return None
        i = bisect.bisect_left(times, t)
        if i > 0 and t - times[i - 1] < self._min_spacing:
            return None
        if i < len(times) and times[i] - t < self._min_spacing:
            return None
        if i == 0 and len(times) >= self._capacity:
            return None
        return i

    def _frame(self, entities: Entities) -> _Frame:
        """Copy of ``entities`` without those holding a NaN/inf interpolated field."""
        if not isinstance(entities, Mapping):
            raise EncodeError(f"entities must be a map id -> fields, got {type(entities).__name__}")
        frame: _Frame = {}
        for eid, fields in entities.items():
            if not isinstance(fields, Mapping):
                raise EncodeError(f"entity {eid!r:.60}: fields must be a map, got {fields!r:.60}")
            if self._has_bad_number(fields):
                self.dropped_entities += 1
                continue
            frame[eid] = dict(fields)
        return frame

    def _has_bad_number(self, fields: Mapping[str, Any]) -> bool:
        for name, value in fields.items():
            if self._fields is not None and name not in self._fields:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                return True
        return False

    def clear(self) -> None:
        self._times.clear()
        self._frames.clear()

    def sample(self, now: float) -> dict[EntityId, dict[str, Any]]:
        """The entities to draw at local time ``now`` (rendered at ``now - delay``)."""
        return self.sample_at(self._render_time(now))

    def _render_time(self, now: float) -> float:
        render_time = _time("now", now) - self._delay
        if not math.isfinite(render_time):
            raise ConfigError(f"now - delay is not finite (now={now!r}, delay={self._delay!r})")
        return render_time

    def sample_at(self, render_time: float) -> dict[EntityId, dict[str, Any]]:
        """The entities as they were at ``render_time`` (see the module policy)."""
        rt = _time("render_time", render_time)
        times = self._times
        if not times:
            return {}
        i = bisect.bisect_right(times, rt)
        if i == 0:
            return {eid: dict(f) for eid, f in self._frames[0].items()}
        if i == len(times):
            return self._extrapolate(rt)
        t0, t1 = times[i - 1], times[i]
        f0, f1 = self._frames[i - 1], self._frames[i]
        alpha = (rt - t0) / (t1 - t0)
        # NaN only for inf/inf: times are finite but their differences may overflow.
        alpha = 0.0 if alpha != alpha else min(1.0, max(0.0, alpha))
        out: dict[EntityId, dict[str, Any]] = {}
        for eid, fields in f0.items():
            newer = f1.get(eid)
            out[eid] = dict(fields) if newer is None else self._lerp(fields, newer, alpha)
        return out

    def _lerp(self, old: dict[str, Any], new: dict[str, Any], alpha: float) -> dict[str, Any]:
        out = dict(old)
        for name, v0 in old.items():
            pair = self._blend_pair(name, v0, new.get(name))
            if pair is not None:
                out[name] = _lerp_value(pair[0], pair[1], alpha)
        return out

    def _blend_pair(self, name: str, v0: Any, v1: Any) -> tuple[float, float] | None:
        """``(v0, v1)`` as floats if ``name`` moves smoothly between them, else None."""
        if self._fields is not None and name not in self._fields:
            return None
        f0, f1 = _finite(v0), _finite(v1)
        if f0 is None or f1 is None:
            return None
        limit = self._teleport.get(name)
        if limit is not None and not abs(f1 - f0) <= limit:  # `not <=`: overflow to inf snaps
            return None
        return f0, f1

    def _extrapolate(self, render_time: float) -> dict[EntityId, dict[str, Any]]:
        t_last, last = self._times[-1], self._frames[-1]
        if len(self._times) < 2 or self._max_extrapolation == 0:
            return {eid: dict(f) for eid, f in last.items()}
        t_prev, prev = self._times[-2], self._frames[-2]
        # t_last - t_prev >= min_spacing > 0, so the scale is at most cap / min_spacing.
        scale = min(render_time - t_last, self._max_extrapolation) / (t_last - t_prev)
        out: dict[EntityId, dict[str, Any]] = {}
        for eid, fields in last.items():
            before = prev.get(eid)
            entity = dict(fields)
            if before is not None:
                for name, v1 in fields.items():
                    pair = self._blend_pair(name, before.get(name), v1)
                    if pair is not None:
                        entity[name] = self._ahead(name, pair[0], pair[1], scale)
            out[eid] = entity
        return out

    def _ahead(self, name: str, v0: float, v1: float, scale: float) -> float:
        """``v1`` moved ``scale`` times its last step, within the teleport threshold."""
        step = (v1 - v0) * scale
        limit = self._teleport.get(name)
        if limit is not None:
            step = min(limit, max(-limit, step))
        x = v1 + step
        return x if math.isfinite(x) else v1  # overflow (inf or inf * 0): hold, never draw it
