"""End to end: ``python -m benchmarks.latency --quick`` as a subprocess, checked by its JSON."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

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
from netcode.errors import DecodeError
from tests.conftest import TIMESCALE

ROOT = Path(__file__).resolve().parents[2]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


@pytest.mark.timeout(int(240 * TIMESCALE))
def test_quick_benchmark_writes_every_transport_and_condition(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.latency", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=200 * TIMESCALE,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((tmp_path / "latency-quick.json").read_text())
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
    ab = doc["overhead_ab"]
    for path in ("netcode_state", "aiortc_unordered"):
        assert ab[path]["echoed"] > 0
        assert _number(ab[path]["rtt_ms"]["p50"])
    assert {g["goal"] for g in doc["goals"]}  # goals are evaluated and reported
    assert all(isinstance(g["met"], bool) for g in doc["goals"])


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
