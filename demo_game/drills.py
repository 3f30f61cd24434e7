"""Match lifecycle drills of the embedded launcher: a bot that crashes and comes back
with its seat, a host that dies (or leaves) mid-match. Plus the seat file they use.

A seat file is what a game would persist to survive its own crash: the lobby's
``session.reconnect_token`` (and, for the logs, the peer id it belongs to). A
process started with ``--seat-file PATH`` takes that seat back with
``netcode.connect_sync(url, rejoin_token=...)``: same peer id, same entity.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from .cli import Options
from .procs import BotProcesses

__all__ = ["BOT_DOWN_S", "Drills", "load_seat", "save_seat"]

# How long the dropped bot stays dead before it is restarted: long enough for
# everyone to see "reconnecting..." (Python's start-up adds about a second more).
BOT_DOWN_S = 1.0
# The seat file is tiny; anything bigger is not ours.
_MAX_SEAT_BYTES = 4096


def save_seat(path: str, peer_id: str, token: str | None) -> None:
    """Write the seat atomically, readable by this user only (the token is a secret)."""
    if token is None:
        return
    tmp = Path(f"{path}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"peer_id": peer_id, "token": token}, f)
    os.replace(tmp, path)


def load_seat(path: str) -> dict[str, str] | None:
    """The saved seat, or None when there is none (or it is unreadable: join anew)."""
    try:
        raw = Path(path).read_bytes()[:_MAX_SEAT_BYTES]
        seat = json.loads(raw)
    except (OSError, ValueError):
        return None
    ok = isinstance(seat, dict) and all(isinstance(seat.get(k), str) for k in ("peer_id", "token"))
    return {"peer_id": seat["peer_id"], "token": seat["token"]} if ok else None


class Drills:
    """Runs the scheduled drills from the frame loop (``tick``) or on a key press."""

    def __init__(self, children: BotProcesses, opts: Options, seats: dict[str, str]) -> None:
        self.children = children
        self.seats = seats  # bot tag -> its seat file
        self.opts = opts
        self.drop_at: float | None = None
        self.kill_host_at: float | None = None
        self.stop_host_at: float | None = None
        self.started = False
        self._respawn: tuple[float, str] | None = None
        self.log: list[dict[str, Any]] = []

    def start(self, now: float) -> None:
        """The schedule counts from when the whole match is up (on a slow machine start-up
        takes a while; a drill before everyone joined would show nothing)."""
        self.started = True
        self.drop_at = _at(now, self.opts.bot_drop_after if "bot1" in self.seats else None)
        self.kill_host_at = _at(now, self.opts.kill_host_after)
        self.stop_host_at = _at(now, self.opts.stop_host_after)
        self._note("match_up", "")

    def tick(self, now: float, ready: bool = True) -> None:
        if not self.started:
            if ready:
                self.start(now)
            return
        if self.drop_at is not None and now >= self.drop_at and self.drop_bot("bot1", now):
            self.drop_at = None
        if self._respawn is not None and now >= self._respawn[0]:
            tag = self._respawn[1]
            self._respawn = None
            self.children.respawn(tag)
            self._note("bot_respawned", tag)
        if self.kill_host_at is not None and now >= self.kill_host_at:
            self.kill_host_at = None
            self.end_host(signal.SIGKILL)
        if self.stop_host_at is not None and now >= self.stop_host_at:
            self.stop_host_at = None
            self.end_host(signal.SIGTERM)

    def drop_bot(self, tag: str, now: float) -> bool:
        """Crash a bot (SIGKILL: no goodbye); it is restarted BOT_DOWN_S later. Only once
        it saved its seat (else it would come back as someone new)."""
        seat = load_seat(self.seats.get(tag, ""))
        if seat is None or self._respawn is not None:
            return False
        if self.children.kill(tag, signal.SIGKILL) is None:
            return False
        self._note("bot_killed", tag, peer=seat["peer_id"])
        self._respawn = (now + BOT_DOWN_S, tag)
        return True

    def end_host(self, sig: int) -> None:
        """SIGKILL: the host crashes; SIGTERM: it leaves cleanly (like closing its window)."""
        if self.children.kill("host", sig) is not None:
            self._note("host_killed" if sig == signal.SIGKILL else "host_stopped", "host")

    def _note(self, event: str, tag: str, **extra: Any) -> None:
        self.log.append({"t": round(time.time(), 3), "event": event, "tag": tag, **extra})


def _at(start: float, after: float | None) -> float | None:
    return None if not after else start + after
