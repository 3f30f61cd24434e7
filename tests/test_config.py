"""Every config rejects bad values with a ConfigError naming the field, never a TypeError
later (a str where a number belongs, NaN, a bool as a count, a bare str as a tuple)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netcode.config import (
    ChannelConfig,
    IceServer,
    Limits,
    LobbyConfig,
    NetworkConditions,
    SessionConfig,
    TickConfig,
)
from netcode.errors import ConfigError

NAN = float("nan")
INF = float("inf")

BAD: list[tuple[Callable[..., object], dict[str, Any], str]] = [
    (ChannelConfig, {"label": "", "id": 3}, "label"),
    (ChannelConfig, {"label": 5, "id": 3}, "label"),
    (ChannelConfig, {"label": "a", "id": "3"}, "id"),
    (ChannelConfig, {"label": "a", "id": 1024}, "id"),
    (ChannelConfig, {"label": "a", "id": 3, "ordered": "yes"}, "ordered"),
    (ChannelConfig, {"label": "a", "id": 3, "max_retransmits": -1}, "max_retransmits"),
    (
        ChannelConfig,
        {"label": "a", "id": 3, "max_retransmits": 0, "max_packet_lifetime_ms": 5},
        "exclusive",
    ),
    (IceServer, {"urls": ()}, "urls"),
    (IceServer, {"urls": 5}, "urls"),
    (IceServer, {"urls": "stun:x", "username": 1}, "username"),
    (NetworkConditions, {"loss": 1.5}, "loss"),
    (NetworkConditions, {"loss": NAN}, "loss"),
    (NetworkConditions, {"loss": "0.1"}, "loss"),
    (NetworkConditions, {"loss": True}, "loss"),
    (NetworkConditions, {"latency_ms": -1}, "latency_ms"),
    (NetworkConditions, {"jitter_ms": INF}, "jitter_ms"),
    (NetworkConditions, {"seed": "abc"}, "seed"),
    (TickConfig, {"rate": 0}, "rate"),
    (TickConfig, {"rate": 60.5}, "rate"),
    (TickConfig, {"max_catchup_ticks": 0}, "max_catchup_ticks"),
    (Limits, {"max_depth": 0}, "max_depth"),
    (Limits, {"max_depth": "16"}, "max_depth"),
    (Limits, {"max_packet_bytes": 10}, "max_packet_bytes"),
    (Limits, {"max_containers": 0}, "max_containers"),
    (Limits, {"max_containers": 8.0}, "max_containers"),
    (Limits, {"max_snapshot_entities": 0}, "max_snapshot_entities"),
    (Limits, {"max_entity_fields": True}, "max_entity_fields"),
    (Limits, {"max_snapshot_fields": -1}, "max_snapshot_fields"),
    (Limits, {"max_snapshot_bytes": "64k"}, "max_snapshot_bytes"),
    (LobbyConfig, {"max_message_bytes": 100}, "max_message_bytes"),
    (LobbyConfig, {"max_message_bytes": "big"}, "max_message_bytes"),
    (LobbyConfig, {"max_rooms": 0}, "max_rooms"),
    (LobbyConfig, {"max_connections": -1}, "max_connections"),
    (LobbyConfig, {"max_players_limit": 5000}, "max_players_limit"),
    (LobbyConfig, {"default_max_players": 9, "max_players_limit": 8}, "default_max_players"),
    (LobbyConfig, {"max_metadata_bytes": 0}, "max_metadata_bytes"),
    (LobbyConfig, {"max_errors_before_close": -1}, "max_errors_before_close"),
    (LobbyConfig, {"rate_limit_per_s": 0}, "rate_limit_per_s"),
    (LobbyConfig, {"rate_limit_per_s": NAN}, "rate_limit_per_s"),
    (LobbyConfig, {"ping_interval_s": NAN}, "ping_interval_s"),
    (LobbyConfig, {"ping_timeout_s": 0}, "ping_timeout_s"),
    (LobbyConfig, {"token": ""}, "token"),
    (LobbyConfig, {"token": 123}, "token"),
    (LobbyConfig, {"ice_servers": ("stun:x",)}, "ice_servers"),
    (LobbyConfig, {"room_code_length": 3}, "room_code_length"),
    (SessionConfig, {"connect_timeout_s": -1}, "connect_timeout_s"),
    (SessionConfig, {"connect_timeout_s": "10"}, "connect_timeout_s"),
    (SessionConfig, {"lobby_timeout_s": 0}, "lobby_timeout_s"),
    (SessionConfig, {"heartbeat_interval_s": NAN}, "heartbeat_interval_s"),
    (SessionConfig, {"peer_timeout_s": 0.1}, "peer_timeout_s"),
    (SessionConfig, {"host_addresses": "127.0.0.1"}, "host_addresses"),
    (SessionConfig, {"host_addresses": (1,)}, "host_addresses"),
    (SessionConfig, {"channels": [1]}, "channels"),
    (SessionConfig, {"ice_servers": ("stun:x",)}, "ice_servers"),
    (SessionConfig, {"limits": 5}, "limits"),
    (SessionConfig, {"conditions": {"loss": 0.1}}, "conditions"),
    (SessionConfig, {"token": 5}, "token"),
    (SessionConfig, {"state_buffer_threshold": -1}, "state_buffer_threshold"),
    (SessionConfig, {"reliable_buffer_limit": 0}, "reliable_buffer_limit"),
    (SessionConfig, {"stats_interval_s": 0}, "stats_interval_s"),
    (SessionConfig, {"stats_interval_s": "1"}, "stats_interval_s"),
    (SessionConfig, {"snapshot_quantize": [("x", 0.1)]}, "snapshot_quantize"),
    (SessionConfig, {"snapshot_quantize": {"x": 0}}, "snapshot_quantize"),
    (SessionConfig, {"snapshot_quantize": {"x": NAN}}, "snapshot_quantize"),
    (SessionConfig, {"snapshot_quantize": {"x": True}}, "snapshot_quantize"),
    (SessionConfig, {"snapshot_quantize": {1: 0.1}}, "snapshot_quantize"),
]


@pytest.mark.parametrize(("cls", "kwargs", "field"), BAD)
def test_bad_values_raise_config_error_naming_the_field(
    cls: Callable[..., object], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


def test_defaults_are_valid_and_lists_become_tuples() -> None:
    for cls in (LobbyConfig, NetworkConditions, TickConfig, Limits, SessionConfig):
        cls()
    stun = IceServer(urls=["stun:a", "stun:b"])  # type: ignore[arg-type]
    assert stun.urls == ("stun:a", "stun:b")
    assert IceServer(urls="stun:a").urls == "stun:a"
    config = SessionConfig(
        host_addresses=["127.0.0.1"],  # type: ignore[arg-type]
        ice_servers=[stun],  # type: ignore[arg-type]
        channels=[ChannelConfig.unreliable(), ChannelConfig.reliable_ordered()],  # type: ignore[arg-type]
    )
    assert config.host_addresses == ("127.0.0.1",)
    assert config.ice_servers == (stun,)
    assert isinstance(config.channels, tuple) and len(config.channels) == 2
    assert LobbyConfig(ice_servers=[stun]).ice_servers == (stun,)  # type: ignore[arg-type]
    assert NetworkConditions(loss=0, latency_ms=20, seed=7).latency_ms == 20


def test_config_error_is_a_value_error() -> None:
    """Code that caught ValueError before the ConfigError tree keeps working."""
    with pytest.raises(ValueError):
        TickConfig(rate=0)


def test_channel_named_constructors_and_reliable_flag() -> None:
    """``ChannelConfig.reliable()`` builds a channel; ``channel.reliable`` is a bool."""
    events = ChannelConfig.reliable()
    assert events == ChannelConfig.reliable_ordered() == ChannelConfig(label="events", id=2)
    assert events.reliable is True and events.ordered
    chat = ChannelConfig.reliable(label="chat", id=5)
    assert (chat.label, chat.id, chat.reliable) == ("chat", 5, True)
    state = ChannelConfig.unreliable()
    assert state.reliable is False and not state.ordered and state.max_retransmits == 0
    assert ChannelConfig(label="x", id=9, max_packet_lifetime_ms=100).reliable is False


def test_snapshot_quantize_is_copied_read_only_and_config_stays_hashable() -> None:
    steps = {"x": 0.01}
    config = SessionConfig(snapshot_quantize=steps, stats_interval_s=None)
    steps["x"] = 5.0  # the caller's dict is copied, not kept
    assert config.snapshot_quantize == {"x": 0.01}
    with pytest.raises(TypeError):
        config.snapshot_quantize["y"] = 1.0  # type: ignore[index]
    assert config == SessionConfig(snapshot_quantize={"x": 0.01}, stats_interval_s=None)
    hash(config)  # a mapping field must not make the frozen config unhashable
    assert SessionConfig().stats_interval_s == 1.0


def test_every_limit_is_documented_with_its_default() -> None:
    """docs/PROTOCOL.md 2.5 is where a user looks up a limit: each Limits field is
    listed there with its current default."""
    import dataclasses
    import re
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    section = doc[doc.index("### 2.5 Limits") : doc.index("### 2.6")]
    rows = dict(re.findall(r"^\| `(\w+)`\s*\| ([\d,]+)\s*\|", section, re.MULTILINE))
    defaults = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert {name: int(v.replace(",", "")) for name, v in rows.items()} == defaults
