"""Snapshot bytes per tick, full vs delta, and encode/decode time per snapshot.

64 moving entities (position, velocity, angle, hp, kind), each changing with
probability 0.25 per tick, sent at 60 Hz through the real pipeline:
``SnapshotSender`` -> ``wire.Snapshot`` envelope -> bytes -> ``wire.parse`` ->
``SnapshotReceiver``, with acks flowing back through ``ReliabilityEndpoint``
after a simulated RTT, optionally with loss. Bytes are whole data-channel
messages (envelope + header + payload). Pure CPU, no sockets: the numbers are
deterministic for a seed except the timings.

    python -m benchmarks.snapshots [--quick]

prints a table and writes ``benchmarks/results/snapshots.json``. The latency
benchmark embeds ``run(quick)``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._common import percentile
from netcode.config import Limits
from netcode.protocol import wire
from netcode.protocol.reliability import PacketHeader, ReliabilityEndpoint
from netcode.protocol.snapshot import SnapshotReceiver, SnapshotSender

__all__ = ["Scenario", "main", "run"]

ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 60
ENTITIES = 64
CHANGE_PROBABILITY = 0.25
QUANTIZE = {"x": 0.01, "y": 0.01, "vx": 0.01, "vy": 0.01, "angle": 0.001}
MAX_PACKET = Limits().max_state_bytes  # 1160 B: one SCTP chunk on a 1200-byte path MTU
GOAL_RATIO = 0.20


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    label: str
    quantize: bool
    loss: float = 0.0
    rtt_ticks: int = 3


SCENARIOS = (
    Scenario("lan", "quantized, clean, RTT 17 ms", quantize=True, rtt_ticks=1),
    Scenario("quantized", "quantized, clean, RTT 50 ms", quantize=True),
    Scenario("raw_floats", "raw float64, clean, RTT 50 ms", quantize=False),
    Scenario("quantized_loss5", "quantized, 5% loss, RTT 100 ms", True, loss=0.05, rtt_ticks=6),
)


class World:
    """Deterministic moving entities; about CHANGE_PROBABILITY of them move each tick."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.entities: dict[int, dict[str, Any]] = {
            i: {
                "x": rng.uniform(0, 2000),
                "y": rng.uniform(0, 2000),
                "vx": rng.uniform(-200, 200),
                "vy": rng.uniform(-200, 200),
                "angle": rng.uniform(-math.pi, math.pi),
                "hp": 100,
                "kind": rng.choice(["ship", "rock", "bullet"]),
            }
            for i in range(ENTITIES)
        }

    def step(self) -> None:
        dt = 1 / RATE_HZ
        for e in self.entities.values():
            if self.rng.random() >= CHANGE_PROBABILITY:
                continue
            e["x"] += e["vx"] * dt
            e["y"] += e["vy"] * dt
            e["angle"] = (e["angle"] + 2.0 * dt) % (2 * math.pi)
            if self.rng.random() < 0.1:
                e["vx"] = self.rng.uniform(-200, 200)
                e["vy"] = self.rng.uniform(-200, 200)
            if self.rng.random() < 0.02:
                e["hp"] = max(0, e["hp"] - 10)


def _packet(payload: Any, seq: int) -> bytes:
    return wire.serialize(wire.Snapshot(seq, 0, 0, 0, payload), Limits(max_packet_bytes=1 << 20))


def simulate(sc: Scenario, ticks: int, seed: int = 1) -> dict[str, Any]:
    """One scenario: bytes of what was sent vs a full snapshot every tick, and timings."""
    rng = random.Random(seed)
    world = World(rng)
    q = QUANTIZE if sc.quantize else None
    tx, rx = SnapshotSender(quantize=q), SnapshotReceiver(quantize=q)
    tx_ep, rx_ep = ReliabilityEndpoint(), ReliabilityEndpoint()
    acks: list[tuple[int, PacketHeader]] = []  # (deliver at tick, header of the reply)
    full_bytes: list[int] = []
    sent_bytes: list[int] = []
    delta_bytes: list[int] = []  # the delta packets only
    delta_entities: list[int] = []  # entities listed in each delta (changed since baseline)
    enc_us: list[float] = []  # whole pipeline: codec + header + wire envelope
    dec_us: list[float] = []
    codec_us: dict[str, list[float]] = {"encode": [], "decode": []}  # snapshot.py alone
    for tick in range(ticks):
        now = tick / RATE_HZ
        world.step()
        t0 = time.perf_counter()
        seq = tx_ep.next_seq
        payload = tx.encode(seq, world.entities)
        codec_us["encode"].append((time.perf_counter() - t0) * 1e6)
        hdr = tx_ep.next_header(now)
        data = wire.serialize(wire.Snapshot(hdr.seq, hdr.ack, hdr.ack_bits, 0, payload))
        enc_us.append((time.perf_counter() - t0) * 1e6)
        sent_bytes.append(len(data))
        if "b" in payload:
            delta_bytes.append(len(data))
            delta_entities.append(len(payload["e"]))
        full = SnapshotSender(quantize=q).encode(seq, world.entities)  # nothing acked: full
        full_bytes.append(len(_packet(full, hdr.seq)))
        if rng.random() >= sc.loss:
            t0 = time.perf_counter()
            msg = wire.parse(data, Limits(max_packet_bytes=1 << 20))
            assert isinstance(msg, wire.Snapshot)
            if rx_ep.receive(PacketHeader(msg.seq, msg.ack, msg.ack_bits), now):
                t1 = time.perf_counter()
                rx.decode(msg.seq, msg.payload)
                codec_us["decode"].append((time.perf_counter() - t1) * 1e6)
            dec_us.append((time.perf_counter() - t0) * 1e6)
        back = rx_ep.next_header(now)
        if rng.random() >= sc.loss:
            acks.append((tick + sc.rtt_ticks, back))
        while acks and acks[0][0] <= tick:
            tx_ep.receive(acks.pop(0)[1], now)
            for s in tx_ep.take_acked():
                tx.on_ack(s)
    summary = _summary(sc, full_bytes, sent_bytes, enc_us, dec_us, tx)
    summary.update(_delta_summary(delta_bytes, delta_entities, statistics.fmean(full_bytes)))
    for what, samples in codec_us.items():
        summary[f"codec_{what}_us_mean"] = round(statistics.fmean(samples), 1) if samples else None
    if delta_bytes:
        summary["goals"][f"every delta packet <= {MAX_PACKET} B"] = max(delta_bytes) <= MAX_PACKET
    return summary


