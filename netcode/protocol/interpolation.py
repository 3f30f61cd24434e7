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
  ``max_extrapolation`` seconds, then hold. Fields that teleported between those
  two snapshots are held, not extrapolated.
* **Render time before the oldest snapshot** (just started, or the delay was
  raised): the oldest snapshot is drawn as is.
* **Time jumps** (the remote clock was reset, the game paused): call
  :meth:`InterpolationBuffer.clear`; :meth:`InterpolationBuffer.lag` tells how
  far the newest snapshot is ahead of the render time.

Snapshot times must be on the same clock as ``now``: either the local arrival
time (simple, carries the jitter) or the sender's timestamp mapped to local
time with :class:`netcode.protocol.clock.RemoteClockEstimator` (smoother).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigError
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


class InterpolationBuffer:
    """Buffers timestamped snapshots of remote entities and samples them in the past."""

    def __init__(
        self,
        *,
        delay: float | None = None,
        snapshot_rate: float = 60.0,
        max_extrapolation: float = 0.25,
        teleport: Mapping[str, float] | None = None,
        fields: Collection[str] | None = None,
        # Limits
        capacity: int = 64,
    ) -> None:
        if not (_is_number(snapshot_rate) and 0 < snapshot_rate < math.inf):
            raise ConfigError(f"snapshot_rate must be a finite number > 0, got {snapshot_rate!r}")
        if type(capacity) is not int or capacity < 2:
            raise ConfigError(f"capacity must be an int >= 2, got {capacity!r}")
        if not (_is_number(max_extrapolation) and 0 <= max_extrapolation < math.inf):
            raise ConfigError(f"max_extrapolation must be >= 0, got {max_extrapolation!r}")
        self._delay = recommended_delay(snapshot_rate) if delay is None else delay
        if not (_is_number(self._delay) and 0 <= self._delay < math.inf):
            raise ConfigError(f"delay must be a finite number >= 0, got {delay!r}")
        self.max_extrapolation = max_extrapolation
        self._teleport = dict(teleport or {})
        self._fields = None if fields is None else frozenset(fields)
        self._capacity = capacity
        self._times: list[float] = []
        self._frames: list[_Frame] = []

    @property
    def delay(self) -> float:
        """How far in the past the world is drawn, in seconds (settable at run time)."""
        return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        if not (_is_number(value) and 0 <= value < math.inf):
            raise ValueError(f"delay must be a finite number >= 0, got {value!r}")
        self._delay = value

    def __len__(self) -> int:
        return len(self._times)

    @property
    def newest_time(self) -> float | None:
        return self._times[-1] if self._times else None

    def lag(self, now: float) -> float | None:
        """Newest snapshot time minus render time (< 0: the buffer has run dry)."""
        return None if not self._times else self._times[-1] - (now - self._delay)

    def push(self, t: float, entities: Entities) -> bool:
        """Add the snapshot taken at time ``t``; False if ignored (duplicate or too old).

        Snapshots may arrive out of order; they are kept sorted by time. When
        full, the oldest is dropped, and a snapshot older than all held ones
        is ignored.
        """
        if not math.isfinite(t):
            raise ValueError("snapshot time must be finite")
        i = bisect.bisect_left(self._times, t)
        if i < len(self._times) and self._times[i] == t:
            return False
        if i == 0 and len(self._times) >= self._capacity:
            return False
        self._times.insert(i, t)
        self._frames.insert(i, {eid: dict(f) for eid, f in entities.items()})
        if len(self._times) > self._capacity:
            del self._times[0], self._frames[0]
        return True

    def clear(self) -> None:
        self._times.clear()
        self._frames.clear()

    def sample(self, now: float) -> dict[EntityId, dict[str, Any]]:
        """The entities to draw at local time ``now`` (rendered at ``now - delay``)."""
        return self.sample_at(now - self._delay)

    def sample_at(self, render_time: float) -> dict[EntityId, dict[str, Any]]:
        """The entities as they were at ``render_time`` (see the module policy)."""
        times = self._times
        if not times:
            return {}
        i = bisect.bisect_right(times, render_time)
        if i == 0:
            return {eid: dict(f) for eid, f in self._frames[0].items()}
        if i == len(times):
            return self._extrapolate(render_time)
        t0, t1 = times[i - 1], times[i]
        f0, f1 = self._frames[i - 1], self._frames[i]
        alpha = (render_time - t0) / (t1 - t0)
        out: dict[EntityId, dict[str, Any]] = {}
        for eid, fields in f0.items():
            newer = f1.get(eid)
            out[eid] = dict(fields) if newer is None else self._lerp(fields, newer, alpha)
        return out

    def _lerp(self, old: dict[str, Any], new: dict[str, Any], alpha: float) -> dict[str, Any]:
        out = dict(old)
        for name, v0 in old.items():
            v1 = new.get(name)
            if self._blends(name, v0, v1):
                lo, hi = (v0, v1) if v0 <= v1 else (v1, v0)
                out[name] = min(hi, max(lo, v0 + (v1 - v0) * alpha))
        return out

    def _blends(self, name: str, v0: Any, v1: Any) -> bool:
        """True if ``name`` moves smoothly from ``v0`` to ``v1`` (numeric, no teleport)."""
        if self._fields is not None and name not in self._fields:
            return False
        if not (_is_number(v0) and _is_number(v1)):
            return False
        if not (math.isfinite(v0) and math.isfinite(v1)):
            return False
        limit = self._teleport.get(name)
        return limit is None or abs(v1 - v0) <= limit

    def _extrapolate(self, render_time: float) -> dict[EntityId, dict[str, Any]]:
        t_last, last = self._times[-1], self._frames[-1]
        if len(self._times) < 2 or self.max_extrapolation == 0:
            return {eid: dict(f) for eid, f in last.items()}
        t_prev, prev = self._times[-2], self._frames[-2]
        ahead = min(render_time - t_last, self.max_extrapolation)
        scale = ahead / (t_last - t_prev)
        out: dict[EntityId, dict[str, Any]] = {}
        for eid, fields in last.items():
            before = prev.get(eid)
            entity = dict(fields)
            if before is not None:
                for name, v1 in fields.items():
                    v0 = before.get(name)
                    if self._blends(name, v0, v1):
                        entity[name] = v1 + (v1 - v0) * scale
            out[eid] = entity
        return out
