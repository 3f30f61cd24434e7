"""End to end: ``python -m benchmarks.browser --quick`` as a subprocess, checked by its JSON.

Only schema and sanity (every round connected every path, counts add up,
percentiles ordered, ratios follow from the rounds): the numbers themselves are
the benchmark's business, never a test's. Plus the benchmark's pure pieces.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks._browser_tab import chromium_missing
from benchmarks.browser import PATHS, Echoes, make_echo_payload, parse_echo
from tests.conftest import TIMESCALE, require_service
from tests.e2e.benchrun import run_bench

__all__: list[str] = []


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    missing = chromium_missing()
    require_service(missing is None, f"chromium and playwright for Python ({missing})")
    out = tmp_path_factory.mktemp("browser_bench")
    return run_bench("browser", out, "browser-quick.json", timeout_s=120), out


def _ordered(rtt: dict[str, Any]) -> bool:
    return bool(0 < rtt["p50"] <= rtt["p95"] <= rtt["p99"] <= rtt["max"])


@pytest.mark.timeout(int(150 * TIMESCALE))
def test_quick_run_connects_and_echoes_every_round(
    quick_doc: tuple[dict[str, Any], Path],
) -> None:
    doc, out = quick_doc
    assert (out / "browser-quick.png").stat().st_size > 10_000
    assert doc["benchmark"] == "browser" and doc["quick"] is True
    assert doc["errors"] == {} and doc["page_errors"] == []
    assert list(doc["paths"]) == list(PATHS)
    settings = doc["settings"]
    assert len(doc["rounds"]) == settings["rounds"] >= 2
    for r in doc["rounds"]:
        assert sorted(r["order"]) == sorted(PATHS)
        for key, cell in r["paths"].items():
            where = f"round {r['round']} {key}"
            assert cell["connected"] is True and "leave_error" not in cell, where
            assert cell["connect_ms"] > 0 and cell["sent"] == settings["messages"], where
            # Unordered, no retransmits, on loopback: a few may drop under load, not many.
            assert 0.9 * cell["sent"] <= cell["echoed"] <= cell["sent"], where
            assert _ordered(cell["rtt_ms"]), where
    # The order rotates: every path goes first in some round (3 rounds, 3 paths).
    assert {r["order"][0] for r in doc["rounds"]} == set(PATHS)


@pytest.mark.timeout(int(150 * TIMESCALE))
def test_quick_run_stats_sane_on_both_sides(quick_doc: tuple[dict[str, Any], Path]) -> None:
    doc, _ = quick_doc
    for r in doc["rounds"]:
        for key in ("browser", "python"):
            cell = r["paths"][key]
            host = cell["stats"]["host"]
            assert host["bad_packets"] == 0 and host["loss"] < 0.5, (r["round"], key)
            assert host["packets_received"] >= cell["echoed"], (r["round"], key)
            assert cell["peer_connect_ms"] > 0, (r["round"], key)
        tab = r["paths"]["browser"]["stats"]["peer"]
        assert tab["bad_packets"] == 0 and 0 < tab["rtt_ms"] < 1000
        assert tab["packets_received"] >= r["paths"]["browser"]["echoed"]
        assert r["paths"]["aiortc"]["peer_connect_ms"] is None  # no lobby, no peer clock


def _median_ratio(doc: dict[str, Any], key: str, field: str, q: str | None) -> float:
    values: list[float] = []
    for r in doc["rounds"]:
        mine, base = r["paths"][key], r["paths"]["python"]
        if q is None:
            values.append(mine[field] / base[field])
        else:
            values.append(mine[field][q] / base[field][q])
    return statistics.median(values)


@pytest.mark.timeout(int(150 * TIMESCALE))
def test_quick_run_summary_and_ratios_follow_from_rounds(
    quick_doc: tuple[dict[str, Any], Path],
) -> None:
    doc, _ = quick_doc
    rounds = doc["rounds"]
    for key, s in doc["summary"].items():
        cells = [r["paths"][key] for r in rounds]
        assert s["connected"] == s["rounds"] == len(rounds)
        assert s["sent"] == sum(c["sent"] for c in cells)
        assert s["echoed"] == sum(c["echoed"] for c in cells)
        assert _ordered(s["rtt_ms"])
        connects = [c["connect_ms"] for c in cells]
        assert s["connect_ms"]["min"] == pytest.approx(min(connects), abs=0.01)
        assert s["connect_ms"]["max"] == pytest.approx(max(connects), abs=0.01)
    ratios = doc["ratios"]
    assert ratios["base"] == "python"
    for key in ("browser", "aiortc"):
        for name, field, q in (
            ("rtt_p50", "rtt_ms", "p50"),
            ("rtt_p99", "rtt_ms", "p99"),
            ("connect", "connect_ms", None),
        ):
            r = ratios[name][key]
            assert r["min"] <= r["median"] <= r["max"], (name, key)
            assert r["median"] == pytest.approx(_median_ratio(doc, key, field, q), rel=0.02)
    assert "python" not in ratios["rtt_p50"]


# --------------------------------------------------------------------------- pure pieces


@given(st.integers(0, 2**31), st.integers(0, 2**31))
def test_echo_payload_is_100_bytes_and_parses_back(seg: int, n: int) -> None:
    obj = make_echo_payload(seg, n)
    data = msgpack.packb(obj)
    assert len(data) == 100
    assert parse_echo(data) == (seg, n)
    assert parse_echo(msgpack.unpackb(data)) == (seg, n)


@given(st.binary(max_size=600))
def test_parse_echo_rejects_garbage_cleanly(data: bytes) -> None:
    got = parse_echo(data)
    assert got is None or all(type(x) is int for x in got)


def test_parse_echo_rejects_wrong_shapes() -> None:
    for obj in ([1, 2], {"s": 1}, {"s": 1.0, "n": 2}, {"s": True, "n": 2}, "x", None):
        assert parse_echo(obj) is None
    assert parse_echo(msgpack.packb({"s": 1, "n": 2, "p": bytes(500)})) is None  # too big


def test_echoes_count_first_echo_of_sent_seqs_of_their_segment() -> None:
    echoes = Echoes(seg=7, expected=2)
    echoes.sent = {0: 0.0, 1: 0.0}
    echoes({"s": 6, "n": 0})  # another segment
    echoes({"s": 7, "n": 5})  # never sent
    echoes(b"\xc1")  # garbage
    assert echoes.rtt == {} and not echoes.done.is_set()
    echoes({"s": 7, "n": 0})
    first = echoes.rtt[0]
    echoes(msgpack.packb({"s": 7, "n": 0}))  # a duplicate: the first one counts
    assert echoes.rtt[0] == first and not echoes.done.is_set()
    echoes(msgpack.packb({"s": 7, "n": 1}))
    assert echoes.done.is_set() and len(echoes.rtt) == 2
    assert all(v > 0 and math.isfinite(v) for v in echoes.rtt.values())
