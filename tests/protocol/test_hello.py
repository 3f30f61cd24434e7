"""The hello (docs/PROTOCOL.md 2.1.1): build, parse, compare; hostile values."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import ChannelConfig, Limits, SessionConfig
from netcode.errors import DecodeError
from netcode.events import PeerLost
from netcode.protocol import hello
from netcode.protocol.hello import Hello
from netcode.protocol.link import LinkCore

__all__: list[str] = []

CHAT = ChannelConfig(label="chat", id=5, ordered=True)
BASE = SessionConfig(channels=(ChannelConfig.unreliable(), ChannelConfig.reliable_ordered(), CHAT))


def with_channels(*channels: ChannelConfig) -> SessionConfig:
    return dataclasses.replace(BASE, channels=channels)


def test_round_trip_through_json() -> None:
    ours = hello.hello_of(dataclasses.replace(BASE, snapshot_quantize={"x": 0.01}))
    text = json.dumps(hello.serialize(ours))
    assert hello.parse(json.loads(text)) == ours
    assert len(text) < 1_200, "three channels and the limits fit a small signal"


def test_default_hello_exact_fields() -> None:
    data = hello.serialize(hello.hello_of(SessionConfig()))
    assert data["v"] == 1
    assert data["channels"] == [
        {
            "id": 1,
            "label": "state",
            "ordered": False,
            "max_retransmits": 0,
            "max_packet_lifetime_ms": None,
        },
        {
            "id": 2,
            "label": "events",
            "ordered": True,
            "max_retransmits": None,
            "max_packet_lifetime_ms": None,
        },
    ]
    assert data["quantize"] is None
    assert data["limits"]["max_event_bytes"] == 1_048_576
    assert "max_state_bytes" not in data["limits"], "a sender-side SHOULD: not compared"


def test_channel_order_does_not_matter() -> None:
    a = hello.hello_of(with_channels(*BASE.channels))
    b = hello.hello_of(with_channels(*reversed(BASE.channels)))
    assert hello.differences(a, b) == []


def test_differences_name_what_differs_ours_first() -> None:
    ours = hello.hello_of(BASE)
    theirs = hello.hello_of(
        with_channels(
            ChannelConfig.unreliable(),
            ChannelConfig(label="events", id=2, ordered=False),
            ChannelConfig(label="voice", id=7),
        )
    )
    assert hello.differences(ours, theirs) == [
        'channel 2 "events": ordered true vs false',
        'channel 5 "chat": missing on the peer',
        'channel 7 "voice": missing on this side',
    ]
    detail = hello.check_remote(ours, {hello.HELLO_KEY: hello.serialize(theirs)})
    assert detail.status == "mismatch" and detail.refused
    assert detail.detail.startswith("this side vs the peer: channel 2")


def test_label_retransmits_lifetime_quantize_limits_version() -> None:
    ours = hello.hello_of(BASE)
    theirs = hello.hello_of(
        dataclasses.replace(
            BASE,
            channels=(
                ChannelConfig(label="s", id=1, ordered=False, max_packet_lifetime_ms=100),
                ChannelConfig.reliable_ordered(),
                CHAT,
            ),
            snapshot_quantize={"x": 0.5},
            limits=Limits(max_event_bytes=2_097_152),
        )
    )
    theirs = dataclasses.replace(theirs, version=2)
    diffs = hello.differences(ours, theirs)
    assert diffs[0] == "protocol version 1 vs 2"
    assert 'channel 1 "state": label "state" vs "s"' in diffs
    assert 'channel 1 "state": max_retransmits 0 vs null' in diffs
    assert 'channel 1 "state": max_packet_lifetime_ms null vs 100' in diffs
    assert f"snapshot_quantize: hash none vs {theirs.quantize}" in diffs
    assert "limits.max_event_bytes: 1048576 vs 2097152" in diffs


def test_unsaid_parts_are_not_compared() -> None:
    ours = hello.hello_of(dataclasses.replace(BASE, snapshot_quantize={"x": 0.5}))
    minimal = {"v": 1, "channels": hello.serialize(ours)["channels"]}
    assert hello.check_remote(ours, {hello.HELLO_KEY: minimal}).status == "match"
    partial = {**minimal, "limits": {"max_depth": 16, "unknown_future_limit": 3}}
    assert hello.check_remote(ours, {hello.HELLO_KEY: partial}).status == "match"
    assert hello.check_remote(ours, {}).status == "absent"
    assert hello.check_remote(ours, {hello.HELLO_KEY: None}).status == "absent"


def test_quantize_hash_is_canonical_and_known() -> None:
    assert hello.quantize_hash(None) == hello.quantize_hash({}) == ""
    a = hello.quantize_hash({"x": 0.01, "y": 0.5})
    assert a == hello.quantize_hash({"y": 0.5, "x": 0.01})
    assert a != hello.quantize_hash({"x": 0.01, "y": 0.25})
    assert hello.quantize_hash({"x": 1}) == hello.quantize_hash({"x": 1.0})
    # Pinned: js/test/hello.test.js checks the same value, so both sides hash alike.
    assert hello.quantize_hash({"x": 0.01, "y": 0.01, "é": 2.5}) == "960bb118"


def test_describe_is_bounded() -> None:
    many = [f"channel {i} x: missing on the peer" for i in range(100)]
    text = hello.describe(many)
    assert text.endswith("; and 92 more")
    assert len(hello.describe(["y" * 5000])) == hello.MAX_DETAIL_CHARS


def test_mismatch_signal_recomputed_from_the_attached_hello() -> None:
    ours = hello.hello_of(BASE)
    theirs = hello.hello_of(with_channels(*BASE.channels[:2]))
    data = hello.mismatch_data(theirs, "whatever they say")
    assert data["reason"] == "mismatch"
    assert hello.mismatch_detail(ours, data) == (
        'this side vs the peer: channel 5 "chat": missing on the peer'
    )
    assert hello.mismatch_detail(ours, {"reason": "left"}) is None
    said = hello.mismatch_detail(ours, {"reason": "mismatch", "detail": "bad\nline\x1b[31m"})
    assert said == "the peer refused our configuration: bad?line?[31m"
    assert hello.mismatch_detail(ours, {"reason": "mismatch", "detail": 5}) is not None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([], "must be an object"),
        ({"channels": []}, "v must be"),
        ({"v": True, "channels": []}, "v must be"),
        ({"v": 1.0, "channels": []}, "v must be"),
        ({"v": 1}, "channels must be a list"),
        ({"v": 1, "channels": [{}] * 1025}, "at most 1024"),
        ({"v": 1, "channels": [5]}, r"channels\[0\] must be an object"),
        ({"v": 1, "channels": [{"id": 1024, "label": "a", "ordered": True}]}, "id"),
        ({"v": 1, "channels": [{"id": 1, "label": "", "ordered": True}]}, "label"),
        ({"v": 1, "channels": [{"id": 1, "label": "a" * 1025, "ordered": True}]}, "label"),
        ({"v": 1, "channels": [{"id": 1, "label": "a", "ordered": 1}]}, "ordered"),
        (
            {
                "v": 1,
                "channels": [{"id": 1, "label": "a", "ordered": True, "max_retransmits": 70000}],
            },
            "max_retransmits",
        ),
        (
            {
                "v": 1,
                "channels": [
                    {
                        "id": 1,
                        "label": "a",
                        "ordered": True,
                        "max_retransmits": 1,
                        "max_packet_lifetime_ms": 1,
                    }
                ],
            },
            "both set",
        ),
        (
            {
                "v": 1,
                "channels": [
                    {"id": 1, "label": "a", "ordered": True},
                    {"id": 1, "label": "b", "ordered": True},
                ],
            },
            "unique",
        ),
        ({"v": 1, "channels": [], "quantize": "XYZ"}, "quantize"),
        ({"v": 1, "channels": [], "limits": []}, "limits must be an object"),
        ({"v": 1, "channels": [], "limits": {str(i): 1 for i in range(65)}}, "at most 64"),
        ({"v": 1, "channels": [], "limits": {"max_depth": 0}}, "limits.max_depth"),
        ({"v": 1, "channels": [], "limits": {"max_depth": 2**53}}, "limits.max_depth"),
    ],
)
def test_invalid_hellos_raise_decode_error(value: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        hello.parse(value)
    verdict = hello.check_remote(hello.hello_of(BASE), {hello.HELLO_KEY: value})
    assert verdict.status == "invalid" and verdict.refused
    assert verdict.detail.startswith("invalid hello from the peer:")
    assert len(verdict.detail) < 300, "the error never echoes unbounded input"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
channel_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.integers(-5, 1030),
        "label": json_values,
        "ordered": json_values,
        "max_retransmits": json_values | st.integers(-2, 70000),
        "max_packet_lifetime_ms": json_values,
    },
)
hello_like = st.fixed_dictionaries(
    {},
    optional={
        "v": json_values | st.just(1),
        "channels": st.lists(channel_like | json_values, max_size=8) | json_values,
        "quantize": json_values | st.just("0123abcd"),
        "limits": st.dictionaries(st.sampled_from(hello.LIMIT_NAMES), json_values) | json_values,
    },
)


@given(value=hello_like | json_values)
def test_hostile_hellos_only_decode_error(value: Any) -> None:
    ours = hello.hello_of(BASE)
    try:
        theirs = hello.parse(value)
    except DecodeError as exc:
        assert len(str(exc)) < 300
    else:
        assert isinstance(theirs, Hello)
        hello.differences(ours, theirs)
    verdict = hello.check_remote(ours, {hello.HELLO_KEY: value})
    assert verdict.status in ("match", "mismatch", "invalid", "absent")
    assert len(verdict.detail) <= hello.MAX_DETAIL_CHARS
    detail = hello.mismatch_detail(ours, {"reason": "mismatch", "hello": value, "detail": value})
    assert detail is not None and len(detail) <= hello.MAX_DETAIL_CHARS + 64
    assert detail.isprintable()


channel_configs = st.builds(
    lambda cid, label, ordered, kind, n: ChannelConfig(
        label=label,
        id=cid,
        ordered=ordered,
        max_retransmits=n if kind == 1 else None,
        max_packet_lifetime_ms=n if kind == 2 else None,
    ),
    st.integers(0, 1023),
    st.text(min_size=1, max_size=12),
    st.booleans(),
    st.integers(0, 2),
    st.integers(0, 65535),
)


@given(
    channels=st.lists(channel_configs, max_size=6, unique_by=lambda c: c.id),
    quantize=st.none() | st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0.001, 100)),
)
def test_any_config_round_trips_and_equals_itself(
    channels: list[ChannelConfig], quantize: dict[str, float] | None
) -> None:
    labels = {c.label for c in channels}
    if len(labels) != len(channels):
        return  # SessionConfig wants unique labels
    cfg = dataclasses.replace(BASE, channels=tuple(channels), snapshot_quantize=quantize)
    ours = hello.hello_of(cfg)
    assert hello.parse(json.loads(json.dumps(hello.serialize(ours)))) == ours
    assert hello.differences(ours, ours) == []


def test_hostile_labels_cannot_break_the_log_line() -> None:
    ours = hello.hello_of(BASE)
    theirs = hello.hello_of(
        with_channels(*BASE.channels, ChannelConfig(label="a\u2028\x85\n", id=9))
    )
    detail = hello.check_remote(ours, {hello.HELLO_KEY: hello.serialize(theirs)}).detail
    assert detail.isprintable(), detail
    assert 'channel 9 "a\\u2028\\u0085\\n": missing on this side' in detail


def documented_hello() -> Any:
    """The example of docs/PROTOCOL.md 2.1.1 (js/test/hello.test.js reads it too)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text("utf-8")
    section = doc.split("#### 2.1.1", 1)[1].split("\n### ", 1)[0]
    match = re.search(r"```json\n(.*?)\n```", section, flags=re.DOTALL)
    assert match is not None, "no JSON example in PROTOCOL.md 2.1.1"
    return json.loads(match.group(1))


def test_documented_default_hello_is_what_we_send() -> None:
    ours = hello.hello_of(SessionConfig())
    assert documented_hello() == hello.serialize(ours)
    assert hello.check_remote(ours, {hello.HELLO_KEY: documented_hello()}).status == "match"


def test_link_core_mismatch_ends_a_connecting_link_only() -> None:
    core = LinkCore("p", BASE, 0.0)
    core.mismatch("this side vs the peer: x", bad=True)
    assert core.state == "failed" and core.finished
    assert core.take_events() == [PeerLost("p", "mismatch", "this side vs the peer: x")]
    assert core.stats(0.0).bad_packets == 1
    core.mismatch("again")
    assert core.take_events() == [], "reported once"

    connected = LinkCore("q", BASE, 0.0)
    connected.channels_open(0.0)
    connected.take_events()
    connected.mismatch("late")
    assert connected.state == "connected" and connected.take_events() == []
