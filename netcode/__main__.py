"""Command line: ``netcode lobby ...`` (also ``python -m netcode``).

Benchmarks are not part of the installed package: run them from a source
checkout with ``python -m benchmarks.latency`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_USAGE = """usage: netcode <command> [options]

commands:
  lobby    run the lobby/signaling server   (netcode lobby --help)

benchmarks run from a source checkout: python -m benchmarks.latency --help
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "lobby":
        from .net.lobby_cli import cli_main

        return cli_main(rest)
    print(f"netcode: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
