"""The echo peer of the latency benchmark, run as a child process.

``python -m benchmarks._peer`` reads one JSON command per line on stdin and
answers one JSON line on stdout. Running the echo side in its own process is
what lets the benchmark measure sender and receiver CPU separately
(``time.process_time`` per process) and keeps the two event loops from
queueing behind each other.

For every transport the peer echoes each message back unchanged and records,
per segment, which state messages arrived and the *state age* a game would
see: sampled once per 60 Hz frame, ``now - send time of the newest state
held`` (sender and peer share CLOCK_MONOTONIC).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._child import serve_json_lines
from benchmarks._common import RATE_HZ, decode_payload
from netcode.errors import DecodeError

__all__ = ["Recorder", "main"]

Handler = Callable[..., Awaitable[dict[str, Any]]]


class Recorder:
    """What arrived in the current segment, and the state age sampled every frame."""

    def __init__(self) -> None:
        self.seg = -1
        self.active = False
        self.unique: set[int] = set()
        self.newest_n = -1
        self.newest_t = 0.0
        self.samples: list[tuple[float, float]] = []
        self.bad = 0
        self.echo = True

    def begin(self, seg: int) -> None:
        self.seg, self.active = seg, True
        self.unique = set()
        self.newest_n, self.newest_t = -1, 0.0
        self.samples = []

    def on_message(self, data: Any) -> bool:
        """Record one message; True if it should be echoed back."""
        try:
            seg, n, t = decode_payload(data)
        except DecodeError:
            self.bad += 1
            return False
        if seg == self.seg:
            self.unique.add(n)
            if n > self.newest_n:
                self.newest_n, self.newest_t = n, t
        return self.echo

    def frame(self, now: float) -> None:
        if self.active and self.newest_n >= 0:
            self.samples.append((now, now - self.newest_t))

    def end(self, t_last: float, window: float) -> dict[str, Any]:
        """Stop sampling; keep samples up to ``window`` after the last send."""
        self.active = False
        self.echo = True
        ages = [age * 1000.0 for at, age in self.samples if at <= t_last + window]
        return {"received": len(self.unique), "age_ms": ages, "bad": self.bad}


class Peer:
    """All echo roles; one transport is in use at a time."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._netcode: dict[str, Any] = {}  # echo sessions by name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def frames(self) -> None:
        """One age sample per 60 Hz frame, at a random point within the frame.

        The sender also ticks at exactly 60 Hz: sampling at the same fixed
        phase would lock onto it and make the age depend on the phase a run
        happened to start with. A random point per frame samples time
        uniformly, which is what a renderer not synchronised to the network sees.
        """
        loop = asyncio.get_running_loop()
        rng = random.Random(0)
        start, i = loop.time(), 0
        while True:
            i += 1
            at = start + (i + rng.random()) / RATE_HZ
            await asyncio.sleep(max(0.0, at - loop.time()))
            self.rec.frame(time.monotonic())

    # -- commands --------------------------------------------------------

    async def cmd_seg_begin(self, seg: int, echo: bool = True) -> dict[str, Any]:
        self.rec.begin(seg)
        self.rec.echo = echo
        return {"cpu": time.process_time(), "wall": time.monotonic()}

    async def cmd_seg_end(self, t_last: float, window: float) -> dict[str, Any]:
        out = self.rec.end(t_last, window)
        out["cpu"], out["wall"] = time.process_time(), time.monotonic()
        return out

    async def cmd_udp_start(self) -> dict[str, Any]:
        from benchmarks._transports import start_udp_echo

        port, close = await start_udp_echo(self.rec.on_message)
        self._closers.append(close)
        return {"port": port}

    async def cmd_ws_start(self, host: str | None = None) -> dict[str, Any]:
        from benchmarks._transports import LOOPBACK, start_ws_relay

        url, close = await start_ws_relay(self.rec.on_message, host or LOOPBACK)
        self._closers.append(close)
        return {"url": url}

    async def cmd_rtc_answer(self, sdp: str, type: str) -> dict[str, Any]:
        from benchmarks._transports import rtc_answer

        answer, close = await rtc_answer(sdp, type, self.rec.on_message)
        self._closers.append(close)
        return answer

    async def cmd_netcode_start(
        self, name: str = "netcode", handler: bool = False, state_copies: int = 1
    ) -> dict[str, Any]:
        """Start a netcode echo session (own embedded lobby) under ``name``."""
        from benchmarks._transports import start_netcode_echo

        if name in self._netcode:
            raise ValueError(f"netcode echo {name!r} already running")
        info, session, close = await start_netcode_echo(
            self.rec.on_message, handler=handler, state_copies=state_copies
        )
        self._netcode[name] = session
        self._closers.append(close)
        return info

    async def cmd_set_conditions(
        self, conditions: dict[str, Any] | None, name: str | None = None
    ) -> dict[str, Any]:
        """Conditions for the echo session ``name`` (every one when None)."""
        from netcode.config import NetworkConditions

        cond = NetworkConditions(**conditions) if conditions else None
        for key, session in self._netcode.items():
            if name is None or key == name:
                session.set_conditions(cond)
        return {}

    async def cmd_close_all(self) -> dict[str, Any]:
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 10.0)
        self._netcode = {}
        return {}

    async def cmd_ping(self) -> dict[str, Any]:
        return {"cpu": time.process_time(), "wall": time.monotonic()}


async def _amain() -> None:
    from benchmarks._transports import pin_loopback

    pin_loopback()
    peer = Peer()
    frames = asyncio.ensure_future(peer.frames())
    try:
        await serve_json_lines(peer, limit=1 << 20)
    finally:
        frames.cancel()
        await peer.cmd_close_all()


def main() -> None:
    asyncio.run(_amain())


if __name__ == "__main__":
    main()
