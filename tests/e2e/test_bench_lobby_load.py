"""End to end: ``python -m benchmarks.lobby_load --quick`` as a subprocess, checked by its JSON.

No timing thresholds: the structure, the counts, and values in physical ranges.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from benchmarks.lobby_load import proc_cpu_s, proc_rss_kib, summarize_ms
from tests.conftest import TIMESCALE
from tests.e2e.benchrun import run_bench


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("lobby_load")
    doc: dict[str, Any] = run_bench("lobby_load", out, "lobby_load-quick.json", timeout_s=240)
    return doc


@pytest.mark.timeout(int(300 * TIMESCALE))
def test_quick_run_measures_every_mode(quick_doc: dict[str, Any]) -> None:
    doc = quick_doc
    assert doc["bench"] == "lobby_load" and doc["quick"] is True
    modes = {r["mode"]: r for r in doc["runs"]}
    assert set(modes) == {"lobby", "lobby3", "bare"}
    for mode in ("lobby", "bare"):  # these need nothing but this repository
        assert "error" not in modes[mode], modes[mode]
    for mode, run in modes.items():
        if "pending" in run:  # only lobby3, and only without a --redis flag
            assert mode == "lobby3"
            continue
        assert "error" not in run, run
        for row in run["levels"]:
            assert row["opened"] == row["connections"] == 200 * run["nodes"], (mode, row)
            assert row["errors"] == {}
            # Holding connections costs memory: between 1 and 200 KiB each.
            assert 1 < row["kib_per_conn"] < 200, (mode, row)
            assert 0 <= row["idle_cpu"] < 2.0 * run["nodes"], (mode, row)
            if mode != "bare":
                j = row["join_ms"]
                assert j["n"] == doc["settings"]["joins"]
                assert 0 < j["p50"] <= j["p99"] <= j["max"], (mode, j)
        relay = run["relay"]
        assert relay["relays"] > 0 and relay["per_s"] > 0, (mode, relay)
        assert relay["us_per_relay"] > 0, (mode, relay)
        assert relay["per_core_per_s"] == pytest.approx(1e6 / relay["us_per_relay"], rel=0.02)
    ratio = doc["ratios"]["lobby_vs_bare"]
    top, bare = modes["lobby"]["levels"][-1], modes["bare"]["levels"][-1]
    assert ratio["kib_per_conn"] == pytest.approx(
        top["kib_per_conn"] / bare["kib_per_conn"], abs=0.01
    )


def test_proc_readers_see_this_process() -> None:
    assert proc_rss_kib(os.getpid()) > 1000
    assert proc_cpu_s(os.getpid()) > 0


def test_summarize_ms_orders_percentiles() -> None:
    assert summarize_ms([]) == {"n": 0}
    s = summarize_ms([float(x) for x in range(1, 101)])
    assert s["n"] == 100 and s["p50"] <= s["p99"] <= s["max"] == 100.0


async def test_an_idle_connection_holds_no_writer_task() -> None:
    """The per-connection cost the benchmark measures: once its welcome is written,
    an idle connection keeps only its handler (and websockets' keepalive) task."""
    import asyncio

    from websockets.asyncio.client import connect

    from netcode.net.lobby_server import serve_lobby

    conns = 20
    async with await serve_lobby() as server:
        before = len(asyncio.all_tasks())
        clients = [await connect(server.url, ping_interval=None) for _ in range(conns)]
        try:
            for ws in clients:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
            for _ in range(1000):  # bounded: the writers finish right after the welcome
                if all(link.writer is None for link in server._links.values()):
                    break
                await asyncio.sleep(0)
            assert len(server._links) == conns
            assert all(link.writer is None and not link.queue for link in server._links.values())
            # Handler + keepalive per connection; a writer each would be 3 * conns.
            assert len(asyncio.all_tasks()) - before <= 2 * conns + 2
        finally:
            for ws in clients:
                await ws.close()
