"""Process plumbing: the embedded lobby thread and the bot subprocesses.

The game loop is synchronous (pygame), so the embedded lobby gets its own
thread and event loop. Bots are real separate processes, each with its own
WebRTC stack, exactly like a second terminal would be; they are always reaped,
first politely (the host's "end" event), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import netcode

__all__ = ["BotProcesses", "EmbeddedLobby", "child_stats_path"]


class EmbeddedLobby:
    """``netcode.serve_lobby`` on 127.0.0.1, port 0, in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lobby", daemon=True)
        self._server: Any = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            netcode.serve_lobby(host=self._host, port=self._port), self._loop
        )
        self._server = fut.result(timeout)
        self.url = str(self._server.url)
        return self.url

    def close(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.close(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(timeout)
            self._server = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._loop.is_running():
            self._loop.close()


def child_stats_path(stats_json: str | None, tag: str) -> str | None:
    """A child writes next to its parent's file: out.json -> out.host.json, out.bot1.json."""
    if stats_json is None:
        return None
    p = Path(stats_json)
    return str(p.with_name(f"{p.stem}.{tag}{p.suffix or '.json'}"))


class BotProcesses:
    """Spawns ``python -m demo_game --bot|--serve ...`` children and makes sure they end.

    Children are named (``host``, ``bot1``...), so one can be killed and started
    again with the same arguments: a bot with a ``--seat-file`` then takes its seat
    back. ``procs`` holds the current process of each name; exit codes of killed
    ones are kept in ``killed``.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._args: dict[str, list[str]] = {}
        self._index: dict[str, int] = {}
        self.killed: list[dict[str, Any]] = []

    def spawn(self, args: list[str], tag: str | None = None, *, pipe: bool = False) -> None:
        env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
        cmd = [sys.executable, "-m", "demo_game", "--parent-pid", str(os.getpid())]
        out = subprocess.PIPE if pipe else None
        proc = subprocess.Popen(cmd + args, env=env, stdin=subprocess.DEVNULL, stdout=out)
        tag = tag or f"child{len(self.procs)}"
        if tag in self._index:
            self.procs[self._index[tag]] = proc
        else:
            self._index[tag] = len(self.procs)
            self.procs.append(proc)
        self._args[tag] = args

    def get(self, tag: str) -> subprocess.Popen[bytes] | None:
        i = self._index.get(tag)
        return None if i is None else self.procs[i]

    def read_line(self, tag: str, timeout: float) -> str:
        """The first stdout line of a child spawned with ``pipe=True`` ("" if it died or
        stayed silent for ``timeout``); the rest of its output is passed through."""
        proc = self.get(tag)
        if proc is None or proc.stdout is None:
            return ""
        lines: queue.Queue[bytes] = queue.Queue()
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, name=f"{tag}-stdout", daemon=True).start()
        try:
            first = lines.get(timeout=timeout)
        except queue.Empty:
            return ""
        threading.Thread(target=_forward, args=(lines,), daemon=True).start()
        return first.decode(errors="replace").strip()

    def kill(self, tag: str, sig: int = signal.SIGKILL) -> int | None:
        """Signal one child (SIGKILL: a crash, no goodbye); returns its pid."""
        proc = self.get(tag)
        if proc is None or proc.poll() is not None:
            return None
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(5.0)
            self.killed.append({"tag": tag, "pid": proc.pid, "exit_code": proc.returncode})
        return proc.pid

    def respawn(self, tag: str) -> None:
        """Start ``tag`` again with the arguments it had."""
        self.spawn(self._args[tag], tag)

    def wait(self, timeout: float) -> bool:
        """Wait for all children to exit by themselves; True if they all did."""
        ok = True
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                ok = False
        return ok

    def stop(self, grace: float = 5.0) -> list[int | None]:
        """SIGTERM whoever is still running, SIGKILL after ``grace``; returns exit codes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
        return [p.returncode for p in self.procs]


def _forward(lines: queue.Queue[bytes]) -> None:
    """Pass a child's later stdout through (and keep its pipe drained)."""
    while line := lines.get():
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()
