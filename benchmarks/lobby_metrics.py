"""What counting for /metrics costs per relayed signal (not a test).

Run: ``.venv/bin/python -m benchmarks.lobby_metrics [--n 200000]``.
Measures, in CPU time per relay, the server-side work of one relay without sockets
(``LobbyCore.receive`` of a client ``signal`` frame, then serializing the ``signal``
for the recipient, as ``LobbyServer._dispatch`` does) with and without the
observer's ``received()`` and ``sent()`` calls that feed /metrics, best of 5 rounds each.
"""

from __future__ import annotations

import argparse
import json
import time

from netcode.config import LobbyConfig
from netcode.lobby.messages import serialize
from netcode.lobby.rooms import LobbyCore, Output
from netcode.net.lobby_metrics import LobbyObserver

__all__ = ["main"]


def _room() -> tuple[LobbyCore, str]:
    """A core with A and B in one room; returns it and A's signal frame to B."""
    unlimited = LobbyConfig(
        rate_limit_per_s=1e9,
        rate_limit_burst=1e9,
        byte_rate_limit_per_s=1e12,
        byte_rate_burst=2**60,
    )
    core = LobbyCore(unlimited)
    core.connect(1, 0.0)
    core.connect(2, 0.0)
    (_, joined), *_ = core.receive(1, '{"type":"create_room"}', 0.0)
    core.receive(2, json.dumps({"type": "join_room", "room": joined.room}), 0.0)  # type: ignore[union-attr]
    peer_b = core.peer_id(2)
    sdp = "v=0 " + "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host " * 20
    frame = json.dumps({"type": "signal", "to": peer_b, "kind": "offer", "data": sdp})
    return core, frame


def _round(core: LobbyCore, frame: str, n: int, observer: LobbyObserver | None) -> float:
    t0 = time.process_time()
    now = 1.0
    for _ in range(n):
        if observer is not None:
            observer.received(1, now)
        out: Output = core.receive(1, frame, now)
        for conn_id, item in out:
            data = serialize(item).encode()  # type: ignore[arg-type]
            if observer is not None:
                observer.sent(conn_id, item, len(data))
    return (time.process_time() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args(argv)
    core, frame = _room()
    observer = LobbyObserver(core, "bench")
    plain, counted = [], []
    for _ in range(5):  # interleaved, so a busy neighbour hurts both alike
        plain.append(_round(core, frame, args.n, None))
        counted.append(_round(core, frame, args.n, observer))
    result = {
        "frame_bytes": len(frame),
        "relay_us_without_metrics": round(min(plain), 3),
        "relay_us_with_metrics": round(min(counted), 3),
        "overhead_us": round(min(counted) - min(plain), 3),
        "overhead_pct": round(100 * (min(counted) - min(plain)) / min(plain), 2),
        "observer_sent_call_us": round(_sent_only(observer, core, frame, args.n), 4),
        "relays_counted": observer.sent_by_type.get("signal", 0),
    }
    print(json.dumps(result, indent=2))
    return 0


def _signal_item(core: LobbyCore, frame: str) -> object:
    ((_, item),) = core.receive(1, frame, 1.0)
    return item


def _sent_only(observer: LobbyObserver, core: LobbyCore, frame: str, n: int) -> float:
    item = _signal_item(core, frame)
    sent = observer.sent
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            sent(2, item, 300)  # type: ignore[arg-type]
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


if __name__ == "__main__":
    raise SystemExit(main())
