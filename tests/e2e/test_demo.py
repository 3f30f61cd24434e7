"""End to end: the demo as a user runs it, headless, as subprocesses, asserting on the
stats JSON every process writes (host, the local player, each bot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TIMESCALE

ROOT = Path(__file__).resolve().parents[2]
MIN_MOVED_PX = 30.0


def _env() -> dict[str, str]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def _run_demo(tmp_path: Path, *extra: str, duration: float = 7.0) -> dict[str, Any]:
    env = _env()
    out = tmp_path / "stats.json"
    seconds = str(duration * TIMESCALE)
    cmd = [sys.executable, "-m", "demo_game", "--duration", seconds, "--seed", "5"]
    cmd += ["--bot-drop-after", "0"]  # these matches measure a steady star
    proc = subprocess.run(
        [*cmd, "--stats-json", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90 * TIMESCALE,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    files = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("stats*.json")}
    assert set(files) == {"stats.json", "stats.host.json", "stats.bot1.json", "stats.bot2.json"}
    return files


def _assert_match(files: dict[str, Any]) -> None:
    main, host = files["stats.json"], files["stats.host.json"]
    everyone = {f["peer_id"] for f in files.values()}
    assert len(everyone) == 4
    for name, f in files.items():
        assert f["ok"] is True, name
        others = everyone - {f["peer_id"]}
        # every peer reached every other peer (a star: the host relays between players)
        assert f["topology"] == "star", name
        assert {p for p, r in f["peers"].items() if r["connected"]} == others, name
        assert f["bad_packets"] == 0, name
    assert main["children_exit_codes"] == [0, 0, 0]  # host and both bots ended cleanly
    # the host really received inputs and moved every player by them
    assert set(host["moved"]) == everyone - {host["peer_id"]}
    assert all(d > MIN_MOVED_PX for d in host["moved"].values()), host["moved"]
    assert all(n > 60 for n in host["inputs_received"].values()), host["inputs_received"]
    for name in ("stats.json", "stats.bot1.json", "stats.bot2.json"):
        f = files[name]
        assert f["host"] == host["peer_id"], name
        assert f["snapshots_received"] > 30, name
        # remote entities moved on this client: the host's snapshots crossed the network
        remote = everyone - {f["peer_id"], host["peer_id"]}
        assert set(f["moved"]) == remote, name
        assert all(d > MIN_MOVED_PX for d in f["moved"].values()), (name, f["moved"])
        link = f["peers"][host["peer_id"]]
        assert link["state_packets_received"] > 30 and link["state_packets_sent"] > 30
        assert link["rtt_p50_ms"] is not None and link["rtt_p50_ms"] > 0
    for f in files.values():  # no orphan processes
        with pytest.raises(ProcessLookupError):
            os.kill(f["pid"], 0)


@pytest.mark.timeout(150)
def test_headless_match_host_and_two_bots(tmp_path: Path) -> None:
    files = _run_demo(tmp_path)
    _assert_match(files)
    main = files["stats.json"]
    assert main["peers"][files["stats.host.json"]["peer_id"]]["loss"] < 0.05


@pytest.mark.timeout(150)
def test_headless_match_under_ten_percent_loss(tmp_path: Path) -> None:
    files = _run_demo(tmp_path, "--loss", "0.1")
    _assert_match(files)
    link = files["stats.json"]["peers"][files["stats.host.json"]["peer_id"]]
    assert 0.03 <= link["loss"] <= 0.3, link
    # redundant inputs: despite 10% packet loss almost no input is lost for good
    host = files["stats.host.json"]
    me = files["stats.json"]["peer_id"]
    assert host["inputs_lost"][me] <= 0.02 * host["inputs_received"][me], host


@pytest.mark.timeout(150)
def test_second_terminal_joins_with_the_printed_command(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "demo_game", "--duration", str(12 * TIMESCALE), "--bots", "0"]
    main = subprocess.Popen(
        [*cmd, "--stats-json", str(tmp_path / "main.json")],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert main.stdout is not None
        first = main.stdout.readline()
        assert "join from another terminal: python -m demo_game --join" in first, first
        join_args = first.split("python -m demo_game ", 1)[1].split()
        joined = subprocess.run(
            [
                sys.executable,
                "-m",
                "demo_game",
                *join_args,
                "--headless",
                "--duration",
                str(6 * TIMESCALE),
                "--stats-json",
                str(tmp_path / "join.json"),
            ],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60 * TIMESCALE,
        )
        assert joined.returncode == 0, joined.stderr[-3000:]
        _, main_err = main.communicate(timeout=60 * TIMESCALE)
    finally:
        main.kill()
        main.wait()
    assert main.returncode == 0, main_err[-3000:]
    join = json.loads((tmp_path / "join.json").read_text())
    host = json.loads((tmp_path / "main.host.json").read_text())
    first_player = json.loads((tmp_path / "main.json").read_text())["peer_id"]
    assert join["host"] == host["peer_id"]
    assert all(r["connected"] for r in join["peers"].values())
    assert set(join["peers"]) == {host["peer_id"], first_player}
    assert join["moved"][first_player] > MIN_MOVED_PX  # the first player moved on our screen
    assert host["moved"][join["peer_id"]] > MIN_MOVED_PX  # and our inputs moved us on the host


@pytest.mark.timeout(60)
def test_bad_room_code_and_dead_lobby_give_clear_errors(tmp_path: Path) -> None:
    from demo_game.procs import EmbeddedLobby

    lobby = EmbeddedLobby()
    try:
        url = lobby.start()
        for args, error in (
            (["--join", "NOPE99", "--lobby", url], "RoomNotFound"),
            (["--host", "--lobby", "ws://127.0.0.1:1"], "ConnectTimeout"),
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "demo_game", "--headless", *args],
                cwd=ROOT,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=30 * TIMESCALE,
            )
            assert proc.returncode == 1
            assert "Traceback" not in proc.stderr, proc.stderr
            assert f"demo_game: {error}" in proc.stderr, proc.stderr
    finally:
        lobby.close()
