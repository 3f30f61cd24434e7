"""SyncSession refuses bad input in the game's thread, where the game can see the error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from netcode.config import NetworkConditions
from netcode.errors import ConfigError, ConnectionClosed, EncodeError
from netcode.net.sync import connect_sync
from tests.helpers import LOOPBACK, TIMEOUT, lobby_in_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lobby_url() -> Iterator[str]:
    with lobby_in_thread() as url:
        yield url


def test_bad_snapshot_and_conditions_raise_in_the_callers_thread(lobby_url: str) -> None:
    with connect_sync(lobby_url, create=True, config=LOOPBACK) as host:
        with connect_sync(lobby_url, room=host.room, config=LOOPBACK) as guest:
            host.wait_for_peers(1, TIMEOUT)
            guest.wait_for_peers(1, TIMEOUT)
            # {1: 5} used to raise TypeError; a set used to return True and fail later
            # in the network thread, only logged.
            bad: list[Any] = [{1: 5}, {1: {"x": {1, 2}}}, "nope"]
            for entities in bad:
                with pytest.raises(EncodeError):
                    host.send_snapshot(entities)
            assert host.send_snapshot({1: {"x": 1.0}}) is True
            with pytest.raises(ConfigError):
                host.set_conditions("bad")  # type: ignore[arg-type]
            with pytest.raises(ConfigError):
                host.set_conditions(inbound=0.5)  # type: ignore[arg-type]
            host.set_conditions(inbound=NetworkConditions(latency_ms=1.0, seed=1))
            assert guest.peers[host.peer_id].state == "connected"
        host.close()
        with pytest.raises(ConnectionClosed):
            host.send_event("x")


def test_connect_sync_refuses_wrong_argument_types() -> None:
    with pytest.raises(ConfigError, match="config"):
        connect_sync("ws://127.0.0.1:9", config=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="metadata"):
        connect_sync("ws://127.0.0.1:9", metadata="k=v")  # type: ignore[arg-type]
