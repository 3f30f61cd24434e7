"""Host-scale results: medians and ranges, fitted lines, tables and the plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._common import markdown_rows

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
MARGINAL_FROM = 4  # the second fit uses N >= this (see summarize_cells)
MODES = ("netcode", "bare")
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


def _fit(cells: Sequence[Mapping[str, Any]], rate: int, min_n: int = 1) -> dict[str, Any] | None:
    used = [c for c in cells if kept_up(c) and c["n"] >= min_n]
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
    }


def summarize_cells(
    cells: Sequence[Mapping[str, Any]], rates: Sequence[int], ns: Sequence[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per rate and N: each design's median/range, and the netcode/bare ratios; fits.

    Two fits per design: over every N that kept up, and over N >= MARGINAL_FROM
    only. Host CPU is concave in N (one or two clients pay an event-loop wakeup
    per packet; from about four on, packets share wakeups), so the second one
    is the cost of one more client, the figure to extrapolate to 0.9 core with.
    """
    summary: dict[str, Any] = {}
    fits: dict[str, Any] = {}
    for rate in rates:
        by_n: dict[str, Any] = {}
        for n in ns:
            row = {
                mode: _spreads(
                    [c for c in cells if (c["rate"], c["n"], c["mode"]) == (rate, n, mode)]
                )
                for mode in MODES
            }
            by_n[str(n)] = {**row, "ratio": _ratios(row)}
        summary[str(rate)] = by_n
        fits[str(rate)] = {
            mode: {
                "all": _fit(mine, rate),
                f"n_from_{MARGINAL_FROM}": _fit(mine, rate, MARGINAL_FROM),
            }
            for mode in MODES
            for mine in [[c for c in cells if (c["rate"], c["mode"]) == (rate, mode)]]
        }
    return summary, fits


def _spreads(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    if not cells:
        return None
    flat = [_flat(c) for c in cells]
    good = [c for c in cells if kept_up(c)]
    return {
        **{m: spread(f[m] for f in flat) for m in METRICS},
        "repeats": len(cells),
        "kept_up": len(good),
        "kept_up_us_per_client_tick": spread(c["us_per_client_tick"] for c in good),
        "kept_up_host_cpu": spread(c["host_cpu"] for c in good),
    }


def _ratios(row: Mapping[str, Any]) -> dict[str, float | None]:
    """netcode / bare, medians over the repeats that kept up (None unless both did)."""
    out: dict[str, float | None] = {}
    for metric in ("host_cpu", "us_per_client_tick"):
        nc = (row.get("netcode") or {}).get(f"kept_up_{metric}")
        bare = (row.get("bare") or {}).get(f"kept_up_{metric}")
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
    "age p50 ms", "age p99 ms", "loss %", "client CPU", "kept up", "× bare",
]  # fmt: skip


def _rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for rate, by_n in doc["summary"].items():
        for n, row in by_n.items():
            for mode in MODES:
                s = row.get(mode)
                ratio = row["ratio"]["us_per_client_tick"] if mode == "netcode" else None
                if s is None:
                    cap = (doc.get("capped") or {}).get(mode)
                    why = f"capped at N={cap['n']}" if cap and int(n) >= cap["n"] else "no data"
                    rows.append([rate, n, mode, why, *(["-"] * 8)])
                    continue
                rows.append([
                    rate, n, mode, _range(s["host_cpu"], 3), _range(s["us_per_client_tick"], 0),
                    _med(s["overruns"], 0), _med(s["age_p50"], 1), _med(s["age_p99"], 1),
                    _med(s["loss_pct"], 1), _med(s["client_cpu"], 2),
                    f"{s['kept_up']}/{s['repeats']}", "-" if ratio is None else f"{ratio:.2f}",
                ])  # fmt: skip
    return rows


def _fit_text(fit: Mapping[str, Any] | None) -> str:
    if fit is None:
        return "no fit (fewer than two N kept up)"
    return (
        f"{fit['intercept_cores']:.4f} + {fit['slope_cores_per_client']:.5f} × N cores "
        f"= {fit['slope_us_per_client_tick']:.0f} µs per client per tick, "
        f"0.9 core at N ≈ {fit['n_at_0.9_core']} (N = {', '.join(map(str, fit['ns_used']))})"
    )


def _fit_lines(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for rate, by_mode in doc["fits"].items():
        for mode, fits in by_mode.items():
            for which, fit in fits.items():
                label = "every N that kept up" if which == "all" else f"N >= {MARGINAL_FROM}"
                out.append(f"{rate} Hz {mode}, {label}: {_fit_text(fit)}")
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
    notes = [*_fit_lines(doc), *_notes(doc)]
    return "\n".join([markdown_rows(COLUMNS, _rows(doc)), "", *(f"* {line}" for line in notes)])


def _panel(ax: Any, doc: Mapping[str, Any], rate: str) -> float:
    """One rate: medians with range bars (hollow: no repeat kept up), both fits."""
    top = 0.0
    for mode, color in (("netcode", "tab:blue"), ("bare", "tab:orange")):
        pts = [(int(n), row[mode]) for n, row in doc["summary"][rate].items() if row.get(mode)]
        for ok in (True, False):
            mine = [(n, s) for n, s in pts if (s["kept_up"] > 0) == ok]
            if not mine:
                continue
            cpu = [s["host_cpu"] for _, s in mine]
            err = [[c["median"] - c["min"] for c in cpu], [c["max"] - c["median"] for c in cpu]]
            label = f"{mode} (median, range)" if ok else f"{mode}: overloaded, not fitted"
            ax.errorbar(
                [n for n, _ in mine], [c["median"] for c in cpu], yerr=err, fmt="o", capsize=3,
                color=color, mfc=color if ok else "white", label=label,
            )  # fmt: skip
            top = max(top, *(c["max"] for c in cpu))
        xmax = max((n for n, _ in pts), default=1)
        for fit, style in zip(doc["fits"][rate][mode].values(), ("--", ":"), strict=True):
            if fit is None:
                continue
            end = max(xmax, min(fit["n_at_0.9_core"] or 0, 2.5 * xmax))
            a, b = fit["intercept_cores"], fit["slope_cores_per_client"]
            label = f"{mode} fit N={fit['ns_used'][0]}..{fit['ns_used'][-1]}: "
            label += f"{fit['slope_us_per_client_tick']:.0f} µs/client/tick"
            ax.plot([0, end], [a, a + b * end], style, color=color, label=label)
    return top


def plot(path: Path, doc: Mapping[str, Any]) -> None:
    """Host CPU against N, one panel per rate: medians with range bars, fitted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = list(doc["summary"])
    fig, axes = plt.subplots(1, len(rates), figsize=(7 * len(rates), 5.2), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        top = _panel(ax, doc, rate)
        ax.axhline(CORE_LIMIT, color="grey", lw=0.8, ls="-.", label="0.9 core")
        ax.set_xlabel("clients N")
        ax.set_ylabel("host CPU (cores = CPU-s per wall s)")
        ax.set_title(f"host ticking at {rate} Hz")
        ax.set_ylim(0, max(1.0, top * 1.1))
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
