"""Per-peer receive budgets: token buckets that keep one abusive peer's cost to itself.

PURE: no I/O; time is passed in (seconds, any monotonic clock). The link checks
every received packet against its peer's budget *before* decoding it, so a
packet over budget costs one length check and two subtractions, whatever its
content (work per packet proportional to nothing but a constant).

Three outcomes per packet (:class:`Verdict`):

* ``ACCEPT``: within budget, decode it.
* ``DROP``: over budget on the unreliable state channel: dropped and counted.
  Losing state is what that channel is for; an honest peer never gets here
  (the defaults have ample headroom over 60 Hz state plus heartbeats).
* ``ABUSE``: disconnect the peer. Either a reliable channel went over budget
  (a reliable message cannot be dropped without breaking the channel's
  promise, so the flood ends the link) or the state channel stayed over
  budget for ``abuse_after_s``.

docs/PROTOCOL.md section 2.5 lists the defaults and what exceeding them does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..config import PeerBudget

__all__ = ["ReceiveBudget", "TokenBucket", "Verdict"]

# Drops at most this far apart count as one continuous overrun.
_OVERRUN_GAP_S: Final = 1.0


class Verdict(Enum):
    ACCEPT = "accept"
    DROP = "drop"
    ABUSE = "abuse"


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full."""

    __slots__ = ("_capacity", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._last = now

    @property
    def tokens(self) -> float:
        """Tokens left at the last :meth:`take` (not refilled to now)."""
        return self._tokens

    def refund(self, cost: float) -> None:
        """Give back tokens taken for something that was refused after all."""
        self._tokens = min(self._capacity, self._tokens + cost)

    def take(self, cost: float, now: float) -> bool:
        """Spend ``cost`` tokens if there are enough; False (nothing spent) otherwise."""
        elapsed = now - self._last
        if elapsed > 0:  # a clock that steps back never refills
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._last = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


@dataclass(slots=True)
class _ChannelBudget:
    msgs: TokenBucket
    bytes: TokenBucket

    def take(self, size: int, now: float) -> bool:
        # Check both before spending either: a refused packet costs the peer nothing.
        if not self.msgs.take(1.0, now):
            return False
        if not self.bytes.take(float(size), now):
            self.msgs.refund(1.0)  # the packet was not accepted
            return False
        return True


class ReceiveBudget:
    """The receive budget of one peer link: one message and one byte bucket per
    channel, a bucket for PONG replies, and the overrun timer.

    ``admit(reliable, label, size, now)`` classifies each received packet.
    """

    __slots__ = (
        "_abuse_after",
        "_bad",
        "_channels",
        "_config",
        "_max_event_bytes",
        "_overrun_last",
        "_overrun_start",
        "_pongs",
        "reason",
    )

    def __init__(self, config: PeerBudget, now: float, *, max_event_bytes: int) -> None:
        self._config = config
        self._channels: dict[str, _ChannelBudget] = {}
        self._pongs = TokenBucket(
            config.pings_answered_per_s, max(1.0, config.pings_answered_per_s * config.burst_s), now
        )
        self._bad = TokenBucket(config.bad_messages_per_s, float(config.bad_messages_burst), now)
        self._abuse_after = config.abuse_after_s
        self._overrun_start: float | None = None
        self._overrun_last = float("-inf")
        # Why the last ABUSE verdict was given (for the PeerLost detail and the log).
        self.reason = ""
        self._max_event_bytes = max_event_bytes

    def _channel(self, label: str, reliable: bool, now: float) -> _ChannelBudget:
        budget = self._channels.get(label)
        if budget is None:
            c = self._config
            msg_rate = c.event_msgs_per_s if reliable else c.state_msgs_per_s
            byte_rate = c.event_bytes_per_s if reliable else c.state_bytes_per_s
            byte_cap = byte_rate * c.burst_s
            if reliable:  # one whole max-size event (plus a packet) always fits the burst
                byte_cap = max(byte_cap, self._max_event_bytes + 65_536.0)
            budget = _ChannelBudget(
                TokenBucket(msg_rate, max(1.0, msg_rate * c.burst_s), now),
                TokenBucket(byte_rate, byte_cap, now),
            )
            self._channels[label] = budget
        return budget

    def admit(self, label: str, size: int, now: float, *, reliable: bool) -> Verdict:
        """Classify one received packet of ``size`` bytes on channel ``label``."""
        if self._channel(label, reliable, now).take(size, now):
            return Verdict.ACCEPT
        if reliable:
            self.reason = f"reliable channel {label!r} over its receive budget"
            return Verdict.ABUSE
        if self._overrun_start is None or now - self._overrun_last > _OVERRUN_GAP_S:
            self._overrun_start = now  # a new overrun begins
        self._overrun_last = now
        if now - self._overrun_start >= self._abuse_after:
            self.reason = f"channel {label!r} over its receive budget for {self._abuse_after:g} s"
            return Verdict.ABUSE
        return Verdict.DROP

    def allow_bad(self, now: float) -> bool:
        """Count one malformed message; False once the peer sent more than its budget."""
        if self._bad.take(1.0, now):
            return True
        self.reason = "more malformed messages than bad_messages_burst allows"
        return False

    def allow_pong(self, now: float) -> bool:
        """True if a received PING may be answered now (at most ``pings_answered_per_s``)."""
        return self._pongs.take(1.0, now)
