"""End to end: ``python -m benchmarks.latency --quick`` as a subprocess, checked by its JSON."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks._common import (
    CONDITIONS,
    MAX_PAYLOAD,
    SIZES,
    TRANSPORTS,
    decode_payload,
    encode_payload,
    make_payload,
)
from benchmarks._report import evaluate_goals, redundancy_summary
from benchmarks._runner import ab_ratios
from benchmarks._transports import STATE_BUFFER_THRESHOLD
from benchmarks.latency import AB_PATHS
from netcode.config import SessionConfig
from netcode.errors import DecodeError
from tests.conftest import TIMESCALE
from tests.e2e.benchrun import run_bench


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


@pytest.mark.timeout(int(240 * TIMESCALE))
def test_quick_benchmark_writes_every_transport_and_condition(tmp_path: Path) -> None:
    doc = run_bench("latency", tmp_path, "latency-quick.json", timeout_s=200)
    assert (tmp_path / "latency-quick.png").stat().st_size > 10_000
    assert doc["quick"] is True
    assert doc["errors"] == {}
    for transport in TRANSPORTS:
        for cond in CONDITIONS:
            for size in SIZES:
                cell = doc["results"][transport.key][cond.key][str(size)]
                where = f"{transport.key}/{cond.key}/{size}"
                assert cell["sent"] > 0, where
                for key in ("p50", "p95", "p99", "max"):
                    assert _number(cell["rtt_ms"][key]), where
                for key in ("p50", "p99"):
                    assert _number(cell["age_ms"][key]), where
                assert 0 < cell["delivery_pct"] <= 100, where
                assert _number(cell["cpu_ms_per_1000"]["sender"]), where
                assert _number(cell["cpu_ms_per_1000"]["receiver"]), where
                assert _number(cell["wire_bytes_per_msg"]), where
                # Every payload is at least `size` bytes on the wire.
                assert cell["wire_bytes_per_msg"] >= size * cell["delivery_pct"] / 100 * 0.5
    clean = doc["results"]["udp_raw"]["clean"]["100"]
    delayed = doc["results"]["udp_raw"]["delay20"]["100"]
    # 20 ms each way must show up in the RTT (generous: a loaded machine only adds).
    assert delayed["rtt_ms"]["p50"] - clean["rtt_ms"]["p50"] >= 30.0
    for n in ("2", "4", "8"):
        assert _number(doc["connect"][n]["median_ms"])
    for path in ("netcode_state", "aiortc_unordered"):
        assert doc["max_rate"][path]["received_per_s"] > 0
    _check_ab(doc["overhead_ab"], rounds=1)
    # Redundancy: every state packet twice, so the sender puts clearly more on the wire
    # (each copy is a full DTLS/SCTP datagram; SACKs and heartbeats are not doubled).
    for key in ("clean", "loss5_delay20"):
        for size in SIZES:
            red = doc["redundancy"][key][str(size)]
            assert red["bytes_ratio"] >= 1.5, (key, size, red)
            assert red["send_drops"]["x2"] is not None
    names = {g["goal"] for g in doc["goals"]}
    assert any("handler" in n for n in names) and any("x2" in n for n in names)
    assert all(isinstance(g["met"], bool) for g in doc["goals"])
    assert all(_number(g["measured"]) for g in doc["goals"]), doc["goals"]


def _check_ab(ab: dict[str, Any], rounds: int) -> None:
    assert ab["rounds"] == rounds and len(ab["per_round"]) == rounds
    for path in AB_PATHS:
        assert ab["paths"][path]["echoed"] > 0, path
        assert _number(ab["paths"][path]["rtt_ms"]["p50"]), path
    for path in ("netcode_state", "netcode_state_handler"):
        r = ab["ratio_p50"][path]
        assert 0 < r["min"] <= r["median"] <= r["max"], (path, r)


@pytest.mark.timeout(int(120 * TIMESCALE))
def test_ab_only_writes_rounds_and_ratios(tmp_path: Path) -> None:
    doc = run_bench("latency", tmp_path, "latency-ab-quick.json", "--ab-only", timeout_s=100)
    assert doc["errors"] == {}
    assert "results" not in doc  # the A/B only
    _check_ab(doc["overhead_ab"], rounds=2)
    assert len(doc["goals"]) == 2 and all(_number(g["measured"]) for g in doc["goals"])


def test_ab_ratios_are_per_round_against_the_base() -> None:
    rounds = [
        {"bare": [1.0, 1.0, 1.0], "a": [1.2, 1.2, 1.2], "b": [2.0, 2.0, 2.0]},
        {"bare": [2.0, 2.0, 2.0], "a": [2.2, 2.2, 2.2], "b": [2.0, 2.0, 2.0]},
        {"bare": [1.0, 1.0, 1.0], "a": [1.5, 1.5, 1.5], "b": []},
    ]
    ratios = ab_ratios(rounds, "bare")
    assert ratios["a"] == {"median": 1.2, "min": 1.1, "max": 1.5}
    assert ratios["b"] == {"median": 1.5, "min": 1.0, "max": 2.0}  # empty round skipped
    assert "bare" not in ratios


def test_redundancy_summary_compares_the_handler_rows() -> None:
    def cell(wire: float, age: float) -> dict[str, Any]:
        return {"wire_bytes_per_msg": wire, "age_ms": {"p99": age}, "rtt_ms": {"p99": 1.0},
                "delivery_pct": 100.0, "send_drops": 0}  # fmt: skip

    results = {
        "netcode_state_handler": {"loss5": {"100": cell(250.0, 50.0)}},
        "netcode_state_x2": {"loss5": {"100": cell(500.0, 40.0)}},
    }
    summary = redundancy_summary(results)
    assert summary["loss5"]["100"]["bytes_ratio"] == 2.0
    assert summary["loss5"]["100"]["age_p99_ms"] == {"x1": 50.0, "x2": 40.0}
    assert set(summary) == {"loss5"}  # conditions without both rows are left out
    goals = {g["goal"]: g for g in evaluate_goals(results, {})}
    assert not any("x2" in name for name in goals)  # no 5% + 20 ms cell: not evaluated


def test_bare_aiortc_drops_above_the_netcode_default() -> None:
    assert SessionConfig().state_buffer_threshold == STATE_BUFFER_THRESHOLD


@given(
    st.integers(0, 2**31),
    st.integers(0, 2**31),
    st.floats(0, 1e9, allow_nan=False),
    st.integers(60, 2000),
)
def test_payload_has_exact_size_and_round_trips(seg: int, n: int, t: float, size: int) -> None:
    data = encode_payload(make_payload(seg, n, t, size))
    assert len(data) == size
    assert decode_payload(data) == (seg, n, t)


@given(st.binary(max_size=200))
def test_payload_decoder_rejects_garbage_cleanly(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_payload(data)


@pytest.mark.parametrize(
    "data",
    [b"\x81\x90\x00", b"\xc1", b"\xd4\x00\x00", b"\x91" * 2000, b"\x83\xa1s\x01"],
)
def test_payload_decoder_rejects_bad_msgpack(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(data)


def test_payload_decoder_limits_size() -> None:
    with pytest.raises(DecodeError):
        decode_payload(bytes(MAX_PAYLOAD + 1))


def test_subset_settings_keep_grid_order_and_refuse_unknown_keys() -> None:
    from benchmarks.latency import Settings, _parse

    s = Settings(False, conditions=("loss5_delay20", "clean"), paths=("netcode_state_x2",))
    assert s.subset and [c.key for c in s.conditions] == ["clean", "loss5_delay20"]
    assert not Settings(False).subset and len(Settings(False).conditions) == len(CONDITIONS)
    for bad in (["--paths", "netcode_state,nope"], ["--conditions", "loss99"]):
        with pytest.raises(SystemExit):
            _parse(bad)
