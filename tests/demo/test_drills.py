"""The launcher's lifecycle drills and the seat file, without processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from demo_game.cli import parse_args
from demo_game.drills import BOT_DOWN_S, Drills, load_seat, save_seat


class FakeChildren:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []

    def kill(self, tag: str, sig: int = signal.SIGKILL) -> int | None:
        self.calls.append(("kill", tag, sig))
        return 1234

    def respawn(self, tag: str) -> None:
        self.calls.append(("respawn", tag, None))


def test_seat_round_trip_is_private(tmp_path: Path) -> None:
    path = str(tmp_path / "bot1.seat")
    assert load_seat(path) is None  # no seat yet: join anew
    save_seat(path, "abc123", None)  # no token to keep: nothing written
    assert not os.path.exists(path)
    save_seat(path, "abc123", "secret-token")
    assert load_seat(path) == {"peer_id": "abc123", "token": "secret-token"}
    assert os.stat(path).st_mode & 0o077 == 0  # the token is a secret


@given(st.binary(max_size=300))
def test_garbage_seat_file_means_no_seat(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s"
        path.write_bytes(data)
        seat = load_seat(str(path))
        assert seat is None or set(seat) == {"peer_id", "token"}


def _drills(tmp_path: Path, *flags: str) -> tuple[Drills, FakeChildren, str]:
    children = FakeChildren()
    seat = str(tmp_path / "bot1.seat")
    drills = Drills(children, parse_args(list(flags)), {"bot1": seat})  # type: ignore[arg-type]
    return drills, children, seat


def test_bot_drop_waits_for_the_match_and_the_seat_then_respawns(tmp_path: Path) -> None:
    drills, children, seat = _drills(tmp_path, "--bot-drop-after", "2")
    drills.tick(100.0, ready=False)
    drills.tick(200.0, ready=False)
    assert not drills.started and children.calls == []  # the clock waits for the match
    drills.tick(300.0, ready=True)
    drills.tick(302.5)
    assert children.calls == []  # bot1 has not saved its seat yet: it would come back new
    save_seat(seat, "pid1", "tok")
    drills.tick(303.0)
    assert children.calls == [("kill", "bot1", signal.SIGKILL)]
    drills.tick(303.0 + BOT_DOWN_S / 2)
    assert len(children.calls) == 1
    drills.tick(303.0 + BOT_DOWN_S)
    assert children.calls[-1] == ("respawn", "bot1", None)
    drills.tick(400.0)
    assert len(children.calls) == 2  # once only
    events = [e["event"] for e in drills.log]
    assert events == ["match_up", "bot_killed", "bot_respawned"]
    assert drills.log[1]["peer"] == "pid1"


def test_host_kill_and_stop(tmp_path: Path) -> None:
    drills, children, _ = _drills(
        tmp_path, "--bot-drop-after", "0", "--kill-host-after", "1", "--stop-host-after", "5"
    )
    drills.tick(10.0, ready=True)
    drills.tick(11.0)
    drills.tick(15.0)
    assert children.calls == [("kill", "host", signal.SIGKILL), ("kill", "host", signal.SIGTERM)]
    assert [e["event"] for e in drills.log][1:] == ["host_killed", "host_stopped"]


def test_drills_run_from_keys(tmp_path: Path) -> None:
    import pygame

    from demo_game.app import _key

    drills, children, seat = _drills(tmp_path, "--bot-drop-after", "0")
    save_seat(seat, "pid1", "tok")
    game: Any = object()
    _key(game, pygame.K_k, drills)
    _key(game, pygame.K_b, drills)
    assert children.calls == [("kill", "host", signal.SIGKILL), ("kill", "bot1", signal.SIGKILL)]
