"""The JS client's hand-written types (js/src/netcode.d.ts) checked by tsc.

js/test/types/usage.ts uses the API as docs/BROWSER.md shows it, with
``@ts-expect-error`` misuses, so a .d.ts drifting from the docs (or loosening to
``any``) fails here. TypeScript is a devDependency of js/ (``cd js && npm ci``; .ci/run
and ``make test`` install it when npm exists). js/test/dts.test.js (run by
test_js_unit.py) checks the exported names against src/netcode.js.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.browser.conftest import JS_DIR
from tests.conftest import TIMESCALE, require_service

__all__: list[str] = []

pytestmark = pytest.mark.timeout(180 * TIMESCALE)

TSC = JS_DIR / "node_modules" / ".bin" / "tsc"


def test_netcode_d_ts_type_checks_against_the_documented_usage() -> None:
    require_service(TSC.exists(), "typescript not installed: cd js && npm ci")
    require_service(shutil.which("node") is not None, "node (Node.js >= 20) on PATH")
    proc = subprocess.run(
        [str(TSC), "-p", "tsconfig.json", "--listFiles", "--pretty", "false"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=150 * TIMESCALE,
        check=False,
    )
    output = proc.stdout + proc.stderr
    # --listFiles prints ~90 lib paths too: show tsc's diagnostics, not the list.
    found = [line for line in output.splitlines() if "node_modules/typescript/lib" not in line]
    errors = [line for line in found if "error TS" in line]
    assert proc.returncode == 0 and not errors, "tsc found:\n" + "\n".join(found)[-6000:]
    # Both were part of the program (a tsconfig that matched nothing would not be).
    checked = {line.strip() for line in proc.stdout.splitlines()}
    assert str(JS_DIR / "src" / "netcode.d.ts") in checked, proc.stdout[-2000:]
    assert str(JS_DIR / "test" / "types" / "usage.ts") in checked, proc.stdout[-2000:]


def test_lockfile_matches_package_json() -> None:
    """``npm ci`` refuses a lockfile out of step with package.json; catch it without npm."""
    package = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((JS_DIR / "package-lock.json").read_text(encoding="utf-8"))
    root = lock["packages"][""]
    assert root.get("devDependencies") == package["devDependencies"]
    assert root.get("dependencies", {}) == package.get("dependencies", {})
    assert lock["packages"]["node_modules/typescript"]["version"].startswith("5.")
    assert package["scripts"]["typecheck"] == "tsc -p tsconfig.json"
