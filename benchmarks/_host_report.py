"""Host-scale results: medians and ranges, fitted lines, tables and the plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = [
    "CORE_LIMIT",
    "fit_line",
    "kept_up",
    "markdown_tables",
    "plot",
    "print_tables",
    "spread",
    "summarize_cells",
]

CORE_LIMIT = 0.9  # "the host reaches 0.9 core": the N the fitted line crosses it
METRICS = (
    "host_cpu",
    "us_per_client_tick",
    "overruns",
    "age_p50",
    "age_p99",
    "loss_pct",
    "client_cpu",
)


def spread(values: Iterable[float | None]) -> dict[str, float] | None:
    """Median and range of the repeats (None where nothing was measured)."""
    vs = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not vs:
        return None
    return {
        "median": round(statistics.median(vs), 4),
        "min": round(min(vs), 4),
        "max": round(max(vs), 4),
    }


def _flat(cell: Mapping[str, Any]) -> dict[str, float | None]:
    return {
        "host_cpu": cell["host_cpu"],
        "us_per_client_tick": cell["us_per_client_tick"],
        "overruns": cell["overruns"],
        "age_p50": cell["age_ms"]["p50"],
        "age_p99": cell["age_ms"]["p99"],
        "loss_pct": cell["loss_pct"],
        "client_cpu": sum(cell["client_cpu"]),
    }


def kept_up(cell: Mapping[str, Any]) -> bool:
    """Host and clients kept up: the host's CPU is what the design costs, not a ceiling.

    A host near one core, ticks starting late, client processes too busy to
    tick on time or snapshots lost (the host then sends, or gets, less than
    the design does) all make the cell a measure of the overload instead.
    """
    return bool(
        cell["host_cpu"] < 0.95
        and cell["overruns"] <= 0.05 * max(1, cell["ticks"])
        and cell["client_overruns"] <= 0.05 * max(1, cell["client_ticks"])
        and cell["loss_pct"] <= 5.0
    )


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares ``y = a + b x``; None without two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def _fit(cells: Sequence[Mapping[str, Any]], rate: int) -> dict[str, Any] | None:
    used = [c for c in cells if kept_up(c)]
    line = fit_line([(c["n"], c["host_cpu"]) for c in used])
    if line is None:
        return None
    a, b = line
    return {
        "intercept_cores": round(a, 5),
        "slope_cores_per_client": round(b, 6),
        "slope_us_per_client_tick": round(b / rate * 1e6, 1),
        "n_at_0.9_core": round((CORE_LIMIT - a) / b, 1) if b > 0 else None,
        "ns_used": sorted({c["n"] for c in used}),
        "cells_used": len(used),
        "cells_left_out": len(cells) - len(used),
    }


def summarize_cells(
    cells: Sequence[Mapping[str, Any]], rates: Sequence[int], ns: Sequence[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per rate and N: each design's median/range, and the netcode/bare ratios; fits."""
    summary: dict[str, Any] = {}
    fits: dict[str, Any] = {}
    for rate in rates:
        by_n: dict[str, Any] = {}
        for n in ns:
            row: dict[str, Any] = {}
            for mode in ("netcode", "bare"):
                mine = [
                    _flat(c) for c in cells if (c["rate"], c["n"], c["mode"]) == (rate, n, mode)
                ]
                row[mode] = (
                    {**{m: spread(c[m] for c in mine) for m in METRICS}, "repeats": len(mine)}
                    if mine
                    else None
                )
            row["ratio"] = _ratios(row)
            by_n[str(n)] = row
        summary[str(rate)] = by_n
        fits[str(rate)] = {
            mode: _fit([c for c in cells if c["rate"] == rate and c["mode"] == mode], rate)
            for mode in ("netcode", "bare")
        }
    return summary, fits


