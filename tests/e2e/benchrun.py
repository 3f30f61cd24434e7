"""Run a benchmark as a subprocess, as a user would, and load the JSON it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import TIMESCALE

__all__ = ["ROOT", "run_bench"]

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, out: Path, result: str, *args: str, timeout_s: float) -> dict[str, Any]:
    """``python -m benchmarks.<module> --quick <args> --out <out>``; it must exit 0;
    returns ``out/<result>`` parsed. ``timeout_s`` is scaled by TIMESCALE."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--quick", *args, "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s * TIMESCALE,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc: dict[str, Any] = json.loads((out / result).read_text())
    return doc
