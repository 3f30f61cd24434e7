"""Lobby message codec: round trips, and only LobbyProtocolError out of parse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import IceServer
from netcode.errors import LobbyProtocolError
from netcode.lobby import messages as m

from .strategies import by_type, json_values


@pytest.mark.parametrize("cls", list(by_type), ids=lambda c: c.__name__)
def test_parse_serialize_round_trip(cls: type[m.Message]) -> None:
    @given(by_type[cls])
    def round_trip(message: m.Message) -> None:
        assert type(message) is cls
        text = m.serialize(message)
        text.encode("utf-8")  # what goes on the wire is always valid UTF-8
        assert m.parse(text, origin=message.ORIGIN, max_bytes=2**24) == message

    round_trip()


def test_every_message_type_has_a_strategy() -> None:
    assert set(by_type) == set(m.CLIENT_TYPES) | set(m.SERVER_TYPES)


@given(st.text(max_size=300), st.sampled_from(["client", "server"]))
def test_arbitrary_text_raises_only_protocol_errors(text: str, origin: m.Origin) -> None:
    try:
        m.parse(text, origin=origin)
    except LobbyProtocolError as exc:
        assert exc.code


@given(
    st.dictionaries(
        st.sampled_from(["type", "rid", "room", "to", "kind", "data", "metadata", "v", "from"]),
        json_values,
        max_size=6,
    ),
    st.sampled_from(sorted(c.TYPE for c in m.CLIENT_TYPES)),
    st.sampled_from(["client", "server"]),
)
def test_arbitrary_objects_raise_only_protocol_errors(
    obj: dict[str, Any], kind: str, origin: m.Origin
) -> None:
    """Right type name, arbitrary fields: the fields are validated, not trusted."""
    obj["type"] = kind
    try:
        msg = m.parse(json.dumps(obj), origin=origin)
    except LobbyProtocolError:
        return
    assert kind == msg.TYPE
    m.check(msg)


def _code(text: str | bytes, origin: m.Origin = "client", max_bytes: int = 65_536) -> str:
    with pytest.raises(LobbyProtocolError) as info:
        m.parse(text, origin=origin, max_bytes=max_bytes)
    return info.value.code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("", "bad_json"),
        ('{"type": "join_room", "room": NaN}', "bad_json"),
        ('{"type": "join_room", "room": Infinity}', "bad_json"),
        ("[1, 2]", "bad_message"),
        ('"hello"', "bad_message"),
        ('{"room": "ABCDEF"}', "bad_message"),
        ('{"type": 7}', "bad_message"),
        ('{"type": "explode"}', "unknown_type"),
        ('{"type": "welcome", "peer_id": "x"}', "unknown_type"),  # server-only type
        ('{"type": "join_room", "v": 2, "room": "ABCDEF"}', "unsupported_version"),
        ('{"type": "join_room", "room": 12}', "bad_message"),
        ('{"type": "join_room"}', "bad_message"),
        ('{"type": "join_room", "room": ""}', "bad_message"),
        ('{"type": "create_room", "max_players": true}', "bad_message"),
        ('{"type": "create_room", "max_players": 2.5}', "bad_message"),
        ('{"type": "create_room", "max_players": 0}', "bad_message"),
        ('{"type": "create_room", "private": "yes"}', "bad_message"),
        ('{"type": "create_room", "metadata": [1]}', "bad_message"),
        ('{"type": "leave_room", "rid": true}', "bad_message"),
        ('{"type": "leave_room", "rid": 1e300}', "bad_message"),
        ('{"type": "leave_room", "rid": 9007199254740993}', "bad_message"),
        ('{"type": "signal", "to": "p", "kind": "hack", "data": {}}', "bad_message"),
        ('{"type": "signal", "to": "p", "kind": "offer", "from": "x"}', "forbidden_field"),
        # v is the JSON integer 1 or absent; booleans and floats are not it.
        ('{"type": "leave_room", "v": true}', "unsupported_version"),
        ('{"type": "leave_room", "v": 1.0}', "unsupported_version"),
        ('{"type": "leave_room", "v": 1e0}', "unsupported_version"),
        ('{"type": "leave_room", "v": "1"}', "unsupported_version"),
        ('{"type": "leave_room", "v": 0}', "unsupported_version"),
        # Integer fields take JSON integers only, like v.
        ('{"type": "create_room", "max_players": 4.0}', "bad_message"),
        ('{"type": "create_room", "max_players": 4e0}', "bad_message"),
        ('{"type": "leave_room", "rid": 1.0}', "bad_message"),
        # signal data is required: absent and null (= absent) are refused.
        ('{"type": "signal", "to": "p", "kind": "bye"}', "bad_message"),
        ('{"type": "signal", "to": "p", "kind": "bye", "data": null}', "bad_message"),
        # Join codes: blanks stripped first, then 1..16 characters.
        ('{"type": "join_room", "room": "    "}', "bad_message"),
        ('{"type": "join_room", "room": " ABCDEFGHJKMNPQRST "}', "bad_message"),
        # A lone surrogate, anywhere (see also test_abuse.py).
        ('{"type": "join_room", "room": "AB\\ud800"}', "bad_message"),
        ('{"type": "explode\\udfff"}', "bad_message"),
    ],
)
def test_malformed_client_messages(text: str, code: str) -> None:
    assert _code(text) == code


def test_binary_frames_and_size_limit() -> None:
    assert _code(b'{"type":"leave_room"}') == "binary_frame"
    big = json.dumps({"type": "signal", "to": "p", "kind": "offer", "data": "x" * 2000})
    assert _code(big, max_bytes=1024) == "too_large"
    # The cap counts UTF-8 bytes, not characters: 600 'é' are 1200 bytes.
    accented = json.dumps({"type": "join_room", "room": "A", "pad": "é" * 600}, ensure_ascii=False)
    assert len(accented) < 1024 < len(accented.encode())
    assert _code(accented, max_bytes=1024) == "too_large"


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    deep = '{"type":"signal","to":"p","kind":"offer","data":' + "[" * 5000 + "]" * 5000 + "}"
    assert _code(deep, max_bytes=2**20) in ("bad_json", "bad_message")
    nested = "[" * 40 + "]" * 40
    text = '{"type":"signal","to":"p","kind":"offer","data":' + nested + "}"
    assert _code(text) == "bad_message"


def test_huge_integer_is_bad_json_not_a_crash() -> None:
    assert _code('{"type":"leave_room","rid":' + "9" * 5000 + "}") == "bad_json"


def test_error_carries_the_rid_of_the_offending_request() -> None:
    with pytest.raises(LobbyProtocolError) as info:
        m.parse('{"type":"join_room","room":5,"rid":"abc"}', origin="client")
    assert info.value.rid == "abc"


def test_client_may_send_version_one_and_unknown_fields() -> None:
    msg = m.parse('{"type":"join_room","v":1,"room":"abc","extra":{"x":1}}', origin="client")
    assert msg == m.JoinRoom(room="abc")


def test_signal_from_is_server_side_only() -> None:
    relayed = m.parse('{"type":"signal","from":"peer1","kind":"bye"}', origin="server")
    assert relayed == m.SignalMsg(sender="peer1", kind="bye")
    assert json.loads(m.serialize(relayed))["from"] == "peer1"


def test_constructors_validate() -> None:
    with pytest.raises(LobbyProtocolError):
        m.JoinRoom(room="")
    with pytest.raises(LobbyProtocolError):
        m.SendSignal(to="p", kind="offer", data={1: "non-string key"})
    with pytest.raises(LobbyProtocolError):
        m.SendSignal(to="p", kind="offer", data=float("nan"))
    with pytest.raises(LobbyProtocolError):
        m.PeerLeftMsg(room="R", peer_id="p", reason="vanished")


def test_serialize_rechecks_mutated_payloads() -> None:
    msg = m.SendSignal(to="p", kind="offer", data={"ok": 1})
    msg.data["bad"] = object()
    with pytest.raises(LobbyProtocolError):
        m.serialize(msg)


def test_welcome_normalises_a_single_url() -> None:
    welcome = m.Welcome(peer_id="p", ice_servers=(IceServer(urls="stun:example.org"),))
    assert welcome.ice_servers[0].urls == ("stun:example.org",)
    assert m.parse(m.serialize(welcome), origin="server") == welcome
    wire = json.loads(m.serialize(welcome))
    assert wire["ice_servers"] == [{"urls": ["stun:example.org"]}]
    assert wire["v"] == m.PROTOCOL_VERSION


@pytest.mark.parametrize("v", ["", ',"v":1', ',"v":null'])
def test_version_one_or_absent_is_accepted(v: str) -> None:
    assert m.parse('{"type":"leave_room"' + v + "}", origin="client") == m.LeaveRoom()


def test_from_null_means_absent() -> None:
    msg = m.parse('{"type":"signal","to":"p","kind":"bye","data":{},"from":null}', origin="client")
    assert msg == m.SendSignal(to="p", kind="bye", data={})


@pytest.mark.parametrize("data", ["{}", "0", "false", '""', "[]"])
def test_signal_data_may_be_any_value_but_null(data: str) -> None:
    msg = m.parse('{"type":"signal","to":"p","kind":"bye","data":' + data + "}", origin="client")
    assert isinstance(msg, m.SendSignal) and msg.data == json.loads(data)


def test_signal_data_is_required_by_the_constructor_too() -> None:
    with pytest.raises(LobbyProtocolError, match="data"):
        m.SendSignal(to="p", kind="bye", data=None)
    assert m.SendSignal(to="p", kind="bye", data={}).to_wire()["data"] == {}


def test_join_code_is_stripped_before_its_length_is_checked() -> None:
    padded = json.dumps({"type": "join_room", "room": " " * 20 + "k7qx2m\t\n" + " " * 20})
    assert m.parse(padded, origin="client") == m.JoinRoom(room="k7qx2m")
    assert m.JoinRoom(room="  ABCDEF ").room == "ABCDEF"


def test_a_surrogate_in_rid_is_refused_without_echoing_it() -> None:
    with pytest.raises(LobbyProtocolError) as info:
        m.parse('{"type":"leave_room","rid":"r\\ud800"}', origin="client")
    assert (info.value.code, info.value.rid) == ("bad_message", None)
    with pytest.raises(LobbyProtocolError) as info:
        m.parse('{"type":"leave_room","rid":"ok","x":["\\udc00"]}', origin="client")
    assert (info.value.code, info.value.rid) == ("bad_message", "ok")


def test_each_type_name_is_its_msgspec_tag_and_origin_matches_its_registry() -> None:
    for origin, types in (("client", m.CLIENT_TYPES), ("server", m.SERVER_TYPES)):
        for cls in types:
            assert cls.__struct_config__.tag == cls.TYPE
            assert origin == cls.ORIGIN
        assert len({cls.TYPE for cls in types}) == len(types)


def test_request_version_and_from_are_checked_by_the_constructor_too() -> None:
    with pytest.raises(LobbyProtocolError) as info:
        m.LeaveRoom(v=2)
    assert info.value.code == "unsupported_version"
    with pytest.raises(LobbyProtocolError) as info:
        m.SendSignal(to="p", kind="bye", data={}, forbidden_from="x")  # type: ignore[arg-type]
    assert info.value.code == "forbidden_field"
    assert "from" not in m.serialize(m.SendSignal(to="p", kind="bye", data={}))


def test_defaults_are_written_and_none_is_left_out() -> None:
    """The wire rule the old encoder had: None means absent, other defaults are sent."""
    assert m.serialize(m.CreateRoom()) == (
        '{"type":"create_room","v":1,"private":false,"metadata":{},"topology":"mesh"}'
    )
    assert m.serialize(m.SignalMsg(sender="a", kind="bye")) == (
        '{"type":"signal","from":"a","kind":"bye","data":null}'
    )
    assert m.serialize(m.Ok(rid=0)) == '{"type":"ok","rid":0}'
