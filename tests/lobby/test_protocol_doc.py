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


def _section(title: str) -> str:
    """The text of one ``### x.y`` section of PROTOCOL.md."""
    text = DOC.read_text(encoding="utf-8")
    return text.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def _table_names(section: str) -> set[str]:
    """First-column names (between backticks) of the markdown tables in a section."""
    return set(re.findall(r"^\s*\|\s*`([a-z_]+)`", section, flags=re.MULTILINE))


def test_every_lobby_message_type_is_documented_in_its_direction() -> None:
    assert _table_names(_section("1.4")) == {c.TYPE for c in m.CLIENT_TYPES}
    assert _table_names(_section("1.5")) == {c.TYPE for c in m.SERVER_TYPES}


def test_every_lobby_error_code_the_code_can_send_is_documented() -> None:
    """Codes grepped from the sources that produce them, so a new one cannot go unlisted."""
    from netcode.lobby import states

    root = DOC.parents[1] / "netcode" / "lobby"
    source = "".join(path.read_text() for path in sorted(root.glob("*.py")))
    codes = set(re.findall(r'code="([a-z_]+)"', source))
    codes |= set(re.findall(r'_Refusal\(\s*"([a-z_]+)"', source))
    codes |= set(states.ILLEGAL_CODE.values()) | {states.NOT_WAITING}
    assert len(codes) >= 23
    assert {"banned", "bad_token", "not_owner", "room_locked", "peer_reconnecting"} <= codes
    assert codes <= _table_names(_section("1.8"))


def test_every_signal_kind_and_data_channel_type_is_documented() -> None:
    from netcode.protocol.wire import MsgType

    assert _table_names(_section("2.1")) >= set(m.SIGNAL_KINDS) - {"answer"}
    table = _section("2.4")
    for kind in MsgType:
        assert re.search(rf"^\|\s*{kind.value}\s*\|\s*{kind.name}\s*\|", table, re.MULTILINE), kind


def test_every_close_reason_is_documented() -> None:
    """The 1008/1013 reasons the server can send are in 1.9, word for word."""
    root = DOC.parents[1] / "netcode"
    source = (root / "lobby" / "rooms.py").read_text()
    source += (root / "net" / "lobby_server.py").read_text()
    reasons = set(re.findall(r'_kick\(conn, "([^"]+)"', source))
    reasons |= set(re.findall(r'CloseConnection\(CLOSE_[A-Z_]+, "([^"]+)"\)', source))
    reasons |= set(re.findall(r'why = "([^"]+)"', source))
    reasons |= set(re.findall(r'CLOSE_POLICY_VIOLATION, "([^"]+)"', source))
    assert len(reasons) >= 6, reasons
    section = _section("1.9")
    for reason in reasons:
        assert f"`{reason}`" in section, reason


def test_every_lobby_limit_is_documented_for_users() -> None:
    """Each LobbyConfig field is named in LOBBY.md, each limit in PROTOCOL.md 1.10
    and LOBBY.md's "Limits and abuse" table, each CLI flag in LOBBY.md."""
    import dataclasses

    from netcode.config import LobbyConfig
    from netcode.net.lobby_cli import _parser

    lobby_doc = (DOC.parent / "LOBBY.md").read_text(encoding="utf-8")
    abuse = lobby_doc.split("## Limits and abuse", 1)[1].split("\n## ", 1)[0]
    limits = _section("1.10")
    for f in dataclasses.fields(LobbyConfig):
        assert f"`{f.name}`" in lobby_doc, f.name
        if f.name.startswith("max_") or f.name.endswith(("_per_s", "_burst")):
            assert f"`{f.name}`" in limits, f.name
            assert f"`{f.name}`" in abuse, f.name
    flags = {o for a in _parser()._actions for o in a.option_strings if o.startswith("--")}
    for flag in flags - {"--help"}:
        assert f"`{flag}" in lobby_doc, flag