def _delta_summary(sizes: list[int], entities: list[int], full_mean: float) -> dict[str, Any]:
    if not sizes:
        return {"delta_bytes_mean": None, "delta_bytes_max": None}
    return {
        "delta_bytes_mean": round(statistics.fmean(sizes), 1),
        "delta_bytes_p99": percentile([float(b) for b in sizes], 99),
        "delta_bytes_max": max(sizes),
        "delta_only_over_full": round(statistics.fmean(sizes) / full_mean, 4),
        "entities_per_delta_mean": round(statistics.fmean(entities), 1),
    }


def _summary(
    sc: Scenario,
    full: list[int],
    sent: list[int],
    enc_us: list[float],
    dec_us: list[float],
    tx: SnapshotSender,
) -> dict[str, Any]:
    ratio = statistics.fmean(sent) / statistics.fmean(full)
    return {
        "label": sc.label,
        "ticks": len(sent),
        "entities": ENTITIES,
        "change_probability": CHANGE_PROBABILITY,
        "loss": sc.loss,
        "rtt_ms": round(sc.rtt_ticks * 1000 / RATE_HZ, 1),
        "quantize": QUANTIZE if sc.quantize else None,
        "full_bytes_mean": round(statistics.fmean(full), 1),
        "full_bytes_max": max(full),
        "sent_bytes_mean": round(statistics.fmean(sent), 1),
        "sent_bytes_max": max(sent),
        "delta_over_full": round(ratio, 4),
        "full_snapshots_sent": tx.full_count,
        "delta_snapshots_sent": tx.delta_count,
        "packets_over_limit": sum(b > MAX_PACKET for b in sent),
        "kbps_sent": round(statistics.fmean(sent) * 8 * RATE_HZ / 1000, 1),
        "kbps_full": round(statistics.fmean(full) * 8 * RATE_HZ / 1000, 1),
        "encode_us_mean": round(statistics.fmean(enc_us), 1),
        "encode_us_p99": round(percentile(enc_us, 99), 1),
        "decode_us_mean": round(statistics.fmean(dec_us), 1) if dec_us else None,
        "decode_us_p99": round(percentile(dec_us, 99), 1) if dec_us else None,
        "goals": {
            f"sent bytes <= {GOAL_RATIO:.0%} of full bytes": ratio <= GOAL_RATIO,
            f"every packet <= {MAX_PACKET} B": max(sent) <= MAX_PACKET,
        },
    }


def run(quick: bool) -> dict[str, Any]:
    """All scenarios; ``quick`` runs 300 ticks each (5 s of game) instead of 3600."""
    ticks = 300 if quick else 3600
    return {
        "schema": 1,
        "quick": quick,
        "rate_hz": RATE_HZ,
        "max_packet_bytes": MAX_PACKET,
        "scenarios": {sc.key: simulate(sc, ticks) for sc in SCENARIOS},
    }


def table(doc: dict[str, Any]) -> Table:
    t = Table(
        title=f"snapshots: {ENTITIES} entities, ~25% changing per tick, {RATE_HZ} Hz",
        caption="bytes: whole data-channel messages; enc/dec µs: codec + header + envelope",
    )
    columns = ("scenario", "full B", "sent B mean", "sent/full", "delta B mean", "delta B max")
    timing = ("enc µs", "dec µs", "codec enc", "codec dec")
    for col in (*columns, "ents/delta", "fulls", "max B", *timing):
        t.add_column(col, justify="right")
    for key, r in doc["scenarios"].items():
        t.add_row(
            key,
            f"{r['full_bytes_mean']:.0f}",
            f"{r['sent_bytes_mean']:.0f}",
            f"{r['delta_over_full']:.1%}",
            _fmt(r["delta_bytes_mean"]),
            _fmt(r["delta_bytes_max"]),
            _fmt(r.get("entities_per_delta_mean")),
            str(r["full_snapshots_sent"]),
            str(r["sent_bytes_max"]),
            _fmt(r["encode_us_mean"]),
            _fmt(r["decode_us_mean"]),
            _fmt(r["codec_encode_us_mean"]),
            _fmt(r["codec_decode_us_mean"]),
        )
    return t


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.snapshots", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 ticks per scenario")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    doc = run(args.quick)
    console = Console(width=max(100, Console().width))
    console.print(table(doc))
    for key, r in doc["scenarios"].items():
        console.print(f"  {key}: {r['label']}")
    for r in doc["scenarios"].values():
        for goal, met in r["goals"].items():
            console.print(f"{'[green]met[/]' if met else '[red]NOT met[/]'} {r['label']}: {goal}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "snapshots.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
