"""The JS client's own unit tests (js/test/*.test.js, node's test runner) from pytest.

So ``make test`` covers them: the codec against the hex vectors parsed from
docs/PROTOCOL.md 2.10 and docs/STATE_SYNC.md 4.5, limits, chunking, acks, snapshots.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

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
