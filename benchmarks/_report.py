"""Rendering of benchmark results: rich table, JSON file, latency CDF plot, goals."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks._common import (
    CONDITIONS,
    KERNEL_WS,
    RATE_HZ,
    TRANSPORTS,
    Transport,
    markdown_rows,
)

__all__ = [
    "ab_table",
    "evaluate_goals",
    "markdown_ab",
    "markdown_redundancy",
    "markdown_table",
    "plot_cdf",
    "redundancy_summary",
    "results_table",
    "write_json",
]

BARE = "aiortc_unordered"
# Receive paths of the A/B and their goals (x bare aiortc's echo RTT p50).
AB_TARGETS = {"netcode_state_handler": 1.05, "netcode_state": 1.15}
AB_LABELS = {
    BARE: "bare aiortc",
    "netcode_state": "netcode state (queue)",
    "netcode_state_handler": "netcode state (handler)",
}
COMBO = "loss5_delay20"  # 5 % loss + 20±5 ms: the condition of the age goals
ONE_TICK_MS = 1000.0 / RATE_HZ
AGE_BOUND_MS = 20.0 + ONE_TICK_MS + 5.0  # one-way + one tick + jitter
X1, X2 = "netcode_state_handler", "netcode_state_x2"  # same receive API, 1 vs 2 copies


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
    rows = ([transport, cond, *values] for transport, cond, values in _rows(results, size))
    return markdown_rows(head, rows)


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


def _ab_goals(results: Mapping[str, Any], ab: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Echo RTT p50 of each netcode receive path over bare aiortc's, from the A/B rounds."""
    goals = []
    ratios = (ab or {}).get("ratio_p50") or {}
    paths = (ab or {}).get("paths") or {}
    bare = _get(paths.get(BARE) or {}, "rtt_ms", "p50")
    for key, target in AB_TARGETS.items():
        name = f"{AB_LABELS[key]} RTT p50 <= {target:.2f} x bare aiortc (clean, 100 B)"
        r = ratios.get(key)
        if r is not None:
            mine = _get(paths.get(key) or {}, "rtt_ms", "p50")
            detail = (
                f"A/B, median of {ab.get('rounds') if ab else '?'} rounds (range "
                f"{r['min']}-{r['max']}); pooled p50 {mine} vs {bare} ms"
            )
            goals.append(_goal(name, r["median"], target, detail))
        elif results:  # no A/B: the sequential rows, minutes apart (load drift)
            nc = _get(_cell(results, key, "clean"), "rtt_ms", "p50")
            seq = _get(_cell(results, BARE, "clean"), "rtt_ms", "p50")
            ratio = None if nc is None or not seq else nc / seq
            goals.append(_goal(name, ratio, target, f"sequential rows: {nc} vs {seq} ms"))
    return goals


