"""``python -m demo_game``: see ``python -m demo_game --help``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from .app import run
from .cli import parse_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
