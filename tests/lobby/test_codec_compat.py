"""The msgspec codec against the hand-written one it replaced, and against itself.

``codec_golden.jsonl`` holds frames the hand-written encoder wrote (commit c9b5e36,
before the rewrite): hypothesis-drawn messages of every type plus hand-picked edges
(escapes, floats, big integers, ICE servers). Re-encoding them must give the same
bytes. The one known difference is the spelling of some floats (msgspec writes
``1e16`` and ``0.00006`` where Python's json wrote ``1e+16`` and ``6e-05``): same
value, same position, so those frames are compared with numbers masked.

:func:`messages.parse` has a fast path (msgspec's typed decoder) and a reference
path (json + the documented checks). Whenever the fast one accepts a frame, the
reference one must accept it too and build the same message; otherwise the
reference path alone decides the error. Mutated golden frames check that.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.errors import LobbyProtocolError
from netcode.lobby import messages as m

from .strategies import any_message, json_values

GOLDEN = [
    json.loads(line)
    # split("\n"), not splitlines(): frames hold raw U+2028 and friends.
    for line in (Path(__file__).parent / "codec_golden.jsonl").read_text("utf-8").split("\n")
    if line
]
CODES = {
    "binary_frame",
    "too_large",
    "bad_json",
    "bad_message",
    "unknown_type",
    "unsupported_version",
    "forbidden_field",
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _ordered(text: str) -> object:
    """The JSON value with object keys kept in order (as lists of pairs)."""
    return json.loads(text, object_pairs_hook=list)


def test_golden_frames_cover_every_message_type() -> None:
    assert {row["type"] for row in GOLDEN} == {c.TYPE for c in m._ALL_TYPES}
    assert len(GOLDEN) >= 600


def test_golden_frames_reencode_to_the_same_bytes() -> None:
    spelled_differently = 0
    for row in GOLDEN:
        message = m.parse(row["wire"], origin=row["origin"], max_bytes=2**24)
        again = m.serialize(message)
        if again == row["wire"]:
            continue
        # Only the spelling of a number may differ: same keys in the same order,
        # same escapes, same values.
        assert _NUMBER.sub("#", again) == _NUMBER.sub("#", row["wire"]), row["wire"]
        assert _ordered(again) == _ordered(row["wire"]), row["wire"]
        assert re.search(r"\d[eE]|0\.0000", row["wire"] + again), row["wire"]
        spelled_differently += 1
    assert spelled_differently <= len(GOLDEN) // 10


@given(any_message)
def test_encoding_is_stable_and_in_wire_order(message: m.Message) -> None:
    text = m.serialize(message)
    again = m.parse(text, origin=message.ORIGIN, max_bytes=2**24)
    assert again == message
    assert m.serialize(again) == text
    keys = [key for key, _ in _ordered(text)]  # type: ignore[attr-defined]
    assert keys[0] == "type"
    declared = [f.encode_name for f in msgspec.structs.fields(type(message))]
    assert keys[1:] == [k for k in declared if k in keys]


# --- fast path vs reference path ------------------------------------------------------


def _fast(text: str, origin: m.Origin) -> m.Message | None:
    try:
        message: m.Message = m._DECODERS[origin].decode(text)
    except Exception:  # the fast path's refusals are never shown: the reference decides
        return None
    return message


def _reference(text: str, origin: m.Origin) -> tuple[Any, ...]:
    try:
        return ("ok", m._parse_reference(text, origin))
    except LobbyProtocolError as exc:
        return ("error", exc.code, exc.rid)


def _check_frame(text: str, origin: m.Origin) -> None:
    try:
        m.parse(text, origin=origin, max_bytes=2**24)
    except LobbyProtocolError as exc:
        assert exc.code in CODES
    fast = _fast(text, origin)
    if fast is not None:
        assert _reference(text, origin) == ("ok", fast)


def _mutate(obj: dict[str, Any], key: str, how: str, value: Any) -> str:
    if how == "drop":
        obj.pop(key, None)
    elif how == "null":
        obj[key] = None
    else:
        obj[key] = value
    return json.dumps(obj, ensure_ascii=how != "raw", allow_nan=False)


_KEYS = sorted({k for row in GOLDEN for k in json.loads(row["wire"])} | {"from", "x", "type"})


@given(
    st.sampled_from(GOLDEN),
    st.sampled_from(["client", "server"]),
    st.sampled_from(_KEYS),
    st.sampled_from(["drop", "null", "set", "raw"]),
    json_values,
)
def test_mutated_frames_agree_and_raise_only_documented_codes(
    row: dict[str, Any], origin: m.Origin, key: str, how: str, value: Any
) -> None:
    _check_frame(_mutate(json.loads(row["wire"]), key, how, value), origin)


@given(st.sampled_from(GOLDEN), st.integers(0, 10_000), st.text(max_size=3))
def test_spliced_frames_agree_and_raise_only_documented_codes(
    row: dict[str, Any], at: int, insert: str
) -> None:
    wire = row["wire"]
    at %= len(wire) + 1
    _check_frame(wire[:at] + insert + wire[at + 1 :], row["origin"])
    _check_frame(wire[:at], row["origin"])


@given(st.text(max_size=200), st.sampled_from(["client", "server"]))
def test_arbitrary_text_agrees(text: str, origin: m.Origin) -> None:
    _check_frame(text, origin)


@pytest.mark.parametrize(
    ("escape", "code"),
    [
        ("from", "forbidden_field"),
        ("fro\\u006d", "forbidden_field"),
        ("\\u0066rom", "forbidden_field"),
    ],
)
def test_a_client_from_is_refused_however_it_is_spelled(escape: str, code: str) -> None:
    text = '{"type":"signal","rid":3,"to":"p","kind":"bye","data":{},"' + escape + '":"x"}'
    with pytest.raises(LobbyProtocolError) as info:
        m.parse(text, origin="client")
    assert (info.value.code, info.value.rid) == (code, 3)


def test_the_fast_path_refuses_what_it_cannot_vouch_for() -> None:
    """Frames the fast decoder must hand to the reference path (else codes drift)."""
    for text in [
        '{"type":"leave_room","v":true}',  # bool is not the integer 1
        '{"type":"leave_room","v":2}',  # unsupported_version, raised in __post_init__
        '{"type":"create_room","private":null}',  # null = absent: the reference path
        '{"type":"join_room","room":"AB\\ud800"}',  # lone surrogate
        '{"type":"signal","to":"p","kind":"bye","data":null}',  # data required
        '{"type":"welcome","peer_id":"p"}',  # a server type from a client
    ]:
        assert _fast(text, "client") is None, text
    assert m.parse('{"type":"create_room","private":null}', origin="client") == m.CreateRoom()
