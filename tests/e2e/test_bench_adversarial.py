"""End to end: ``python -m benchmarks.adversarial --quick`` as a subprocess, checked by its JSON.

Asserts the pipeline (every attack ran, every number is there) and the victim's
*behaviour* the run records (who it cut off and why, counters, peer connections),
never the timing goals: those are reported by the benchmark, not tested.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks.adversarial import ATTACK_LIST
from netcode.config import SessionConfig
from tests.conftest import TIMESCALE
from tests.e2e.benchrun import run_bench


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("adversarial")
    loaded: dict[str, Any] = run_bench("adversarial", out, "adversarial-quick.json", timeout_s=200)
    return loaded


@pytest.mark.timeout(int(240 * TIMESCALE))
def test_every_attack_ran_and_was_measured(doc: dict[str, Any]) -> None:
    assert doc["quick"] is True
    assert doc["errors"] == {}
    assert set(doc["results"]) == {spec.key for spec in ATTACK_LIST}
    for spec in ATTACK_LIST:
        cell = doc["results"][spec.key]
        assert cell["honest"]["sent"] > 0, spec.key
        assert _number(cell["rtt_ms"]["p50"]) and _number(cell["rtt_ms"]["p99"]), spec.key
        assert _number(cell["victim"]["rss_growth_mb"]), spec.key
        assert _number(cell["victim"]["cpu_s_per_s"]), spec.key
        assert cell["victim"]["log"].get("ERROR", 0) == 0, (spec.key, cell["victim"]["log"])
        if spec.kind != "baseline":
            goal = cell["goal"]
            assert isinstance(goal["met"], bool) and isinstance(goal["rss_le_50mb"], bool)
    # An honest peer on clean loopback gets nearly every echo without an attack.
    assert doc["results"]["baseline"]["echo_pct"] >= 90


@pytest.mark.timeout(int(240 * TIMESCALE))
def test_victim_cut_off_the_flooders(doc: dict[str, Any]) -> None:
    results = doc["results"]
    for key, reason in (
        ("ping_flood", "abuse"),
        ("event_flood", "abuse"),
        ("nopoll_flood", "overflow"),
    ):
        assert list(results[key]["victim"]["lost"].values()) == [reason], key
    pings = results["ping_flood"]
    stats = pings["victim"]["rogue_stats"]
    assert stats["rate_limited"] + stats["pings_ignored"] > 0
    # The victim answered a small fraction of the rogue's PINGs.
    assert stats["pings_ignored"] + stats["rate_limited"] > pings["rogue"]["packets"] / 2
    # While the game did not poll, the queue stayed at its cap.
    cap = SessionConfig().max_queued_events
    assert results["nopoll_flood"]["victim"]["max_queued_events"] <= cap + 64


@pytest.mark.timeout(int(240 * TIMESCALE))
def test_forged_pongs_and_churn_leave_no_trace(doc: dict[str, Any]) -> None:
    pong = doc["results"]["forged_pong"]
    assert pong["victim"]["rogue_stats"]["unmatched_pongs"] >= pong["rogue"]["packets"] * 0.9
    assert pong["victim"]["rogue_stats"]["rtt_ms"] < 10_000  # no forged 2,146,906 ms
    churn = doc["results"]["churn"]
    assert churn["rogue"]["cycles"] >= 10
    # After gc, the victim holds one peer connection per connected peer.
    assert churn["victim"]["peer_connections"] == churn["victim"]["connected_peers"]
