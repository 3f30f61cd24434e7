"""Budgets and small helpers of the lobby core (pure): token buckets, the unit of
the per-address cap, room-code normalisation and wire sizes."""

from __future__ import annotations

import ipaddress
import json

__all__ = ["TokenBucket", "address_key", "frame_size", "json_size", "normalize_room_code"]


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    Pure: time is passed in. Caps messages and bytes per connection, and is the
    error budget (``burst`` refusals, refilling at ``rate``).
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; False means over the limit."""
        elapsed = max(0.0, now - self._last)  # a clock going backwards refills nothing
        self._last = max(self._last, now)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


def normalize_room_code(code: str) -> str:
    """Room codes are case-insensitive and tolerate surrounding blanks."""
    return code.strip().upper()


def address_key(address: str) -> str:
    """The unit of the per-address connection cap: an IPv4 address, an IPv6 /64.

    One IPv6 host usually holds a whole /64, so counting single IPv6 addresses would
    not limit anything. IPv4-mapped IPv6 counts as IPv4; a zone id is ignored. Text
    that is no IP address (a unix socket path...) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def frame_size(data: str | bytes) -> int:
    """Bytes on the wire: text frames are UTF-8."""
    return len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))


def json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
