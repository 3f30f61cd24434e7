"""Stats bookkeeping, net-graph scaling, CLI parsing, bot steering, smoothing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo_game.bot import bot_input
from demo_game.cli import ice_addresses_for, is_headless, parse_args
from demo_game.netgraph import NetGraphData, NetSample
from demo_game.procs import child_stats_path
from demo_game.sim import Input
from demo_game.stats import StatsRecorder, percentile


@dataclass(frozen=True)
class FakeStats:
    rtt_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    packets_sent: int = 0
    packets_received: int = 0
    kbps_sent: float = 0.0
    kbps_received: float = 0.0


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=200))
def test_percentiles_are_order_statistics(values: list[float]) -> None:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    assert p50 in values and p99 in values
    assert p50 is not None and p99 is not None and p50 <= p99 <= max(values)


def test_recorder_reports_connected_peers_and_rtt_percentiles() -> None:
    rec = StatsRecorder()
    rec.sample("x", FakeStats(rtt_ms=9.0))  # before connection: not an RTT sample
    rec.connected("a")
    for r in (1.0, 2.0, 3.0, 100.0):
        rec.sample("a", FakeStats(rtt_ms=r, packets_sent=10, packets_received=7, loss=0.1))
    out = rec.as_json()
    assert out["a"]["connected"] is True and out["x"]["connected"] is False
    assert out["a"]["rtt_p50_ms"] == 2.0 and out["a"]["rtt_p99_ms"] == 100.0
    assert out["a"]["state_packets_received"] == 7 and out["a"]["loss"] == 0.1
    assert "peers 1/2" in rec.status_line(1.0, 2)
    rec.connected("b")
    rec.sample("b", FakeStats(rtt_ms=500.0))
    assert "rtt 500.0 ms" in rec.status_line(1.0, 2)
    assert "host rtt 100.0 ms" in rec.status_line(1.0, 2, focus="a")
    rec.left("b", "left")
    rec.left("a", "left")
    assert "peers 0/2" in rec.status_line(2.0, 2)


def test_net_graph_scales_and_text() -> None:
    g = NetGraphData(capacity=3)
    assert g.text_lines() == ["net_graph: waiting for peers"]
    for rtt in (10.0, 80.0, 30.0, 5.0):
        g.add(NetSample(rtt, 1.0, 0.02, 10.0, 20.0, 300, 7, 60.0))
    assert len(g.samples) == 3
    assert g.rtt_scale() == 100.0 and g.size_scale() == 384
    assert any("loss   2.0 %" in line for line in g.text_lines())


def test_cli_modes() -> None:
    o = parse_args(["--headless", "--duration", "3"])
    # embedded: the host process it spawns creates the room, you join it
    assert o.embedded and o.role == "client" and not o.creates_room and o.bots == 2
    o = parse_args(["--join", "ABCD", "--lobby", "ws://127.0.0.1:1", "--headless"])
    assert not o.embedded and o.role == "client" and o.bots == 0 and not o.creates_room
    o = parse_args(["--serve", "--lobby", "ws://x:1"])
    assert o.role == "server" and o.headless and o.creates_room and o.topology == "star"
    assert parse_args(["--headless"]).bot_drop_after == 10.0  # embedded: a bot drops
    assert parse_args(["--bot-drop-after", "0"]).bot_drop_after is None
    o = parse_args(["--join", "A", "--lobby", "ws://x:1", "--seat-file", "/tmp/s"])
    assert o.seat_file == "/tmp/s" and o.bot_drop_after is None
    assert parse_args(["--host", "--lobby", "ws://x:1", "--topology", "mesh"]).topology == "mesh"
    o = parse_args(["--host", "--lobby", "ws://x:1", "--headless"])
    assert o.role == "host" and o.creates_room and o.bots == 0
    assert parse_args(["--bots", "6"]).bots == 6
    assert parse_args(["--host", "--lobby", "ws://x:1", "--bots", "7"]).bots == 7
    for bad in (
        ["--join", "X"],
        ["--bot"],
        ["--loss", "2"],
        ["--loss", "nan"],
        ["--latency", "nan"],
        ["--jitter", "inf"],
        ["--latency", "1e9"],
        ["--duration", "0"],
        ["--duration", "nan"],
        ["--duration", "inf"],
        ["--screenshot-after", "-1"],
        ["--bots", "-1"],
        ["--bots", "7"],  # + you + the host process: over the room's 8 seats
        ["--host", "--lobby", "ws://x:1", "--bots", "8"],
        ["--stats-json", "/nonexistent-dir/x.json"],
        ["--serve", "--join", "A", "--lobby", "ws://x:1"],  # a star's host is its creator
        ["--seat-file", "/tmp/s"],
        ["--join", "A", "--lobby", "ws://x:1", "--kill-host-after", "3"],
        ["--bot-drop-after", "nan"],
        ["--topology", "ring"],
    ):
        with pytest.raises(SystemExit) as exc:
            parse_args(bad)
        assert exc.value.code == 2, bad  # argparse's usage error, not a crash


def test_headless_detection_and_ice_pinning() -> None:
    assert is_headless(False, {})
    assert not is_headless(False, {"DISPLAY": ":0"})
    assert is_headless(False, {"DISPLAY": ":0", "SDL_VIDEODRIVER": "dummy"})
    assert is_headless(True, {"DISPLAY": ":0"})
    assert ice_addresses_for("ws://127.0.0.1:5", None) == ("127.0.0.1",)
    assert ice_addresses_for("ws://localhost:5", None) == ("127.0.0.1",)
    assert ice_addresses_for("ws://10.0.0.2:5", None) is None
    assert ice_addresses_for("ws://127.0.0.1:5", ("10.0.0.2",)) == ("10.0.0.2",)
    assert child_stats_path("/tmp/s.json", "bot2") == "/tmp/s.bot2.json"
    assert child_stats_path(None, "host") is None


def test_bot_steers_towards_a_pickup_near_it_and_its_home() -> None:
    # tick 100: well outside the wander window for seeds 0 and 3
    assert bot_input((100.0, 100.0), [(100.0, 300.0)], 100, 0) == Input(0, 1)
    coins = [(300.0, 150.0), (660.0, 450.0)]
    me = (480.0, 300.0)  # the middle: equally near both coins
    assert bot_input(me, coins, 100, 3) == Input(-1, -1)  # home: top-left quadrant
    assert bot_input(me, coins, 100, 0) == Input(1, 1)  # home: bottom-right quadrant
