"""The JS codec against Python's msgpack and netcode's payload checks (no browser).

Python encodes seeded random payloads; node decodes and re-encodes each one with
js/src/msgpack.js; Python decodes the result. Values must come back equal and of
the same type (except integral floats: JavaScript has one number type, so 2.0
returns as the int 2, docs/PROTOCOL.md 2.11). Payloads at and just over each
limit must be accepted or refused by both implementations alike.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from typing import Any

import msgpack
import pytest

from netcode.config import Limits
from netcode.errors import EncodeError
from netcode.protocol import wire
from tests.browser.conftest import JS_DIR
from tests.conftest import TIMESCALE, require_service

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120 * TIMESCALE)

LIMITS = Limits()


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**63), 2**64 - 1)
    if kind == 2:
        return rng.randint(-(2**53), 2**53)
    if kind == 3:
        return rng.choice([0.5, -2.0, 1e300, -0.0, math.inf, math.nan, 0.1, rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return rng.randint(-200, 200)
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    alphabet = "ab€😀\x00é"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(20)))


def _value(rng: random.Random, depth: int) -> Any:
    if depth >= 5 or rng.random() < 0.4:
        return _scalar(rng)
    n = rng.randrange(6)
    if rng.random() < 0.5:
        return [_value(rng, depth + 1) for _ in range(n)]
    keys = [
        rng.choice([rng.randint(-(2**63), 2**64 - 1), rng.randint(-5, 5), f"k{rng.randrange(9)}"])
        for _ in range(n)
    ]
    return {k: _value(rng, depth + 1) for k in keys}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type; an integral float may come back as an int."""
    if isinstance(a, float):
        if math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        if a.is_integer() and not (a == 0 and math.copysign(1, a) < 0):
            return type(b) in (int, float) and b == a
        return type(b) is float and b == a and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _js_roundtrip(payloads: list[bytes]) -> list[str]:
    node = shutil.which("node")
    require_service(node is not None, "node (Node.js >= 20) on PATH")
    assert node is not None
    proc = subprocess.run(
        [node, str(JS_DIR / "scripts" / "roundtrip.mjs")],
        input="\n".join(p.hex() for p in payloads) + "\n",
        capture_output=True,
        text=True,
        timeout=60 * TIMESCALE,
        check=True,
    )
    out = proc.stdout.splitlines()
    assert len(out) == len(payloads), proc.stderr[-2000:]
    return out


def _pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def test_random_payloads_roundtrip_through_js() -> None:
    rng = random.Random(13)
    values = [_value(rng, 0) for _ in range(600)]
    results = _js_roundtrip([_pack(v) for v in values])
    assert len(results) == len(values)
    for value, hexed in zip(values, results, strict=True):
        assert not hexed.startswith("ERR"), (value, hexed)
        back = msgpack.unpackb(bytes.fromhex(hexed), strict_map_key=False, raw=False)
        assert _same(value, back), (value, back)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _containers(n: int) -> list[Any]:
    """A payload of exactly ``n`` arrays (the root, two halves, one spare), each short."""
    half = (n - 4) // 2
    root: list[Any] = [[[] for _ in range(half)], [[] for _ in range(half)], []]
    if n - 4 - 2 * half:
        root.append([])
    return root


def _python_refuses(value: Any) -> bool:
    try:
        wire.check_payload(value, LIMITS)
    except EncodeError:
        return True
    return False


def test_limits_agree_with_python() -> None:
    m = LIMITS
    cases = [
        _nested(m.max_depth),
        _nested(m.max_depth + 1),
        [0] * m.max_container_len,
        [0] * (m.max_container_len + 1),
        {i: 0 for i in range(m.max_container_len + 1)},
        "é" * (m.max_str_len // 2),
        "é" * (m.max_str_len // 2 + 1),
        {"k" * (m.max_str_len + 1): 1},
        _containers(m.max_containers),
        _containers(m.max_containers + 1),
    ]
    results = _js_roundtrip([_pack(v) for v in cases])
    verdicts = [
        (_python_refuses(v), r.startswith("ERR DecodeError"))
        for v, r in zip(cases, results, strict=True)
    ]
    assert [py for py, _ in verdicts] == [
        False,
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
        True,
    ]
    assert [js for _, js in verdicts] == [py for py, _ in verdicts]
