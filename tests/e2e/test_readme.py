"""The README's quick start runs as written (a new user's first contact)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import TIMESCALE

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_readme_quick_start_runs(tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_python_blocks(ROOT / "README.md")[0], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * TIMESCALE,
    )
    assert done.returncode == 0, done.stderr
    assert "EventReceived(" in done.stdout and "'chat': 'hi'" in done.stdout
    assert "PeerStats(" in done.stdout
