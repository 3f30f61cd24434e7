"""The fixed-timestep tick clock and the remote-clock estimator.

Pure: no I/O; every method takes the local time ``now`` (seconds, one
monotonic clock) as a parameter.

:class:`TickClock` is the "Fix Your Timestep!" accumulator (Fiedler): the game
simulates in fixed steps of ``1 / rate`` seconds however irregular its frames
are, and blends drawing by ``alpha``. Ticks are counted from an origin, not
summed from frame deltas, so no floating-point drift builds up over a long
match; when the game stalls, at most ``max_catchup_ticks`` run per frame and
the rest is dropped (counted), so one slow frame does not snowball.
:meth:`TickClock.advance` returns the *numbers* of the ticks to simulate, so
each catch-up step of one frame has its own (``for tick in clock.advance(now)``);
a bare count would leave every step of the batch reading the same ``tick``.

:class:`RemoteClockEstimator` learns the peer's clock from timestamps in its
packets. Queueing can only delay a packet, never speed it up, so the sample
with the smallest transit in a recent window is the most truthful one (the
NTP clock-filter idea); that minimum is then smoothed so the estimate slews
instead of jumping. It gives the peer's current time/tick (to run the
client's tick in step with the host) and the jitter-free arrival time of a
snapshot (to feed :class:`~netcode.protocol.interpolation.InterpolationBuffer`).
"""

from __future__ import annotations

import math
from collections import deque

from ..config import TickConfig
from ..errors import ConfigError

__all__ = ["RemoteClockEstimator", "TickClock", "TimestampUnwrapper"]


