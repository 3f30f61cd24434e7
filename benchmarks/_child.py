"""The child side of a benchmark's JSON-lines process (the parent side is
:class:`benchmarks._runner.JsonLinesChild`). Standard library only, so that a light
child (the lobby crowd) does not import aiortc for it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

__all__ = ["serve_json_lines"]


async def serve_json_lines(handler: object, limit: int = 1 << 24) -> None:
    """Answer ``{"id", "cmd", ...}`` lines on stdin with ``handler.cmd_<cmd>(**rest)``,
    one ``{"id", "ok", ...}`` line each on stdout, until EOF (the parent went away).
    ``limit``: the longest request line."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    while line := await reader.readline():
        request = json.loads(line)
        rid, cmd = request.pop("id"), request.pop("cmd")
        method = getattr(handler, f"cmd_{cmd}", None)
        try:
            if method is None:
                raise ValueError(f"unknown command {cmd!r}")
            reply: dict[str, Any] = {"id": rid, "ok": True, **(await method(**request))}
        except Exception as exc:  # reported to the parent, which raises or records it
            reply = {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
