"""A peer process killed with SIGKILL: the others notice and free its link."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

import netcode
from netcode.events import PeerConnected, PeerLeft, PeerLost
from netcode.net.session import connect
from tests.helpers import (
    TIMEOUT,
    EventLog,
    assert_link_freed,
    link_of,
    loopback_config,
    running_lobby,
)

pytestmark = pytest.mark.timeout(60)

# The victim: joins the room, says so on stdout, then just keeps its links alive.
VICTIM = textwrap.dedent(
    """
    import asyncio, sys
    from netcode.config import SessionConfig
    from netcode.net.session import connect

    async def main(url, room):
        cfg = SessionConfig(host_addresses=("127.0.0.1",))
        session = await connect(url, room=room, config=cfg)
        await session.wait_for_peers(1, 20)
        print(session.peer_id, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_sigkilled_peer_is_gone_within_peer_timeout() -> None:
    cfg = loopback_config(heartbeat_interval_s=0.1, peer_timeout_s=1.0)
    async with running_lobby() as lobby, connect(lobby.url, create=True, config=cfg) as session:
        log = EventLog(session)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            VICTIM,
            lobby.url,
            session.room,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(netcode.__file__).parents[1])},
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 3 * TIMEOUT)
            victim = line.decode().strip()
            await log.wait_event(PeerConnected, victim)
            link = link_of(session, victim)
            start = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGKILL)
            await log.wait_for(
                lambda _: bool(log.of(PeerLeft, victim) or log.of(PeerLost, victim)),
                within=cfg.peer_timeout_s + 5.0,
            )
            assert asyncio.get_running_loop().time() - start < cfg.peer_timeout_s + 5.0
            await assert_link_freed(session, victim, link)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
