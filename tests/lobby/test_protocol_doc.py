"""The examples in docs/PROTOCOL.md section 1.7 are test vectors: they must decode.

A client written from the spec alone would send and expect exactly those frames.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from netcode.lobby import messages as m

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def _exchange() -> list[tuple[m.Origin, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### 1.7", 1)[1].split("```", 2)[1]
    frames: list[tuple[m.Origin, str]] = []
    for line in section.splitlines():
        if match := re.match(r"(\w) → (\w)\s+(\{.*)", line):
            origin: m.Origin = "server" if match.group(1) == "S" else "client"
            frames.append((origin, match.group(3)))
        elif line.startswith(" ") and frames:  # a wrapped frame continues
            origin, start = frames[-1]
            frames[-1] = (origin, start + line.strip())
    return frames


def test_the_doc_has_an_exchange() -> None:
    frames = _exchange()
    assert len(frames) >= 10
    assert {origin for origin, _ in frames} == {"client", "server"}


@pytest.mark.parametrize(("origin", "frame"), _exchange())
def test_documented_frames_decode_and_reencode(origin: m.Origin, frame: str) -> None:
    message = m.parse(frame, origin=origin)
    original = json.loads(frame)
    again = json.loads(m.serialize(message))
    # Re-encoding keeps every documented field (it may add defaults such as "v").
    assert original.items() <= again.items()
