"""Command line: ``netcode lobby ...``, ``netcode bench ...`` (also ``python -m netcode``)."""

from __future__ import annotations

import sys

__all__ = ["main"]

_USAGE = """usage: netcode <command> [options]

commands:
  lobby    run the lobby/signaling server   (netcode lobby --help)
  bench    run the latency benchmarks       (netcode bench --help)
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "lobby":
        from .net.lobby_server import cli_main

        return cli_main(rest)
    if command == "bench":
        try:
            from benchmarks.latency import main as bench_main
        except ImportError:
            print("netcode bench needs the source checkout's benchmarks/ package", file=sys.stderr)
            return 2
        return bench_main(rest)
    print(f"netcode: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