def _age_goals(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    goals = []
    age = _get(_cell(results, "netcode_state", COMBO), "age_ms", "p99")
    goals.append(
        _goal(
            "netcode state age p99 <= 20 ms one-way + 1 tick + 5 ms (5% + 20±5 ms)",
            age, AGE_BOUND_MS, "age = now - send time of newest state held, sampled each frame",
        )
    )  # fmt: skip
    x2 = _get(_cell(results, X2, COMBO), "age_ms", "p99")
    if x2 is not None:
        x1 = _get(_cell(results, X1, COMBO), "age_ms", "p99")
        goals.append(
            _goal(
                "netcode state x2 age p99 within 2 ms of one-way + 1 tick + jitter (5% + 20±5 ms)",
                x2, AGE_BOUND_MS + 2.0, f"state_copies=2; one copy (handler row): {x1} ms",
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
        theirs = _get(_cell(results, other, COMBO), "age_ms", "p99")
        goals.append(
            _goal(
                f"netcode state age p99 x 5 <= {other} age p99 (5% + 20±5 ms)",
                None if age is None else 5.0 * age, theirs, note,
            )
        )  # fmt: skip
    return goals


def evaluate_goals(
    results: Mapping[str, Any], connect: Mapping[str, Any], ab: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The issues' goals, measured values against targets. Reported, never tuned for.

    Only the goals the given parts can measure (an ``--ab-only`` run has no
    ``results`` and no ``connect``).
    """
    goals = _ab_goals(results, ab)
    if results:
        goals += _age_goals(results)
    for n, target in (("2", 60.0), ("8", 400.0)) if connect else ():
        median = (connect.get(n) or {}).get("median_ms")
        goals.append(_goal(f"{n}-peer connect median <= {target:.0f} ms", median, target, ""))
    return goals


# --------------------------------------------------------------------------- A/B, redundancy


def _ratio_text(r: Mapping[str, Any] | None) -> str:
    return "-" if not r else f"x{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def _ab_rows(ab: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key, label in AB_LABELS.items():
        cell = (ab.get("paths") or {}).get(key)
        if not cell:
            continue
        rtt = cell["rtt_ms"]
        rows.append([
            label, _fmt(rtt["p50"]), _fmt(rtt["p99"]), str(cell["echoed"]),
            _ratio_text((ab.get("ratio_p50") or {}).get(key)),
            _ratio_text((ab.get("ratio_p99") or {}).get(key)),
        ])  # fmt: skip
    return rows


AB_COLUMNS = ["path", "RTT p50", "p99", "echoed", "p50 / bare", "p99 / bare"]


def ab_table(ab: Mapping[str, Any]) -> Table:
    """Pooled RTT per path; ratios: median over rounds (min-max)."""
    how = "same ticks" if ab.get("interleave") == "tick" else "one path at a time"
    title = f"A/B, clean, {ab.get('rounds')} rounds x {ab.get('messages_per_round')} msgs ({how})"
    table = Table(title=title, header_style="bold")
    for col in AB_COLUMNS:
        table.add_column(col, justify="left" if col == "path" else "right")
    for row in _ab_rows(ab):
        table.add_row(*row)
    return table


def markdown_ab(ab: Mapping[str, Any]) -> str:
    return markdown_rows(AB_COLUMNS, _ab_rows(ab))


def redundancy_summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """state_copies=2 against one copy (both with the handler), per condition and size."""
    out: dict[str, Any] = {}
    for c in CONDITIONS:
        for size in (100, 1000):
            one, two = _cell(results, X1, c.key, size), _cell(results, X2, c.key, size)
            if not one or not two:
                continue
            b1, b2 = one.get("wire_bytes_per_msg"), two.get("wire_bytes_per_msg")
            out.setdefault(c.key, {})[str(size)] = {
                "wire_bytes_per_msg": {"x1": b1, "x2": b2},
                "bytes_ratio": round(b2 / b1, 3) if b1 and b2 else None,
                "age_p99_ms": {"x1": one["age_ms"]["p99"], "x2": two["age_ms"]["p99"]},
                "rtt_p99_ms": {"x1": one["rtt_ms"]["p99"], "x2": two["rtt_ms"]["p99"]},
                "delivery_pct": {"x1": one["delivery_pct"], "x2": two["delivery_pct"]},
                "send_drops": {"x1": one.get("send_drops"), "x2": two.get("send_drops")},
            }
    return out


def markdown_redundancy(summary: Mapping[str, Any], size: int = 100) -> str:
    head = ["condition", "B/msg x1", "B/msg x2", "bytes", "age p99 x1", "age p99 x2",
            "deliv % x1", "deliv % x2"]  # fmt: skip
    rows = []
    for c in CONDITIONS:
        r = (summary.get(c.key) or {}).get(str(size))
        if not r:
            continue
        b, a, d = r["wire_bytes_per_msg"], r["age_p99_ms"], r["delivery_pct"]
        ratio = "-" if r["bytes_ratio"] is None else f"x{r['bytes_ratio']:.2f}"
        cells = [c.label, _fmt(b["x1"], 0), _fmt(b["x2"], 0), ratio, _fmt(a["x1"], 1),
                 _fmt(a["x2"], 1), _fmt(d["x1"], 1), _fmt(d["x2"], 1)]  # fmt: skip
        rows.append(cells)
    return markdown_rows(head, rows)
