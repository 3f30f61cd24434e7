"""Shared pieces of the latency benchmark: payloads, the condition grid, statistics.

Both processes (the sender in ``benchmarks.latency`` and the echo peer in
``benchmarks._peer``) import this module, so payload format and limits are
defined once. Send times are ``time.monotonic()``; on Linux that is
CLOCK_MONOTONIC, shared by every process, so the peer can compute one-way
state age from the sender's timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from netcode.config import NetworkConditions
from netcode.errors import DecodeError

__all__ = [
    "CONDITIONS",
    "KERNEL_WS",
    "MAX_PAYLOAD",
    "RATE_HZ",
    "SIZES",
    "TRANSPORTS",
    "Condition",
    "Transport",
    "decode_payload",
    "encode_payload",
    "make_payload",
    "markdown_rows",
    "percentile",
    "summarize",
]

RATE_HZ = 60
SIZES = (100, 1000)
MAX_PAYLOAD = 4096  # the benchmark never sends more; anything larger is garbage


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    label: str
    loss: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0

    def conditions(self, seed: int) -> NetworkConditions:
        return NetworkConditions(
            loss=self.loss, latency_ms=self.latency_ms, jitter_ms=self.jitter_ms, seed=seed
        )

    @property
    def one_way_max_s(self) -> float:
        return (self.latency_ms + self.jitter_ms) / 1000.0


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "clean"),
    Condition("loss2", "2% loss", loss=0.02),
    Condition("loss5", "5% loss", loss=0.05),
    Condition("loss10", "10% loss", loss=0.10),
    Condition("delay20", "20±5 ms", latency_ms=20.0, jitter_ms=5.0),
    Condition("loss5_delay20", "5% + 20±5 ms", loss=0.05, latency_ms=20.0, jitter_ms=5.0),
)


@dataclass(frozen=True, slots=True)
class Transport:
    key: str
    label: str
    path: str
    impairment: str
    loss_applied: bool = True


TRANSPORTS: tuple[Transport, ...] = (
    Transport(
        "netcode_state",
        "netcode state",
        "netcode.connect + embedded lobby, unordered channel (maxRetransmits=0); both sides "
        "receive through the session's event queue (async for event in session)",
        "conditioner below DTLS/SCTP, outbound on each peer (both directions)",
    ),
    Transport(
        "netcode_state_handler",
        "netcode state (handler)",
        "as netcode state, but both sides receive with session.on_state(fn): the handler "
        "runs in the receive path (the echo is sent from it), no event-queue hop",
        "conditioner below DTLS/SCTP, outbound on each peer (both directions)",
    ),
    Transport(
        "netcode_state_x2",
        "netcode state x2",
        "as netcode state (handler), both sessions with SessionConfig(state_copies=2): "
        "every state packet is sent twice, the receiver keeps the first copy",
        "conditioner below DTLS/SCTP, outbound on each peer (both directions); each copy "
        "is its own datagram, lost independently",
    ),
    Transport(
        "aiortc_unordered",
        "aiortc unordered",
        "bare aiortc RTCPeerConnection, negotiated unordered channel (maxRetransmits=0)",
        "conditioner below DTLS/SCTP on the sender's pc, outbound + inbound",
    ),
    Transport(
        "netcode_reliable",
        "netcode reliable",
        "netcode.connect reliable ordered event channel (send_event)",
        "conditioner below DTLS/SCTP, outbound on each peer (both directions); "
        "SCTP retransmits: the head-of-line-blocking case",
    ),
    Transport(
        "websocket_relay",
        "websocket relay",
        "websockets: A -> server -> B -> server -> A over TCP",
        "delay/jitter at message level on A (both directions); packet loss NOT applicable "
        "in-process for TCP (use the reliable SCTP channel under loss as the HOL case)",
        loss_applied=False,
    ),
    Transport(
        "udp_raw",
        "raw UDP",
        "asyncio UDP echo (the floor)",
        "pure impairment model on every datagram on the sender, both directions",
    ),
)


KERNEL_WS = Transport(
    "websocket_relay_kernel",
    "ws relay, kernel loss",
    "websockets A -> server -> B -> server -> A, A <-> server over a veth pair",
    "nftables drops packets leaving each end of the veth (A <-> server leg, both "
    "directions); delay/jitter at message level on A",
)


def make_payload(seg: int, n: int, t: float, size: int) -> dict[str, Any]:
    """A msgpack-able state message of exactly ``size`` bytes when packed (size >= ~40).

    The padding's bin header grows from 2 to 3 bytes past 255 bytes, so a few
    sizes cannot be hit with padding alone; a 3-byte filler key covers those.
    """
    obj: dict[str, Any] = {}
    for extra in ({}, {"z": None}):
        obj = {"s": seg, "n": n, "t": t, **extra, "p": b""}
        pad = size - len(msgpack.packb(obj))
        for length in (pad, pad - 1):
            obj["p"] = bytes(max(0, length))
            if len(msgpack.packb(obj)) == size:
                return obj
    return obj


def encode_payload(obj: dict[str, Any]) -> bytes:
    return bytes(msgpack.packb(obj))


def decode_payload(data: bytes | Any) -> tuple[int, int, float]:
    """(segment, seq, send time) of a payload, from bytes or an already decoded dict."""
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) > MAX_PAYLOAD:
            raise DecodeError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
        try:
            data = msgpack.unpackb(
                bytes(data),
                raw=False,
                max_bin_len=MAX_PAYLOAD,
                max_str_len=64,
                max_array_len=16,
                max_map_len=16,
                max_ext_len=0,
            )
        except (ValueError, TypeError, msgpack.StackError) as exc:
            raise DecodeError(f"bad payload: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError("payload is not a map")
    seg, n, t = data.get("s"), data.get("n"), data.get("t")
    if not (isinstance(seg, int) and isinstance(n, int) and isinstance(t, float)):
        raise DecodeError("payload lacks s/n/t")
    return seg, n, t


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no samples.

    The one percentile of every benchmark (and the browser RTT test), so their
    tables agree. Sorting already sorted values is linear (Timsort), so callers
    that sorted once pay little for passing them again.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def summarize(values: Sequence[float], qs: Sequence[int] = (50, 95, 99)) -> dict[str, float | None]:
    """p50/p95/p99/max (rounded to 0.01 ms); None when there is no sample."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in qs:
        out[f"p{q}"] = round(percentile(ordered, q), 3) if ordered else None
    out["max"] = round(ordered[-1], 3) if ordered else None
    return out


def markdown_rows(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table: the header, its rule, one line per row."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
