"""The JS client's own unit tests (js/test/*.test.js, node's test runner) from pytest.

So ``make test`` covers them: the codec against the hex vectors parsed from
docs/PROTOCOL.md 2.10 and docs/STATE_SYNC.md 4.5, limits, chunking, acks, snapshots.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from demo_game.sim import Input, Player, move_player
from tests.browser.conftest import JS_DIR
from tests.conftest import TIMESCALE, require_service

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120 * TIMESCALE)


def test_js_unit_tests_pass() -> None:
    node = shutil.which("node")
    require_service(node is not None, "node (Node.js >= 20) on PATH")
    assert node is not None
    proc = subprocess.run(
        [node, "--test", *sorted(str(p) for p in (JS_DIR / "test").glob("*.test.js"))],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=100 * TIMESCALE,
        check=False,
    )
    summary = [line for line in proc.stdout.splitlines() if line.startswith("# ")]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in summary, summary
    passed = next(int(line.split()[-1]) for line in summary if line.startswith("# pass"))
    assert passed >= 8, summary


def test_js_prediction_moves_like_the_python_simulation() -> None:
    """js/demo/predict.js movePlayer == demo_game.sim.move_player, tick by tick,
    so the browser's prediction and the Python host never disagree on physics."""
    node = shutil.which("node")
    require_service(node is not None, "node (Node.js >= 20) on PATH")
    assert node is not None
    rng = random.Random(7)
    inputs = [(rng.choice((-1, 0, 1)), rng.choice((-1, 0, 1))) for _ in range(600)]
    script = (
        "import { movePlayer } from './demo/predict.js';"
        "let p = { x: 100, y: 500, vx: 0, vy: 0 }; const out = [];"
        f"for (const inp of {json.dumps(inputs)}) {{ p = movePlayer(p, inp); out.push(p); }}"
        "console.log(JSON.stringify(out));"
    )
    proc = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60 * TIMESCALE,
        check=True,
    )
    js = json.loads(proc.stdout)
    p = Player("me", 100.0, 500.0)
    for (dx, dy), got in zip(inputs, js, strict=True):
        p = move_player(p, Input(dx, dy))
        assert [got["x"], got["y"], got["vx"], got["vy"]] == pytest.approx(
            [p.x, p.y, p.vx, p.vy], abs=1e-9
        )