def _ratios(row: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric in ("host_cpu", "us_per_client_tick"):
        nc = (row.get("netcode") or {}).get(metric)
        bare = (row.get("bare") or {}).get(metric)
        if nc is None or bare is None or bare["median"] <= 0:
            out[metric] = None
        else:
            out[metric] = round(nc["median"] / bare["median"], 2)
    return out


# --------------------------------------------------------------------------- rendering


def _range(s: Mapping[str, float] | None, digits: int) -> str:
    if s is None:
        return "-"
    med, lo, hi = (f"{s[k]:.{digits}f}" for k in ("median", "min", "max"))
    return med if lo == hi else f"{med} ({lo}-{hi})"


def _med(s: Mapping[str, float] | None, digits: int) -> str:
    return "-" if s is None else f"{s['median']:.{digits}f}"


COLUMNS = [
    "Hz", "N", "design", "host CPU (cores)", "µs/client/tick", "overruns",
    "age p50 ms", "age p99 ms", "loss %", "client CPU", "× bare",
]  # fmt: skip


def _rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for rate, by_n in doc["summary"].items():
        for n, row in by_n.items():
            for mode in ("netcode", "bare"):
                s = row.get(mode)
                ratio = row["ratio"]["us_per_client_tick"] if mode == "netcode" else None
                if s is None:
                    cap = (doc.get("capped") or {}).get(mode)
                    why = f"capped at N={cap['n']}" if cap and int(n) >= cap["n"] else "no data"
                    rows.append([rate, n, mode, why, *(["-"] * 7)])
                    continue
                rows.append([
                    rate, n, mode, _range(s["host_cpu"], 3), _range(s["us_per_client_tick"], 0),
                    _med(s["overruns"], 0), _med(s["age_p50"], 1), _med(s["age_p99"], 1),
                    _med(s["loss_pct"], 1), _med(s["client_cpu"], 2),
                    "-" if ratio is None else f"{ratio:.2f}",
                ])  # fmt: skip
    return rows


def _fit_lines(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for rate, by_mode in doc["fits"].items():
        for mode, fit in by_mode.items():
            if fit is None:
                out.append(f"{rate} Hz {mode}: no fit (fewer than two N kept up)")
                continue
            out.append(
                f"{rate} Hz {mode}: host CPU = {fit['intercept_cores']:.4f} + "
                f"{fit['slope_cores_per_client']:.5f} × N cores "
                f"({fit['slope_us_per_client_tick']:.0f} µs per client per tick); "
                f"0.9 core at N ≈ {fit['n_at_0.9_core']} (fitted on N = {fit['ns_used']})"
            )
    return out


def _notes(doc: Mapping[str, Any]) -> list[str]:
    """Caps, and where the host's time went when profiled."""
    out = [
        f"{mode} capped at N={cap['n']}: {cap['why']}"
        for mode, cap in (doc.get("capped") or {}).items()
    ]
    for mode, cell in (doc.get("profile") or {}).items():
        prof = cell.get("profile") if cell else None
        if not prof:
            continue
        shares = ", ".join(f"{k} {100 * v:.0f} %" for k, v in prof["shares"].items() if v >= 0.02)
        out.append(f"profile {mode} (N={cell['n']}, {cell['rate']} Hz, host CPU time): {shares}")
    return out


def print_tables(console: Console, doc: Mapping[str, Any]) -> None:
    table = Table(title="Host scale: host CPU per N clients (median (range) of repeats)")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "design" else "right")
    last = ("", "")
    for row in _rows(doc):
        key = (row[0], row[1])
        table.add_row(*(row if key != last else ["", "", *row[2:]]))
        last = key
    console.print(table)
    for line in [*_fit_lines(doc), *_notes(doc)]:
        console.print(line, highlight=False)
    if doc["errors"]:
        console.print("[red]errors:[/]", doc["errors"])


def markdown_tables(doc: Mapping[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(doc)]
    notes = [*_fit_lines(doc), *_notes(doc)]
    return "\n".join([*lines, "", *(f"* {line}" for line in notes)])


def plot(path: Path, doc: Mapping[str, Any]) -> None:
    """Host CPU against N, one panel per rate: medians with range bars, fitted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = list(doc["summary"])
    fig, axes = plt.subplots(1, len(rates), figsize=(6.5 * len(rates), 4.8), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        top = 0.0
        for mode, color in (("netcode", "tab:blue"), ("bare", "tab:orange")):
            pts = [
                (int(n), row[mode]["host_cpu"])
                for n, row in doc["summary"][rate].items()
                if row.get(mode) and row[mode]["host_cpu"]
            ]
            if not pts:
                continue
            xs = [n for n, _ in pts]
            med = [s["median"] for _, s in pts]
            err = [
                [s["median"] - s["min"] for _, s in pts],
                [s["max"] - s["median"] for _, s in pts],
            ]
            ax.errorbar(
                xs, med, yerr=err, fmt="o", color=color, capsize=3, label=f"{mode} (median, range)"
            )
            top = max(top, *med)
            fit = doc["fits"][rate].get(mode)
            if fit is not None:
                xmax = max(max(xs), min(fit["n_at_0.9_core"] or 0, 3 * max(xs)))
                a, b = fit["intercept_cores"], fit["slope_cores_per_client"]
                label = f"{mode} fit: {fit['slope_us_per_client_tick']:.0f} µs/client/tick"
                ax.plot([0, xmax], [a, a + b * xmax], "--", color=color, label=label)
        ax.axhline(0.9, color="grey", lw=0.8, ls=":", label="0.9 core")
        ax.set_xlabel("clients N")
        ax.set_ylabel("host CPU (cores = CPU-s per wall s)")
        ax.set_title(f"host at {rate} Hz")
        ax.set_ylim(0, max(1.05, top * 1.1))
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
