"""js/src/interpolation.js against netcode/protocol/interpolation.py, sample for sample.

The cases below run through Python's ``InterpolationBuffer``; the operations and
Python's answers are stored in js/test/fixtures/interpolation_vectors.json, which
js/test/interpolation.test.js replays through the JS buffer (node's test runner,
also run by tests/browser/test_js_unit.py). This test keeps the file equal to what
Python computes now, so the two buffers cannot drift apart unnoticed. After a
deliberate change of the Python policy, regenerate the file with
``.venv/bin/python -m tests.browser.test_js_interpolation``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

from netcode.protocol.interpolation import InterpolationBuffer

__all__ = ["build_vectors"]

VECTORS = Path(__file__).resolve().parents[2] / "js/test/fixtures/interpolation_vectors.json"

# Python keyword -> the JS constructor option of the same meaning.
_JS_OPTION = {
    "delay": "delay",
    "snapshot_rate": "snapshotRate",
    "max_extrapolation": "maxExtrapolation",
    "teleport": "teleport",
    "fields": "fields",
    "capacity": "capacity",
    "min_spacing": "minSpacing",
}


def _wire(value: Any) -> Any:
    """JSON-safe: NaN/inf as {"$f": "nan" | "inf" | "-inf"} (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def _entities(frame: dict[Any, dict[str, Any]]) -> list[list[Any]]:
    """A frame as [[id, fields], ...] in iteration order (ids may be int or str)."""
    return [[eid, dict(fields)] for eid, fields in frame.items()]


def _run(options: dict[str, Any], ops: list[list[Any]]) -> list[Any]:
    """Python's answer to every operation of one case."""
    buf = InterpolationBuffer(**options)
    out: list[Any] = []
    for op in ops:
        kind = op[0]
        if kind == "push":
            out.append(buf.push(op[1], {eid: fields for eid, fields in op[2]}))
        elif kind == "sample_at":
            out.append(_entities(buf.sample_at(op[1])))
        elif kind == "sample":
            out.append(_entities(buf.sample(op[1])))
        elif kind == "lag":
            out.append(buf.lag(op[1]))
        elif kind == "delay":
            buf.delay = op[1]
            out.append(None)
        elif kind == "max_extrapolation":
            buf.max_extrapolation = op[1]
            out.append(None)
        elif kind == "clear":
            buf.clear()
            out.append(None)
        else:  # "stats"
            out.append([buf.dropped_snapshots, buf.dropped_entities, len(buf), buf.newest_time])
    return out


def _grid(start: float, stop: float, step: float) -> list[list[Any]]:
    n = int((stop - start) / step)
    return [["sample_at", round(start + i * step, 9)] for i in range(n + 1)]


def _teleport_case() -> tuple[dict[str, Any], list[list[Any]]]:
    """A walker that jumps once, an entity that appears and one that disappears."""
    ops: list[list[Any]] = []
    for i in range(8):
        # A 110 px step between 4 and 5 (snaps), then 40 px (slides; extrapolated
        # 3 intervals ahead it would go 120 px, capped at teleport[x]).
        x = 10.0 * i + (100.0 if i >= 5 else 0.0) + (30.0 if i == 7 else 0.0)
        ents: list[list[Any]] = [["p", {"x": x, "y": 3 * i, "name": f"n{i}", "on": i % 2 == 0}]]
        if i >= 3:
            ents.append([2, {"x": -1.5 * i, "y": 0}])
        if i < 6:
            ents.append(["gone", {"x": i, "hp": None}])
        ops.append(["push", 1.0 + 0.1 * i, ents])
    ops += _grid(0.85, 2.5, 0.0125)
    ops += [["sample", 1.5], ["lag", 1.5], ["lag", 9.0], ["stats"]]
    return {"snapshot_rate": 10.0, "teleport": {"x": 50.0}, "max_extrapolation": 0.3}, ops


def _hostile_case() -> tuple[dict[str, Any], list[list[Any]]]:
    """Refused times, NaN/inf fields, overflowing values, a small capacity."""
    big = 1e308
    ops: list[list[Any]] = [
        ["push", 1.0, [["a", {"x": -big, "y": float("nan"), "z": 1}]]],
        ["push", 1.0, [["a", {"x": 0.0}]]],  # equal time: refused
        ["push", 1.001, [["a", {"x": 0.0}]]],  # closer than min_spacing: refused
        ["push", float("nan"), [["a", {"x": 0.0}]]],
        ["push", float("inf"), [["a", {"x": 0.0}]]],
        ["push", 1.1, [["a", {"x": big, "y": 2.0, "z": 3}], ["b", {"x": float("nan")}]]],
        ["push", 1.05, [["a", {"x": 0.0, "y": float("inf"), "z": 2}]]],  # out of order
        ["sample_at", 1.02],
        ["sample_at", 1.075],
        ["sample_at", 1.2],
        ["push", 1.2, [["a", {"x": 1.0, "y": 1.0, "z": True}]]],
        ["push", 1.3, [["a", {"x": 3.0, "y": 5.0, "z": False}]]],  # capacity 4: 1.0 goes
        ["push", 0.5, [["a", {"x": 7.0}]]],  # older than all while full: refused
        ["stats"],
        ["sample_at", 0.0],
        ["sample_at", 1.25],
        ["sample_at", 1.32],
        ["sample_at", 1.4],
        ["max_extrapolation", 0.0],
        ["sample_at", 1.4],
        ["max_extrapolation", 0.2],
        ["sample_at", 1.6],
        ["clear"],
        ["sample_at", 1.0],
        ["lag", 1.0],
        ["push", 2.0, [["a", {"x": 1}]]],
        ["sample_at", 5.0],
        ["stats"],
    ]
    return {"fields": ["x", "z"], "capacity": 4, "max_extrapolation": 0.05}, ops


def _random_case(seed: int) -> tuple[dict[str, Any], list[list[Any]]]:
    """Jittered, sometimes reordered or duplicated snapshots of 3 movers, random probes."""
    rng = random.Random(seed)
    rate = rng.choice((20.0, 30.0, 60.0))
    options: dict[str, Any] = {
        "snapshot_rate": rate,
        "teleport": {"x": rng.uniform(5, 40)},
        "max_extrapolation": rng.choice((0.0, 0.05, 0.1)),
        "capacity": rng.randint(2, 12),
    }
    ops: list[list[Any]] = []
    pos = {eid: [rng.uniform(-100, 100), rng.uniform(-100, 100)] for eid in (1, "two", 3)}
    t = 10.0
    for _ in range(40):
        t += rng.uniform(0.2, 1.8) / rate
        stamp = t - rng.uniform(0, 3) / rate if rng.random() < 0.15 else t
        ents: list[list[Any]] = []
        for eid, p in pos.items():
            p[0] += rng.uniform(-60, 60) if rng.random() < 0.1 else rng.uniform(-3, 3)
            p[1] += rng.uniform(-3, 3)
            if rng.random() < 0.9:
                fields = {"x": round(p[0], 3), "y": round(p[1], 3), "k": rng.randint(0, 9)}
                ents.append([eid, fields])
        ops.append(["push", round(stamp, 9), ents])
        for _ in range(rng.randint(0, 3)):
            ops.append(["sample", round(t + rng.uniform(-0.1, 0.3), 9)])
        if rng.random() < 0.05:
            ops.append(["delay", round(rng.uniform(0.0, 0.2), 6)])
    ops += [["lag", round(t, 9)], ["stats"]]
    return options, ops


def build_vectors() -> list[dict[str, Any]]:
    cases = [("teleport", *_teleport_case()), ("hostile", *_hostile_case())]
    cases += [(f"random-{seed}", *_random_case(seed)) for seed in range(5)]
    return [
        _wire(
            {
                "name": name,
                "options": {_JS_OPTION[k]: v for k, v in options.items()},
                "ops": ops,
                "expect": _run(options, ops),
            }
        )
        for name, options, ops in cases
    ]


def _render() -> str:
    return json.dumps(build_vectors(), separators=(",", ":")) + "\n"


def test_the_js_vectors_are_what_python_computes_now() -> None:
    stored = VECTORS.read_text(encoding="utf-8")
    assert stored == _render(), (
        f"{VECTORS} is stale: regenerate it with"
        " .venv/bin/python -m tests.browser.test_js_interpolation"
    )


def test_the_vectors_exercise_every_rule() -> None:
    """The replay is only as good as its cases: each policy branch shows up in them."""
    cases = {c["name"]: c for c in build_vectors()}
    hostile = cases["hostile"]["expect"]
    assert hostile[1:5] == [False] * 4, "equal, too close, NaN and inf times are refused"
    assert hostile[13][:2] == [5, 1], "dropped snapshots and the NaN entity are counted"
    walker = [
        dict(e)["p"]["x"]
        for op, e in zip(cases["teleport"]["ops"], cases["teleport"]["expect"], strict=True)
        if op[0] == "sample_at" and e
    ]
    steps = [abs(b - a) for a, b in itertools.pairwise(walker)]
    assert max(steps) == 110.0, "the teleport snaps in one step"
    assert walker[-1] == 250.0, "extrapolation stops at teleport[x] past the newest (200 + 50)"


if __name__ == "__main__":
    VECTORS.write_text(_render(), encoding="utf-8")
    print(f"wrote {VECTORS}")
