"""``python -m demo_game``: see ``python -m demo_game --help``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from .app import run
from .cli import parse_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:  # interrupted before the match started; run() cleaned up
        return 130


if __name__ == "__main__":
    sys.exit(main())
