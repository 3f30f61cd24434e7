"""Micro benchmark of the lobby message codec (not a test).

Run: ``.venv/bin/python -m benchmarks.lobby_codec [--label after] [--number 20000]``.
Measures µs per parse / serialize of typical frames in this process and stores them
under ``--label`` in benchmarks/results/lobby_codec.json, keeping the other labels
there, then prints a table of every label side by side. ``before`` is the
hand-written codec of commit c9b5e36, measured right before ``after`` with::

    git archive c9b5e36 netcode | tar -x -C /tmp/old && cp -r benchmarks /tmp/old
    (cd /tmp/old && python -m benchmarks.lobby_codec --label before --results $PWD/...)
"""

from __future__ import annotations

import argparse
import json
import platform
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from netcode.lobby import messages as m

__all__ = ["main", "measure"]

RESULTS = Path(__file__).resolve().parent / "results" / "lobby_codec.json"


def _sdp(size: int) -> str:
    """A fake SDP body of about ``size`` characters (what an offer mostly is)."""
    line = "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host generation 0\r\n"
    return ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" + line * (size // len(line) + 1))[:size]


def _frames() -> dict[str, tuple[str, m.Message]]:
    """name -> (client or server text, the message it decodes to)."""
    signal = m.SendSignal(to="peer-b", kind="offer", data={"sdp": _sdp(1400), "type": "offer"})
    joined = m.RoomJoined(
        room="K7QX2M",
        peer_id="peer-0",
        peers=tuple(f"peer-{i}" for i in range(1, 9)),
        max_players=16,
        metadata={"game": "pong", "map": "arena"},
        host="peer-1",
        token="t" * 32,
        token_expires_s=30.0,
    )
    create = m.CreateRoom(max_players=4, metadata={"game": "pong"}, rid=7)
    join = m.JoinRoom(room="K7QX2M", rid=8)
    return {
        "signal_1.5KB": (m.serialize(signal), signal),
        "create_room": (m.serialize(create), create),
        "join_room": (m.serialize(join), join),
        "room_joined_8_peers": (m.serialize(joined), joined),
    }


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    """Best of 5 runs, in µs per call (the minimum is the least disturbed run)."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def measure(number: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (text, message) in _frames().items():
        origin = message.ORIGIN
        parse_us = _per_call_us(partial(m.parse, text, origin=origin), number)
        ser_us = _per_call_us(partial(m.serialize, message), number)
        results[name] = {"parse_us": round(parse_us, 3), "serialize_us": round(ser_us, 3)}
    text = _frames()["signal_1.5KB"][0]

    def relay() -> str:
        # What the lobby does per relayed signal: parse, re-stamp, serialize.
        msg = m.parse_client(text)
        assert isinstance(msg, m.SendSignal)
        return m.serialize(m.SignalMsg(sender="peer-a", kind=msg.kind, data=msg.data))

    results["relay"] = {"parse+serialize_us": round(_per_call_us(relay, number), 3)}
    return results


def _table(runs: dict[str, Any]) -> str:
    labels: list[str] = [label for label in ("before", "after") if label in runs]
    labels += [label for label in runs if label not in labels and label != "meta"]
    rows = [("frame", "op", *[f"{label} µs" for label in labels])]
    first = runs[labels[0]]
    for frame, ops in first.items():
        for op in ops:
            rows.append((frame, op, *[f"{runs[label][frame][op]:.2f}" for label in labels]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="key to store this run under")
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to update")
    args = parser.parse_args(argv)
    path: Path = args.results
    runs: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    runs[args.label] = measure(args.number)
    runs["meta"] = {"python": platform.python_version(), "machine": platform.machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=2) + "\n")
    print(_table(runs))


if __name__ == "__main__":
    main()
