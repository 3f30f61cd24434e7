"""Per-peer numbers for the status line and the ``--stats-json`` file. Pure.

The session's ``PeerStats`` are current values; RTT percentiles need the
history, so :class:`StatsRecorder` samples them over the match.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "PeerRecord",
    "StatsLike",
    "StatsRecorder",
    "Timeline",
    "movement_json",
    "percentile",
]


class StatsLike(Protocol):
    """The fields of netcode's PeerStats the demo reads."""

    @property
    def rtt_ms(self) -> float: ...
    @property
    def jitter_ms(self) -> float: ...
    @property
    def loss(self) -> float: ...
    @property
    def packets_sent(self) -> int: ...
    @property
    def packets_received(self) -> int: ...
    @property
    def kbps_sent(self) -> float: ...
    @property
    def kbps_received(self) -> float: ...


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(slots=True)
class PeerRecord:
    """What we learnt about one remote peer."""

    connected: bool = False
    rtt_samples: list[float] = field(default_factory=list)
    last: StatsLike | None = None
    left: str | None = None

    def as_json(self) -> dict[str, Any]:
        s = self.last
        return {
            "connected": self.connected,
            "left": self.left,
            "state_packets_sent": s.packets_sent if s else 0,
            "state_packets_received": s.packets_received if s else 0,
            "rtt_p50_ms": percentile(self.rtt_samples, 50),
            "rtt_p99_ms": percentile(self.rtt_samples, 99),
            "rtt_samples": len(self.rtt_samples),
            "jitter_ms": s.jitter_ms if s else None,
            "loss": s.loss if s else None,
            "kbps_sent": s.kbps_sent if s else None,
            "kbps_received": s.kbps_received if s else None,
        }


class StatsRecorder:
    """Collects per-peer samples; renders the status line and the final JSON."""

    def __init__(self) -> None:
        self.peers: dict[str, PeerRecord] = {}

    def connected(self, pid: str) -> None:
        rec = self.peers.setdefault(pid, PeerRecord())
        rec.connected, rec.left = True, None  # back after a drop or a new host

    def left(self, pid: str, reason: str) -> None:
        self.peers.setdefault(pid, PeerRecord()).left = reason

    def sample(self, pid: str, stats: StatsLike) -> None:
        rec = self.peers.setdefault(pid, PeerRecord())
        rec.last = stats
        if rec.connected and stats.rtt_ms > 0 and rec.left is None:
            rec.rtt_samples.append(stats.rtt_ms)

    def status_line(self, elapsed: float, want_peers: int | None, focus: str | None = None) -> str:
        """One line for headless runs. RTT and loss are the ``focus`` link's (a client's
        host), else the worst live link's; kbps are summed over all links."""
        live = {p: r for p, r in self.peers.items() if r.connected and r.left is None}
        kin = sum(r.last.kbps_received for r in live.values() if r.last)
        kout = sum(r.last.kbps_sent for r in live.values() if r.last)
        chosen = [live[focus]] if focus in live else list(live.values())
        rtts = [r.last.rtt_ms for r in chosen if r.last]
        losses = [r.last.loss for r in chosen if r.last]
        rtt = f"{max(rtts):.1f}" if rtts else "-"
        loss = f"{max(losses) * 100:.1f}" if losses else "-"
        count = f"{len(live)}" if want_peers is None else f"{len(live)}/{want_peers}"
        return (
            f"[{elapsed:6.1f}s] peers {count}  {'host ' if focus in live else ''}rtt {rtt} ms  "
            f"loss {loss} %  in {kin:.1f} kbps  out {kout:.1f} kbps"
        )

    def as_json(self) -> dict[str, Any]:
        return {pid: rec.as_json() for pid, rec in sorted(self.peers.items())}


def movement_json(moved: Mapping[str, float]) -> dict[str, float]:
    """Distance each remote entity travelled, rounded for readability."""
    return {pid: round(d, 1) for pid, d in sorted(moved.items())}


# At most this many lifecycle entries are kept (a peer flapping all match long
# must not grow the stats file without bound); later ones are counted only.
MAX_TIMELINE = 200


class Timeline:
    """Lifecycle moments (reconnects, host changes, first snapshot/input after them)
    in wall-clock seconds, so times can be compared across processes on one machine."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self.entries: list[dict[str, Any]] = []
        self.dropped = 0

    def log(self, event: str, peer: str, **extra: Any) -> None:
        if len(self.entries) >= MAX_TIMELINE:
            self.dropped += 1
            return
        self.entries.append({"t": round(self._clock(), 3), "event": event, "peer": peer, **extra})

    def as_json(self) -> list[dict[str, Any]]:
        return list(self.entries)
