"""The session's peer table rows, its constants, and the checks it runs before any I/O.

Split from :mod:`netcode.net.session` to keep that module about the session itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..config import Limits, SessionConfig
from ..errors import ConfigError
from ..protocol import wire
from ..protocol.impairment import KEEP, check_conditions
from .rtc import STATE_LABEL, PeerLink

__all__ = [
    "CLOSE_DRAIN_S",
    "EVENTS_LABEL",
    "EVENT_PACKET_BYTES",
    "MAX_RETIRED",
    "RELAY_OVERHEAD",
    "PeerInfo",
    "PeerRow",
    "PeerState",
    "Topology",
    "check_channels",
    "check_conditions_arg",
    "check_connect_args",
    "encode_event_packets",
]

PeerState = Literal["connecting", "connected", "lost", "failed"]
Topology = Literal["mesh", "star"]
EVENTS_LABEL = "events"
# How long a clean close waits for queued reliable data to reach SCTP.
CLOSE_DRAIN_S = 2.0
# Final stats of departed peers kept for stats(); the oldest are forgotten beyond this.
MAX_RETIRED = 64
# Largest reliable packet we send: one SCTP chunk (aiortc USERDATA_MAX_LENGTH), so
# a big event is paced chunk by chunk and state never waits behind much of it.
EVENT_PACKET_BYTES = 1_200
# A RELAY envelope around a payload, worst case: fixarray, version, type, a 64-char
# peer id (2 + 64), n (3), sent_us (5).
RELAY_OVERHEAD = 80


def encode_event_packets(data: Any, msg_id: int, limits: Limits) -> list[bytes]:
    """The packets of one reliable event: one EVENT, or CHUNKs of one SCTP chunk each
    (so they can be paced). Raises :class:`EncodeError` like ``wire.encode_reliable``."""
    return wire.encode_reliable(data, msg_id, limits, packet_bytes=EVENT_PACKET_BYTES)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One remote peer in the room and the state of our link to it.

    ``connecting``: negotiating; ``connected``: all channels open; ``lost``: the
    link died (the peer may still be in the lobby room); ``failed``: the link
    never came up. A peer that left the room is no longer listed.
    """

    peer_id: str
    state: PeerState


@dataclass(slots=True)
class PeerRow:
    """One row of the session's peer table: the live link, or how it ended.

    While ``link`` is set, the peer's state is the link's own (connecting or
    connected, decided by its :class:`~netcode.protocol.link.LinkCore`); once
    the link is lost or failed it is freed and ``ended`` remembers which, until
    the lobby says the peer left the room.
    """

    link: PeerLink | None
    ended: PeerState | None = None
    # Star topology, at a client: a peer we reach through the host (no link of our own);
    # its state is the host link's.
    via_host: bool = False

    @property
    def state(self) -> PeerState:
        if self.link is not None:
            state = self.link.state
            return "connected" if state == "connected" else "connecting"
        assert self.ended is not None
        return self.ended


def check_channels(config: SessionConfig) -> None:
    labels = {c.label: c for c in config.channels}
    state = labels.get(STATE_LABEL)
    if state is None or state.reliable:
        raise ConfigError(f"channels: need an unreliable channel labelled {STATE_LABEL!r}")
    events = labels.get(EVENTS_LABEL)
    if events is None or not events.reliable or not events.ordered:
        raise ConfigError(f"channels: need a reliable ordered channel labelled {EVENTS_LABEL!r}")


def check_connect_args(metadata: object, config: object) -> None:
    """Refuse wrong argument types at the call, as :class:`ConfigError`, before any I/O
    (otherwise they surface later as an AttributeError or TypeError deep inside)."""
    if not isinstance(config, SessionConfig):
        raise ConfigError(f"config: must be a SessionConfig, got {type(config).__name__}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata: must be a mapping or None, got {type(metadata).__name__}")


def check_conditions_arg(conditions: object) -> None:
    """:class:`ConfigError` unless ``conditions`` is NetworkConditions, None or KEEP."""
    if conditions is not None and conditions is not KEEP:
        check_conditions(conditions)
