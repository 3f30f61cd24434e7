"""Internet play in the NAT lab: connect time and echo RTT per path (direct, srflx, relay).

``python -m benchmarks.nat_lab [--runs N] [--pings N] [--quick] [--out PATH]`` (root,
``ip``, ``nft``, ``turnserver``; see :mod:`benchmarks._natlab`). Each case connects a
fresh pair of players ``--runs`` times through the lab's lobby and measures:

- connect time: the joiner's ``netcode.connect()`` call -> ``PeerConnected`` (lobby
  join, offer/answer through the lobby, ICE checks, DTLS, SCTP, channels open);
- echo RTT: 60 Hz state pings from the joiner, echoed by the other player;
- the path each side reports (``session.link_view(peer).path``).

Cases: ``direct`` (both players on the lab's internet, no NAT), ``srflx`` (two
port-restricted cone NATs, STUN only), ``cone+turn`` (the same with the lobby's TURN:
aioice takes the first pair that works, so some runs relay), ``relay`` (cone <->
symmetric), ``relay sym-sym`` and ``relay-only`` (two cones, policy "relay").
The lab's links add no delay (no netem on these machines): the figures are netcode's
and coturn's own cost plus the NAT timing, not a real internet's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._common import percentile
from benchmarks._natlab import LOBBY_URL, STUN_URL, NatLab, Player, available

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
STUN_ONLY = [{"urls": STUN_URL}]
# case -> (player a's place, player b's place, join arguments for both)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "direct": ("inet", "inet", {"ice": STUN_ONLY}),
    "srflx": ("cone0", "cone1", {"ice": STUN_ONLY}),
    "cone+turn": ("cone0", "cone1", {}),
    "relay": ("cone0", "sym0", {}),
    "relay sym-sym": ("sym0", "sym1", {}),
    "relay-only": ("cone0", "cone1", {"policy": "relay"}),
}


def _one_run(a: Player, b: Player, args: dict[str, Any], pings: int) -> dict[str, Any]:
    ida = a.call("join", url=LOBBY_URL, **args)
    idb = b.call("join", url=LOBBY_URL, room=ida["room"], **args)
    try:
        got = b.call("wait", n=1, timeout=20.0)
        if ida["peer_id"] not in got["connected"]:
            return {"ok": False, "why": got["ended"]}
        a.call("wait", n=1, timeout=20.0)
        pb = b.call("paths")["peers"][ida["peer_id"]]
        pa = a.call("paths")["peers"][idb["peer_id"]]
        rtt = b.call("ping", peer=ida["peer_id"], n=pings, hz=60.0)["rtt_ms"]
        return {
            "ok": True,
            "connect_ms": pb["connect_ms"],
            "path": [pb["path"], pa["path"]],
            "pair": [pb["pair"], pa["pair"]],
            "rtt_ms": rtt,
        }
    finally:
        a.call("leave")
        b.call("leave")


def _summary(runs: list[dict[str, Any]], pings: int) -> dict[str, Any]:
    ok = [r for r in runs if r["ok"]]
    connects = [r["connect_ms"] for r in ok]
    rtts = [x for r in ok for x in r["rtt_ms"]]
    return {
        "runs": len(runs),
        "connected": len(ok),
        "paths": dict(Counter("/".join(r["path"]) for r in ok)),
        "connect_ms_p50": statistics.median(connects) if connects else float("nan"),
        "connect_ms_max": max(connects, default=float("nan")),
        "rtt_ms_p50": percentile(rtts, 50),
        "rtt_ms_p99": percentile(rtts, 99),
        "echoes": f"{len(rtts)}/{pings * len(ok)}",
    }


def _table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| case | path (joiner/creator) | connected | connect p50 / max | RTT p50 / p99 | echoes |",
        "|---|---|---|---|---|---|",
    ]
    for case, s in results.items():
        paths = ", ".join(f"{k} x{v}" for k, v in s["paths"].items())
        lines.append(
            f"| {case} | {paths} | {s['connected']}/{s['runs']} "
            f"| {s['connect_ms_p50']:.0f} / {s['connect_ms_max']:.0f} ms "
            f"| {s['rtt_ms_p50']:.2f} / {s['rtt_ms_p99']:.2f} ms | {s['echoes']} |"
        )
    return "\n".join(lines)


def run(runs: int, pings: int) -> dict[str, Any]:
    with NatLab.create(("cone", "cone", "symmetric", "symmetric")) as lab:
        places = {
            "cone0": lab.homes[0],
            "cone1": lab.homes[1],
            "sym0": lab.homes[2],
            "sym1": lab.homes[3],
        }
        players = {name: lab.player(ns) for name, ns in places.items()}
        inet = (lab.player(lab.inet), lab.player(lab.inet))
        results: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        for case, (pa, pb, args) in CASES.items():
            a, b = (inet[0], inet[1]) if pa == "inet" else (players[pa], players[pb])
            raw[case] = [_one_run(a, b, args, pings) for _ in range(runs)]
            results[case] = _summary(raw[case], pings)
            print(f"{case}: {results[case]}", file=sys.stderr, flush=True)
    return {"summary": results, "runs": raw}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nat_lab", description=__doc__)
    p.add_argument("--runs", type=int, default=10, help="connects per case")
    p.add_argument("--pings", type=int, default=120, help="60 Hz echo pings per connect")
    p.add_argument("--quick", action="store_true", help="3 runs of 30 pings per case")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default results/)")
    args = p.parse_args(argv)
    missing = available()
    if missing is not None:
        print(f"nat_lab: needs {missing}", file=sys.stderr)
        return 2
    runs, pings = (3, 30) if args.quick else (args.runs, args.pings)
    started = time.time()
    data = run(runs, pings)
    data["meta"] = {"runs": runs, "pings": pings, "started": started, "quick": args.quick}
    name = "nat_lab-quick.json" if args.quick else "nat_lab.json"
    out = args.out or RESULTS / name
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(_table(data["summary"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
