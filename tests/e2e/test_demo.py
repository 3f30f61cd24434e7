"""End to end: the demo as a user runs it, headless, as subprocesses, asserting on the
stats JSON every process writes (host, the local player, each bot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        _assert_play_url_serves_the_page(main.stdout.readline(), join_args)
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


def _assert_play_url_serves_the_page(line: str, join_args: list[str]) -> None:
    """The second line names the browser page of the room, on the lobby itself."""
    code = join_args[join_args.index("--join") + 1]
    lobby = join_args[join_args.index("--lobby") + 1]
    port = urlsplit(lobby).port
    assert f"play in a browser: http://127.0.0.1:{port}/play?room={code}" in line, line
    url = line.split("play in a browser: ", 1)[1].split()[0]
    with urllib.request.urlopen(url, timeout=10 * TIMESCALE) as page:  # follows the 302
        assert page.status == 200 and page.url.endswith(f"/play/demo/?room={code}")
        assert page.headers["Content-Type"].startswith("text/html")
        assert b'src="./demo.js"' in page.read()


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


def _run_drill(tmp_path: Path, *extra: str, duration: float) -> tuple[dict[str, Any], str]:
    """A headless embedded match with a lifecycle drill; the drill's clock starts when
    the whole match is up (the launcher waits for that condition, not for a time)."""
    out = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "demo_game", "--headless", "--seed", "7"]
    cmd += ["--duration", str(duration * TIMESCALE), "--stats-json", str(out), *extra]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=90 * TIMESCALE
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # no demo code may fail (netcode's own log lines are not the demo's business here)
    assert "demo_game/" not in proc.stderr, proc.stderr[-3000:]
    files = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("stats*.json")}
    return files, proc.stderr


def _events(f: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [e for e in f["timeline"] if e["event"] == event]


def _drill(main: dict[str, Any], event: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [d for d in main["drills"] if d["event"] == event]
    assert len(entries) == 1, main["drills"]
    return entries[0]


@pytest.mark.timeout(120)
def test_host_killed_mid_match_the_others_play_on(tmp_path: Path) -> None:
    files, _ = _run_drill(
        tmp_path, "--bot-drop-after", "0", "--kill-host-after", "4", duration=20.0
    )
    # the host process crashed (SIGKILL: no stats file, no goodbye); the rest ended cleanly
    assert set(files) == {"stats.json", "stats.bot1.json", "stats.bot2.json"}
    main, bots = files["stats.json"], [files["stats.bot1.json"], files["stats.bot2.json"]]
    assert main["children_exit_codes"] == [-9, 0, 0]
    killed_at = _drill(main, "host_killed")["t"]
    old_host = _events(main, "first_snapshot")[0]["peer"]
    me = main["peer_id"]
    # the lobby named the earliest-joined player left (us) and we took the match over
    [change] = _events(main, "host_changed")
    assert change["you"] is True and change["peer"] == me and change["previous"] == old_host
    [took] = _events(main, "took_over")
    assert main["role"] == "host" and main["host"] == me and main["stop_reason"] == "duration"
    assert main["world_tick"] - took["tick"] > 2 * 60  # the world kept ticking, here
    everyone = {me} | {b["peer_id"] for b in bots}
    assert set(main["scores"]) == everyone  # every player kept its entity
    assert set(main["moved"]) == everyone - {me}
    assert all(d > MIN_MOVED_PX for d in main["moved"].values()), main["moved"]  # by inputs
    assert all(n > 60 for n in main["inputs_received"].values()), main["inputs_received"]
    resumed = []
    for b in bots:
        assert b["ok"] and b["host"] == me and b["stop_reason"].startswith("match ended by")
        [bc] = _events(b, "host_changed")
        assert bc["peer"] == me and bc["you"] is False
        first = [e for e in _events(b, "first_snapshot") if e["peer"] == me]
        assert len(first) == 1 and first[0]["t"] >= bc["t"]
        resumed.append(first[0]["t"] - killed_at)
        moved = b["moved_since_host_change"]  # others moved on our screen after it
        assert set(moved) == everyone - {b["peer_id"]}
        assert all(d > MIN_MOVED_PX for d in moved.values()), moved
    # the lobby waits host_grace_s (3 s) for a crashed host, then the star is rebuilt
    assert all(2.5 < t < 10.0 * TIMESCALE for t in resumed), resumed
    print(f"migration: host killed -> snapshots from the new host after {resumed} s")


@pytest.mark.timeout(120)
def test_dropped_bot_comes_back_as_the_same_player(tmp_path: Path) -> None:
    files, _ = _run_drill(tmp_path, "--bot-drop-after", "3", duration=16.0)
    assert set(files) == {"stats.json", "stats.host.json", "stats.bot1.json", "stats.bot2.json"}
    main, host, bot = files["stats.json"], files["stats.host.json"], files["stats.bot1.json"]
    killed = _drill(main, "bot_killed")
    assert _drill(main, "bot_respawned")["t"] > killed["t"]
    assert [(k["tag"], k["exit_code"]) for k in main["children_killed"]] == [("bot1", -9)]
    assert main["children_exit_codes"] == [0, 0, 0]  # host, the restarted bot1, bot2
    pid = killed["peer"]
    # the restarted process took the seat back: same peer id, and it plays again
    assert bot["peer_id"] == pid
    [joined] = _events(bot, "joined")
    assert joined["rejoined"] is True
    first = _events(bot, "first_snapshot")[0]
    reconnect_s = first["t"] - joined["connect_started"]
    assert reconnect_s < 5.0 * TIMESCALE, reconnect_s
    assert bot["snapshots_received"] > 30 and bot["bad_packets"] == 0
    assert all(d > MIN_MOVED_PX for d in bot["moved"].values()), bot["moved"]
    # the host kept its entity while it was away and moved it by its new inputs
    assert len(host["scores"]) == 3 and pid in host["scores"]
    back = _events(host, "reconnected")
    assert [e["peer"] for e in back] == [pid] and back[0]["entity_kept"] is True
    assert [e["peer"] for e in _events(host, "reconnecting")] == [pid]
    assert any(e["peer"] == pid and e["t"] > back[0]["t"] for e in _events(host, "first_input"))
    assert host["moved"][pid] > MIN_MOVED_PX
    # the other players saw it reconnecting, then back (not left and joined)
    for f in (main, files["stats.bot2.json"]):
        assert [e["peer"] for e in _events(f, "reconnecting")] == [pid]
        assert [e["peer"] for e in _events(f, "reconnected")] == [pid]
        assert f["peers"][pid]["connected"] and f["peers"][pid]["left"] is None
    print(
        f"bot back in {reconnect_s:.2f} s after connect_sync(rejoin_token=...), "
        f"{first['t'] - killed['t']:.2f} s after the kill"
    )


@pytest.mark.timeout(120)
def test_host_leaving_cleanly_hands_over_at_once(tmp_path: Path) -> None:
    """SIGTERM = closing the host's window: it says goodbye, the lobby names the next
    host without waiting for host_grace_s (3 s)."""
    files, _ = _run_drill(
        tmp_path, "--bot-drop-after", "0", "--stop-host-after", "3", duration=14.0
    )
    main, host = files["stats.json"], files["stats.host.json"]
    assert main["children_exit_codes"] == [0, 0, 0]
    assert host["stop_reason"] == "interrupted"  # it left through the normal path
    stopped_at = _drill(main, "host_stopped")["t"]
    [change] = _events(main, "host_changed")
    assert change["you"] is True and change["previous"] == host["peer_id"]
    assert change["t"] - stopped_at < 2.5 * TIMESCALE  # not the crash grace period
    assert main["role"] == "host" and all(d > MIN_MOVED_PX for d in main["moved"].values())
    for name in ("stats.bot1.json", "stats.bot2.json"):
        b = files[name]
        assert b["host"] == main["peer_id"]
        assert any(e["peer"] == main["peer_id"] for e in _events(b, "first_snapshot"))
        moved = b["moved_since_host_change"]
        assert all(d > MIN_MOVED_PX for d in moved.values()), (name, moved)
    print(f"clean leave: HostChanged {change['t'] - stopped_at:.3f} s after SIGTERM")


@pytest.mark.timeout(60)
def test_stale_seat_file_joins_anew(tmp_path: Path) -> None:
    import netcode
    from demo_game.drills import load_seat, save_seat
    from demo_game.procs import EmbeddedLobby

    lobby = EmbeddedLobby()
    try:
        url = lobby.start()
        with netcode.connect_sync(url, create=True, topology="star") as host:
            seat = str(tmp_path / "me.seat")
            save_seat(seat, "someone", "not-a-token-the-lobby-issued")
            args = ["--join", host.room, "--lobby", url, "--seat-file", seat, "--headless"]
            args += ["--duration", str(2 * TIMESCALE), "--stats-json", str(tmp_path / "me.json")]
            proc = subprocess.run(
                [sys.executable, "-m", "demo_game", *args],
                cwd=ROOT,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=40 * TIMESCALE,
            )
    finally:
        lobby.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "seat not taken back" in proc.stderr and "joining anew" in proc.stderr
    me = json.loads((tmp_path / "me.json").read_text())
    [joined] = _events(me, "joined")
    assert joined["rejoined"] is False
    fresh = load_seat(seat)  # the new seat replaced the stale one
    assert fresh is not None and fresh["peer_id"] == me["peer_id"] != "someone"
    assert fresh["token"] != "not-a-token-the-lobby-issued"
