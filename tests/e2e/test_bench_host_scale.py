"""End to end: ``python -m benchmarks.host_scale --quick`` as a subprocess, checked by its JSON.

Plus the benchmark's pure pieces (the world it ticks, the window recorder, the
fit) on their own.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks._host_client import (
    BARE_BYTES,
    CHANGING,
    CLOCK_ID,
    ENTITIES,
    Recorder,
    advance_world,
    bare_clock,
    bare_message,
    bare_pad,
    make_world,
)
from benchmarks._host_report import fit_line, kept_up
from tests.conftest import TIMESCALE
from tests.e2e.benchrun import run_bench


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("host_scale")
    return run_bench("host_scale", out, "host_scale-quick.json", timeout_s=150), out


@pytest.mark.timeout(int(180 * TIMESCALE))
def test_quick_run_measures_every_cell(quick_doc: tuple[dict[str, Any], Path]) -> None:
    doc, out = quick_doc
    assert (out / "host_scale-quick.png").stat().st_size > 10_000
    assert doc["quick"] is True and doc["errors"] == {}
    settings = doc["settings"]
    assert settings["repeats"] == 1
    for rate in settings["rates"]:
        for n in settings["ns"]:
            cells = [c for c in doc["cells"] if (c["rate"], c["n"]) == (rate, n)]
            assert sorted(c["mode"] for c in cells) == ["bare", "netcode"], (rate, n)
            for cell in cells:
                where = f"{cell['mode']} {rate} Hz N={n}"
                assert cell["ticks"] > 0 and 0 < cell["host_cpu"] < 2.0, where
                assert cell["us_per_client_tick"] > 0, where
                # Every client sends one input per tick: never more reach the host
                # (window edges allow a little), and some must.
                assert 0 < cell["inputs_per_client_tick"] <= 1.1, where
                assert 0 <= cell["loss_pct"] <= 100, where
                if cell["loss_pct"] < 100:
                    assert 0 < cell["age_ms"]["p50"] <= cell["age_ms"]["p99"] < 5000, where
                assert len(cell["client_cpu"]) == (1 if n == 1 else 2), where


@pytest.mark.timeout(int(180 * TIMESCALE))
def test_quick_run_summary_fits_and_ratios(quick_doc: tuple[dict[str, Any], Path]) -> None:
    doc, _ = quick_doc
    for rate, by_n in doc["summary"].items():
        for mode in ("netcode", "bare"):
            one, four = by_n["1"][mode]["host_cpu"], by_n["4"][mode]["host_cpu"]
            # Four clients cost the host more than one (CPU-seconds, not wall time).
            assert four["median"] > one["median"], (rate, mode)
            fits = doc["fits"][rate][mode]
            assert fits["n_from_4"] is None  # the quick run has one N >= 4: no line
            fit = fits["all"]
            if fit is None:
                continue
            used = [
                c
                for c in doc["cells"]
                if (str(c["rate"]), c["mode"]) == (rate, mode) and kept_up(c)
            ]
            assert fit["ns_used"] == sorted({c["n"] for c in used})
            for c in used:  # two points, one repeat each: the line goes through both
                line = fit["intercept_cores"] + fit["slope_cores_per_client"] * c["n"]
                assert abs(line - c["host_cpu"]) < 1e-3, (rate, mode, c["n"])
        for row in by_n.values():
            ratio = row["ratio"]["host_cpu"]
            nc, bare = row["netcode"]["kept_up_host_cpu"], row["bare"]["kept_up_host_cpu"]
            if nc is None or bare is None:
                assert ratio is None
            else:
                assert ratio == pytest.approx(nc["median"] / bare["median"], abs=0.01)
    setups = [s for s in doc["setups"] if s["mode"] == "netcode" and "failed" not in s]
    assert all(s["mesh_link_ends"] <= s["mesh_link_ends_expected"] for s in setups)


# --------------------------------------------------------------------------- pure pieces


def test_world_changes_a_quarter_of_its_entities_per_tick() -> None:
    world = make_world()
    for tick in range(8):
        before = {k: dict(v) for k, v in world.items()}
        advance_world(world, tick, now=100.0 + tick)
        changed = [k for k in world if k != CLOCK_ID and world[k] != before[k]]
        assert len(changed) == CHANGING == ENTITIES // 4
        assert world[CLOCK_ID] == {"t": 100.0 + tick, "n": tick}
    # Four ticks rotate through every entity.
    assert len({(t * CHANGING) % ENTITIES for t in range(4)}) == 4


@given(st.floats(0, 1e7, allow_nan=False), st.integers(0, 10**6))
def test_bare_message_is_about_600_bytes_and_round_trips(now: float, tick: int) -> None:
    data = bare_message(now, tick, bare_pad())
    assert abs(len(data) - BARE_BYTES) <= 8
    assert bare_clock(data) == (now, tick)


@given(st.binary(max_size=5000))
def testbare_clock_rejects_garbage_cleanly(data: bytes) -> None:
    result = bare_clock(data)
    assert result is None or (isinstance(result[0], float) and isinstance(result[1], int))


def testbare_clock_rejects_wrong_shapes() -> None:
    for obj in ([1.0, 2], {"t": 1, "n": 2}, {"t": 1.0}, {"t": 1.0, "n": "x"}):
        assert bare_clock(msgpack.packb(obj)) is None
    assert bare_clock("text") is None


def test_recorder_counts_each_tick_once_inside_the_window() -> None:
    rec = Recorder()
    rec.arm(2, w0=10.0, w1=11.0)
    rec.on_snapshot(0, 10.5, 7, now=10.503)
    rec.on_snapshot(0, 10.5, 7, now=10.6)  # a duplicate: not counted again
    rec.on_snapshot(1, 9.99, 1, now=10.1)  # sent before the window
    rec.on_snapshot(1, 11.0, 60, now=11.01)  # sent at its end (exclusive)
    rec.on_snapshot(5, 10.2, 3, now=10.3)  # no such receiver
    out = rec.disarm()
    assert out["received"] == [1, 0]
    assert out["ages_ms"] == [pytest.approx(3.0)]
    rec.on_snapshot(0, 10.5, 8, now=10.6)  # disarmed: ignored
    assert rec.received[0] == {7}


@given(
    st.floats(-10, 10, allow_nan=False),
    st.floats(-1, 1, allow_nan=False),
    st.lists(st.integers(1, 64), min_size=2, max_size=10, unique=True),
)
def test_fit_line_recovers_a_line(a: float, b: float, xs: list[int]) -> None:
    fit = fit_line([(x, a + b * x) for x in xs])
    assert fit is not None
    assert fit[0] == pytest.approx(a, abs=1e-6) and fit[1] == pytest.approx(b, abs=1e-6)


def test_fit_line_needs_two_distinct_n() -> None:
    assert fit_line([]) is None
    assert fit_line([(4, 0.1), (4, 0.2)]) is None


def test_kept_up_leaves_overloaded_cells_out_of_the_fit() -> None:
    good = {
        "host_cpu": 0.5, "overruns": 0, "ticks": 240,
        "client_overruns": 0, "client_ticks": 480, "loss_pct": 0.0,
    }  # fmt: skip
    assert kept_up(good)
    for bad in (
        {"host_cpu": 0.97},
        {"overruns": 13},
        {"client_overruns": 25},
        {"loss_pct": 6.0},
    ):
        assert not kept_up({**good, **bad}), bad
    with pytest.raises(KeyError):  # a malformed cell is an error, never a silent True
        kept_up({})
