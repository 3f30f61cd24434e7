"""Redundancy mode (SessionConfig.state_copies): each state travels twice, delivered once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from netcode.config import NetworkConditions
from netcode.errors import ConfigError
from netcode.events import EventReceived, StateReceived
from netcode.net.lobby_server import LobbyServer
from tests.helpers import EventLog, loopback_config, mesh, running_lobby, view

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def lobby() -> AsyncIterator[LobbyServer]:
    async with running_lobby() as server:
        yield server


async def test_two_copies_survive_loss_and_are_delivered_once(lobby: LobbyServer) -> None:
    cfg = loopback_config(state_copies=2, max_queued_states=1_000)
    async with mesh(lobby.url, 2, cfg) as (a, b):
        a.set_conditions(NetworkConditions(loss=0.2, seed=4), b.peer_id)
        log = EventLog(b)
        n = 300
        for i in range(n):
            a.send_state({"i": i})
            if i % 50 == 49:  # pace in rounds so nothing is dropped by backpressure
                a.send_event(i)
                await log.wait_count(EventReceived, (i + 1) // 50, a.peer_id)
        impairment = view(a, b.peer_id).impairment
        assert impairment is not None and impairment.outbound.dropped > 0.1 * n
        got = [e.data["i"] for e in log.of(StateReceived, a.peer_id)]
        assert got == sorted(set(got))  # each state at most once, in order
        # With one copy 20 % loss loses ~60 states; with two only ~4 % of them (0.2^2).
        assert len(got) >= 0.9 * n, f"{len(got)} of {n}"
        assert b.stats(a.peer_id).stale_drops >= 0.5 * n  # the second copies


def test_state_copies_is_validated() -> None:
    for bad in (0, 4, 1.5, True):
        with pytest.raises(ConfigError, match="state_copies"):
            loopback_config(state_copies=bad)
