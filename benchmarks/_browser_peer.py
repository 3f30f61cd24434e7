"""The Python remote peer of ``benchmarks.browser``, run as a child process.

``python -m benchmarks._browser_peer`` speaks the JSON lines of
:class:`benchmarks._runner.JsonLinesChild`. It plays the Python side the browser
tab is compared with: ``join`` a room of the benchmark's lobby with a netcode
session that echoes every state it receives back to its sender (from
``on_state``, in the receive path, as the tab does from its ``StateReceived``
handler), and ``rtc_answer``: a bare aiortc answerer echoing every message.
A separate process, like the browser, so neither side shares an event loop
with the host it is measured against.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BrowserBenchPeer", "main"]


class BrowserBenchPeer:
    """One netcode echo session and one bare aiortc echo at a time."""

    def __init__(self) -> None:
        self._session: contextlib.AsyncExitStack | None = None
        self._rtc_close: Callable[[], Awaitable[None]] | None = None

    async def cmd_ping(self) -> dict[str, Any]:
        return {"cpu": time.process_time(), "wall": time.monotonic()}

    async def cmd_join(self, url: str, room: str, timeout: float = 20.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Join ``room``, echo state; reply once the link to the host is up.

        ``peer_connect_ms``: the join call to that link, on this process's clock.
        """
        import netcode
        from benchmarks._transports import session_config
        from netcode.events import StateReceived

        await self.cmd_leave()
        t0 = time.monotonic()
        stack = contextlib.AsyncExitStack()
        self._session = stack
        session = await stack.enter_async_context(
            netcode.connect(url, room=room, config=session_config())
        )

        def echo(ev: StateReceived) -> None:
            session.send_state(ev.data, to=ev.peer_id)

        session.on_state(echo)
        # Drained so the queue never fills (echoes go out from the handler above).
        drain = asyncio.ensure_future(_drain(session))
        stack.callback(drain.cancel)
        try:
            await session.wait_for_peers(1, timeout=timeout)
        except BaseException:
            await self.cmd_leave()  # no half-joined session left behind
            raise
        return {"peer_id": session.peer_id, "peer_connect_ms": (time.monotonic() - t0) * 1e3}

    async def cmd_leave(self) -> dict[str, Any]:
        stack, self._session = self._session, None
        if stack is not None:
            await asyncio.wait_for(stack.aclose(), 10.0)
        return {}

    async def cmd_rtc_answer(self, sdp: str, type: str) -> dict[str, Any]:
        from benchmarks._transports import rtc_answer

        await self.cmd_rtc_close()
        answer, self._rtc_close = await rtc_answer(sdp, type, lambda _m: True)
        return answer

    async def cmd_rtc_close(self) -> dict[str, Any]:
        close, self._rtc_close = self._rtc_close, None
        if close is not None:
            await asyncio.wait_for(close(), 10.0)
        return {}

    async def cmd_close_all(self) -> dict[str, Any]:
        for close in (self.cmd_leave, self.cmd_rtc_close):
            with contextlib.suppress(Exception):
                await close()
        return {}


async def _drain(session: Any) -> None:
    async for _ev in session:
        pass


async def _amain() -> None:
    from benchmarks._child import serve_json_lines
    from benchmarks._transports import pin_loopback

    pin_loopback()
    peer = BrowserBenchPeer()
    try:
        await serve_json_lines(peer, limit=1 << 20)
    finally:
        await peer.cmd_close_all()


def main() -> None:
    asyncio.run(_amain())


if __name__ == "__main__":
    main()
