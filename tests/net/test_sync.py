"""connect_sync(): a game loop with no asyncio in sight drives a SyncSession."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from netcode.errors import ConnectionClosed, ConnectTimeout, EncodeError
from netcode.events import EventReceived, PeerConnected, PeerLeft, StateReceived
from netcode.net.sync import SyncSession, connect_sync
from tests.helpers import LOOPBACK, TIMEOUT, lobby_in_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lobby_url() -> Iterator[str]:
    with lobby_in_thread() as url:
        yield url


def run_frames(sessions: list[SyncSession], frames: int, fps: float = 120.0) -> list[list[object]]:
    """A pygame-style loop: every frame each player sends its state and polls once."""
    received: list[list[object]] = [[] for _ in sessions]
    for frame in range(frames):
        for i, s in enumerate(sessions):
            s.send_state({"player": i, "frame": frame})
            if frame % 10 == 0:
                s.send_event({"player": i, "frame": frame})
            received[i].extend(s.poll())
        time.sleep(1.0 / fps)  # frame pacing, like pygame's clock.tick()
    return received


def test_sync_session_in_a_plain_game_loop(lobby_url: str) -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # really no asyncio in this thread
    with connect_sync(lobby_url, create=True, config=LOOPBACK) as host:
        with connect_sync(lobby_url, room=host.room, config=LOOPBACK) as guest:
            host.wait_for_peers(1, TIMEOUT)
            guest.wait_for_peers(1, TIMEOUT)
            assert host.peers[guest.peer_id].state == "connected"
            frames = 60
            got_host, got_guest = run_frames([host, guest], frames)
            # Let in-flight traffic land: keep polling until the last event arrives.
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and (
                sum(isinstance(e, EventReceived) for e in got_guest) < frames // 10
                or sum(isinstance(e, EventReceived) for e in got_host) < frames // 10
            ):
                got_host.extend(host.poll())
                got_guest.extend(guest.poll())
                time.sleep(0.005)
            for mine, other_index, got in ((host, 1, got_host), (guest, 0, got_guest)):
                events = [e.data for e in got if isinstance(e, EventReceived)]
                expected = [{"player": other_index, "frame": f} for f in range(0, frames, 10)]
                assert events == expected
                states = [e for e in got if isinstance(e, StateReceived)]
                assert len(states) >= 0.8 * frames * 0.5  # generous: the first frames race
                assert any(isinstance(e, PeerConnected) for e in got)
                assert mine.stats(guest.peer_id if mine is host else host.peer_id).rtt_ms > 0
            with pytest.raises(EncodeError):
                host.send_state({"bad": object()})
        # Guest left cleanly: the host sees it within a few frames.
        deadline = time.monotonic() + TIMEOUT
        left: list[object] = []
        while time.monotonic() < deadline and not left:
            left = [e for e in host.poll() if isinstance(e, PeerLeft)]
            time.sleep(0.005)
        assert left
        assert host.send_state({"x": 1}) is False  # nobody connected any more


def test_connect_sync_unreachable_lobby_cleans_up() -> None:
    with lobby_in_thread() as url:
        pass  # the port is closed again
    before = threading.active_count()
    with pytest.raises(ConnectTimeout):
        connect_sync(url, config=LOOPBACK)
    assert threading.active_count() == before  # the loop thread was stopped


def test_close_is_idempotent_and_stops_sending(lobby_url: str) -> None:
    session = connect_sync(lobby_url, create=True, config=LOOPBACK)
    session.close()
    session.close()
    assert session.poll() == []
    with pytest.raises(ConnectionClosed):
        session.send_event("x")
