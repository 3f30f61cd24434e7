"""Rendering of benchmark results: rich table, JSON file, latency CDF plot, goals."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks._common import CONDITIONS, KERNEL_WS, RATE_HZ, TRANSPORTS, Transport

__all__ = ["evaluate_goals", "markdown_table", "plot_cdf", "results_table", "write_json"]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _row(m: Mapping[str, Any]) -> list[str]:
    rtt, age, cpu = m["rtt_ms"], m["age_ms"], m["cpu_ms_per_1000"]
    return [
        _fmt(rtt["p50"]), _fmt(rtt["p95"]), _fmt(rtt["p99"]), _fmt(rtt["max"]),
        _fmt(m["delivery_pct"], 1), _fmt(age["p50"], 1), _fmt(age["p99"], 1),
        _fmt(cpu.get("sender_net", cpu["sender"]), 0),
        _fmt(cpu.get("receiver_net", cpu["receiver"]), 0),
        _fmt(m["wire_bytes_per_msg"], 0),
    ]  # fmt: skip


COLUMNS = [
    "RTT p50", "p95", "p99", "max", "deliv %", "age p50", "age p99",
    "CPU snd", "CPU rcv", "B/msg",  # CPU: ms per 1000 messages, idle subtracted
]  # fmt: skip


def _present(results: Mapping[str, Any]) -> list[Transport]:
    """The standard paths, plus the optional kernel-loss one when it ran."""
    return [*TRANSPORTS, *([KERNEL_WS] if KERNEL_WS.key in results else [])]


def _rows(results: Mapping[str, Any], size: int) -> list[tuple[str, str, list[str]]]:
    rows = []
    for t in _present(results):
        for c in CONDITIONS:
            cell = results.get(t.key, {}).get(c.key, {}).get(str(size))
            label = c.label + ("" if t.loss_applied or c.loss == 0 else " (no loss: TCP)")
            values = _row(cell) if cell else ["-"] * len(COLUMNS)
            rows.append((t.label, label, values))
    return rows


def results_table(results: Mapping[str, Any], size: int, title: str) -> Table:
    table = Table(title=title, header_style="bold")
    table.add_column("transport")
    table.add_column("condition")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    last = ""
    for transport, cond, values in _rows(results, size):
        table.add_row(transport if transport != last else "", cond, *values)
        last = transport
    return table


def markdown_table(results: Mapping[str, Any], size: int) -> str:
    head = ["transport", "condition", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for transport, cond, values in _rows(results, size):
        lines.append("| " + " | ".join([transport, cond, *values]) + " |")
    return "\n".join(lines)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def plot_cdf(path: Path, samples: Mapping[str, Mapping[str, Sequence[float]]], size: int) -> None:
    """RTT CDF, one panel per condition, one line per transport (``size`` bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(2, 3, figsize=(15, 8), sharey=True)
    for ax, cond in zip(axes.flat, CONDITIONS, strict=False):
        for t in _present(samples):
            values = sorted(samples.get(t.key, {}).get(cond.key, []))
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=t.label)
        ax.set_xscale("log")
        # 1-2-5 ticks: a panel spanning 30-90 ms has no power of ten to label.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{cond.label} ({size} B, {RATE_HZ} Hz)")
        ax.set_xlabel("echo RTT (ms, log)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of echoed messages")
    axes.flat[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _cell(results: Mapping[str, Any], t: str, c: str, size: int = 100) -> Mapping[str, Any]:
    cell: Mapping[str, Any] = results.get(t, {}).get(c, {}).get(str(size)) or {}
    return cell


def _get(cell: Mapping[str, Any], group: str, key: str) -> float | None:
    value = (cell.get(group) or {}).get(key)
    return float(value) if value is not None else None


def _goal(name: str, measured: float | None, target: float | None, detail: str) -> dict[str, Any]:
    ok = measured is not None and target is not None and measured <= target
    return {
        "goal": name,
        "measured": None if measured is None else round(measured, 2),
        "target": None if target is None else round(target, 2),
        "met": ok,
        "detail": detail,
    }


def evaluate_goals(
    results: Mapping[str, Any], connect: Mapping[str, Any], ab: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The issue's goals, measured values against targets. Reported, never tuned for."""
    goals = []
    nc = _get(_cell(results, "netcode_state", "clean"), "rtt_ms", "p50")
    bare = _get(_cell(results, "aiortc_unordered", "clean"), "rtt_ms", "p50")
    detail = f"sequential rows: netcode {nc} ms, bare aiortc {bare} ms"
    if ab and ab.get("p50_ratio") is not None:
        nc = _get(ab["netcode_state"], "rtt_ms", "p50")
        bare = _get(ab["aiortc_unordered"], "rtt_ms", "p50")
        detail = f"interleaved A/B: bare aiortc p50 {bare} ms; " + detail
    goals.append(
        _goal(
            "netcode state RTT p50 <= 1.10 x bare aiortc (clean, 100 B)",
            nc, None if bare is None else 1.10 * bare, detail,
        )
    )  # fmt: skip
    combo = "loss5_delay20"
    age = _get(_cell(results, "netcode_state", combo), "age_ms", "p99")
    bound = 20.0 + 1000.0 / RATE_HZ + 5.0
    goals.append(
        _goal(
            "netcode state age p99 <= 20 ms one-way + 1 tick + 5 ms (5% + 20±5 ms)",
            age, bound, "age = now - send time of newest state held, sampled each frame",
        )
    )  # fmt: skip
    ws = (
        (KERNEL_WS.key, "websocket relay with real TCP packet loss (nftables, --kernel-loss)")
        if KERNEL_WS.key in results
        else ("websocket_relay", "websocket relay: delay only, TCP loss not applied in-process")
    )
    for other, note in (
        ("netcode_reliable", "reliable SCTP channel under the same datagram loss"),
        ws,
    ):
        theirs = _get(_cell(results, other, combo), "age_ms", "p99")
        goals.append(
            _goal(
                f"netcode state age p99 x 5 <= {other} age p99 (5% + 20±5 ms)",
                None if age is None else 5.0 * age, theirs, note,
            )
        )  # fmt: skip
    for n, target in (("2", 60.0), ("8", 400.0)):
        median = (connect.get(n) or {}).get("median_ms")
        goals.append(_goal(f"{n}-peer connect median <= {target:.0f} ms", median, target, ""))
    return goals