def _finite_time(name: str, value: object) -> float:
    """A time from the game as a finite float, else :class:`ConfigError` (a bug to see)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            f = float(value)
        except OverflowError:
            pass
        else:
            if math.isfinite(f):
                return f
    raise ConfigError(f"{name} must be a finite number of seconds, got {value!r:.60}")


class TickClock:
    """Fixed-timestep accumulator: which ticks to simulate now, and the blend factor."""

    def __init__(self, config: TickConfig | None = None) -> None:
        if config is not None and not isinstance(config, TickConfig):
            raise ConfigError(f"TickClock needs a TickConfig, got {type(config).__name__}")
        self._config = config or TickConfig()
        self._origin: float | None = None
        self._due = 0  # ticks accounted for since the origin (run + dropped)
        self._tick = 0
        self._alpha = 0.0
        self.dropped_ticks = 0

    @property
    def rate(self) -> int:
        return self._config.rate

    @property
    def dt(self) -> float:
        """Seconds per tick: pass it to the simulation step."""
        return self._config.dt

    @property
    def tick(self) -> int:
        """Ticks simulated so far: the number of the next tick to simulate.

        :meth:`advance` moves it past the whole batch at once, so inside
        ``for tick in clock.advance(now)`` read the loop variable, not this.
        """
        return self._tick

    @property
    def alpha(self) -> float:
        """0..1 fraction of a tick elapsed since the last one: blend previous/current state."""
        return self._alpha

    def advance(self, now: float) -> range:
        """The numbers of the ticks to simulate at ``now``, oldest first.

        ``for tick in clock.advance(now): step(tick)`` runs each due tick with
        its own number (``len()`` is the count). Empty on the first call, which
        starts the clock, and when time went backwards. At most
        ``max_catchup_ticks`` long: the excess is dropped and counted in
        ``dropped_ticks`` (dropped ticks take no number). Raises
        :class:`ConfigError` if ``now`` is not a finite number.
        """
        now = _finite_time("now", now)
        if self._origin is None:
            self._origin = now
            return range(self._tick, self._tick)
        elapsed_ticks = (now - self._origin) * self._config.rate
        if not math.isfinite(elapsed_ticks):
            raise ConfigError(f"now={now!r} is too far from the clock's origin {self._origin!r}")
        due = math.floor(elapsed_ticks)
        n = max(0, due - self._due)
        run = min(n, self._config.max_catchup_ticks)
        self.dropped_ticks += n - run
        self._due += n
        first = self._tick
        self._tick += run
        # In [0, 1) because self._due >= floor(elapsed_ticks) now; < 0 only if time went back.
        self._alpha = max(0.0, elapsed_ticks - self._due)
        return range(first, self._tick)

    def next_deadline(self) -> float | None:
        """Local time at which the next tick is due (None before the first advance)."""
        if self._origin is None:
            return None
        return self._origin + (self._due + 1) * self.dt

    def shift(self, seconds: float) -> None:
        """Run ``seconds`` ahead (or behind if negative), e.g. to track the host's tick.

        Moving ahead makes the next :meth:`advance` return extra ticks (still
        capped); moving behind makes it wait. Raises :class:`ConfigError` if
        ``seconds`` is not a finite number.
        """
        seconds = _finite_time("seconds", seconds)
        if self._origin is not None:
            self._origin -= seconds

    def reset(self) -> None:
        """Forget the origin; the next :meth:`advance` starts again (tick count kept)."""
        self._origin = None
        self._due = 0
        self._alpha = 0.0


class RemoteClockEstimator:
    """Estimates a peer's clock from ``(remote_time, local_receive_time, rtt)`` samples.

    ``transit`` is ``local - remote`` for the least-delayed packet of the last
    ``window`` samples, smoothed: the clock difference plus the minimum
    one-way delay. ``offset`` (remote minus local clock) removes that delay as
    half the RTT measured with that sample. A change of more than
    ``reset_threshold`` seconds (the peer restarted its clock) starts over.
    """

    def __init__(
        self,
        *,
        window: int = 32,
        smoothing: float = 0.1,
        reset_threshold: float = 1.0,
    ) -> None:
        if window < 1 or not 0.0 < smoothing <= 1.0 or reset_threshold <= 0:
            raise ConfigError("window >= 1, smoothing in (0, 1], reset_threshold > 0")
        self._window: deque[tuple[float, float]] = deque(maxlen=window)
        self._smoothing = smoothing
        self._reset_threshold = reset_threshold
        self._transit: float | None = None
        self._half_rtt = 0.0
        self.samples = 0
        self.resets = 0

    def add_sample(self, remote_time: float, local_receive_time: float, rtt: float = 0.0) -> None:
        """One packet stamped ``remote_time`` by the peer arrived at ``local_receive_time``."""
        if not (math.isfinite(remote_time) and math.isfinite(local_receive_time)):
            raise ValueError("clock samples must be finite")
        if not (math.isfinite(rtt) and rtt >= 0):
            raise ValueError("rtt must be finite and >= 0")
        transit = local_receive_time - remote_time
        self.samples += 1
        if self._transit is not None and abs(transit - self._transit) > self._reset_threshold:
            self._window.clear()
            self._transit = None
            self.resets += 1
        self._window.append((transit, rtt / 2))
        best_transit, best_half_rtt = min(self._window)
        if self._transit is None:
            self._transit, self._half_rtt = best_transit, best_half_rtt
            return
        k = self._smoothing
        self._transit += k * (best_transit - self._transit)
        self._half_rtt += k * (best_half_rtt - self._half_rtt)

    @property
    def transit(self) -> float | None:
        """Smoothed minimum ``local - remote`` seconds, or None before any sample."""
        return self._transit

    @property
    def offset(self) -> float | None:
        """Estimated remote clock minus local clock, seconds (None before any sample)."""
        return None if self._transit is None else self._half_rtt - self._transit

    def remote_now(self, local_now: float) -> float:
        """The peer's clock reading right now."""
        return local_now + self._require(self.offset)

    def to_local(self, remote_time: float) -> float:
        """The local clock reading at the instant the peer's clock read ``remote_time``."""
        return remote_time - self._require(self.offset)

    def arrival_time(self, remote_time: float) -> float:
        """When a packet stamped ``remote_time`` arrives on an unloaded path (no jitter).

        Use it as the snapshot time for :meth:`InterpolationBuffer.push`: the
        buffer then sees evenly spaced snapshots, and its delay only has to
        cover the tick interval and the jitter, not the latency.
        """
        return remote_time + self._require(self._transit)

    def remote_tick(self, local_now: float, rate: float) -> float:
        """The peer's current tick, when its timestamps are ``tick / rate`` seconds."""
        return self.remote_now(local_now) * rate

    @staticmethod
    def _require(value: float | None) -> float:
        if value is None:
            raise RuntimeError("RemoteClockEstimator has no sample yet")
        return value


class TimestampUnwrapper:
    """Turns wrapping integer timestamps (e.g. wire ``sent_us``, uint32 µs) into seconds.

    A new timestamp is taken as the nearest one to the previous across the
    wrap (within half the range), like 16-bit sequences, so reordered packets
    unwrap correctly too.
    """

    def __init__(self, *, bits: int = 32, unit: float = 1e-6) -> None:
        self._modulus = 1 << bits
        self._unit = unit
        self._last: int | None = None  # unwrapped ticks of the latest timestamp

    def unwrap(self, stamp: int) -> float:
        """Seconds on a continuous timeline (the first timestamp sets the epoch)."""
        stamp %= self._modulus
        if self._last is None:
            value = stamp
        else:
            half = self._modulus // 2
            delta = (stamp - self._last) % self._modulus
            if delta >= half:
                delta -= self._modulus
            value = self._last + delta
        if self._last is None or value > self._last:
            self._last = value
        return value * self._unit
