"""Summary, ratios, table and plot of ``benchmarks.browser``.

Rounds come in as ``benchmarks.browser`` builds them: per path ``connected``,
``connect_ms``, ``peer_connect_ms``, ``sent``, ``echoed``, ``rtt_ms`` and the raw
``_rtts`` (dropped before the JSON is written; the plot and ratios use them).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks._common import RATE_HZ, markdown_rows, summarize
from benchmarks._runner import ab_ratios

__all__ = [
    "LABELS",
    "markdown_table",
    "plot",
    "ratios",
    "results_table",
    "strip_samples",
    "summarize_paths",
]

LABELS = {
    "browser": "browser (Chromium, JS) <-> Python",
    "python": "Python <-> Python (2 processes)",
    "aiortc": "bare aiortc <-> aiortc (no lobby)",
}


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def _cells(rounds: Sequence[Mapping[str, Any]], key: str) -> list[Mapping[str, Any]]:
    return [r["paths"][key] for r in rounds if key in r["paths"]]


def summarize_paths(rounds: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Per path: connect median (min-max) over rounds, echo RTT pooled over rounds."""
    out: dict[str, Any] = {}
    for key in keys:
        cells = _cells(rounds, key)
        ok = [c for c in cells if c["connected"]]
        peer = [c["peer_connect_ms"] for c in ok if c.get("peer_connect_ms") is not None]
        out[key] = {
            "rounds": len(cells),
            "connected": len(ok),
            "connect_ms": _spread([c["connect_ms"] for c in ok]),
            "peer_connect_ms": _spread(peer),
            "sent": sum(c.get("sent", 0) for c in ok),
            "echoed": sum(c.get("echoed", 0) for c in ok),
            "rtt_ms": summarize([x for c in ok for x in c.get("_rtts", [])]),
        }
    return out


def ratios(rounds: Sequence[Mapping[str, Any]], base: str) -> dict[str, Any]:
    """Each path over ``base``, per round, then median (min-max) over rounds."""
    per_round = [
        {k: c["_rtts"] for k, c in r["paths"].items() if c["connected"] and c.get("_rtts")}
        for r in rounds
    ]
    connect: dict[str, list[float]] = {}
    for r in rounds:
        ref = r["paths"].get(base) or {}
        for key, cell in r["paths"].items():
            if key != base and cell["connected"] and ref.get("connected"):
                connect.setdefault(key, []).append(cell["connect_ms"] / ref["connect_ms"])
    return {
        "base": base,
        "rtt_p50": ab_ratios(per_round, base, 50),
        "rtt_p99": ab_ratios(per_round, base, 99),
        "connect": {k: _spread(v) for k, v in connect.items()},
    }


def strip_samples(rounds: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Remove the raw RTTs from the rounds; return them pooled per path."""
    pooled: dict[str, list[float]] = {}
    for r in rounds:
        for key, cell in r["paths"].items():
            pooled.setdefault(key, []).extend(cell.pop("_rtts", []))
    return pooled


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _range(s: Mapping[str, Any] | None, digits: int = 0, x: bool = False) -> str:
    if not s:
        return "-"
    pre = "x" if x else ""
    return f"{pre}{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


COLUMNS = [
    "path", "connect ms", "RTT p50", "p95", "p99", "max", "echoed",
    "connect / py", "p50 / py", "p99 / py",
]  # fmt: skip


def _rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    r = doc["ratios"]
    for key, s in doc["summary"].items():
        rtt = s["rtt_ms"]
        rows.append([
            LABELS.get(key, key), _range(s["connect_ms"]),
            _fmt(rtt["p50"]), _fmt(rtt["p95"]), _fmt(rtt["p99"]), _fmt(rtt["max"]),
            f"{s['echoed']}/{s['sent']}",
            _range(r["connect"].get(key), 2, x=True),
            _range(r["rtt_p50"].get(key), 2, x=True),
            _range(r["rtt_p99"].get(key), 2, x=True),
        ])  # fmt: skip
    return rows


def _title(doc: Mapping[str, Any]) -> str:
    st = doc["settings"]
    return (
        f"{st['rounds']} rounds x {st['messages']} echoes of {st['size']} B at {RATE_HZ} Hz; "
        "connect: median (min-max) over rounds; ratios: per round, median (min-max)"
    )


def results_table(doc: Mapping[str, Any]) -> Table:
    table = Table(title=_title(doc), header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "path" else "right")
    for row in _rows(doc):
        table.add_row(*row)
    return table


def markdown_table(doc: Mapping[str, Any]) -> str:
    return markdown_rows(COLUMNS, _rows(doc))


def plot(path: Path, doc: Mapping[str, Any], pooled: Mapping[str, Sequence[float]]) -> None:
    """Left: CDF of echo RTT per path (pooled). Right: connect time per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, conn) = plt.subplots(1, 2, figsize=(13, 5))
    for i, key in enumerate(doc["summary"]):  # the same colour per path in both panels
        ordered = sorted(pooled.get(key, []))
        style = {"color": f"C{i}", "label": LABELS.get(key, key)}
        if ordered:
            ys = [(j + 1) / len(ordered) for j in range(len(ordered))]
            cdf.step(ordered, ys, where="post", **style)
        cells = [r["paths"].get(key) or {} for r in doc["rounds"]]
        xs = [r["round"] for r, c in zip(doc["rounds"], cells, strict=True) if c.get("connected")]
        conn.plot(xs, [c["connect_ms"] for c in cells if c.get("connected")], "o-", **style)
    cdf.set_xscale("log")
    cdf.set_xlabel("echo RTT, host -> peer -> host (ms, log)")
    cdf.set_ylabel("fraction of echoes")
    cdf.set_title(_title(doc).split(";")[0])
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(loc="lower right", fontsize=8)
    conn.set_xlabel("round")
    conn.xaxis.get_major_locator().set_params(integer=True)
    conn.set_ylabel("connect ms (join call -> host sees link up)")
    conn.set_title("connect time per round (host's clock)")
    conn.grid(True, alpha=0.3)
    conn.set_ylim(bottom=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
