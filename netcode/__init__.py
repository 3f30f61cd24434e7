"""netcode: low-latency multiplayer game networking over WebRTC data channels.

The public API is what ``__all__`` lists. Heavy parts (aiortc, which imports
PyAV) load lazily on first use, so ``import netcode`` and the lobby server stay
light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import (
    DEFAULT_MAX_PLAYERS,
    ChannelConfig,
    IceServer,
    Limits,
    LobbyConfig,
    NetworkConditions,
    PeerBudget,
    SessionConfig,
    TickConfig,
)
from .errors import (
    AuthError,
    BadToken,
    Banned,
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    DecodeError,
    DeltaBaselineMissing,
    EncodeError,
    IllegalTransition,
    LobbyError,
    LobbyProtocolError,
    NetcodeError,
    NotOwner,
    ProtocolError,
    RoomFull,
    RoomLocked,
    RoomNotFound,
    TransportError,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access.
_LAZY: dict[str, str] = {
    "serve_lobby": "netcode.net.lobby_server",
    "LobbyServer": "netcode.net.lobby_server",
    "SignalingClient": "netcode.net.signaling",
    "connect": "netcode.net.session",
    "Session": "netcode.net.session",
    "PeerInfo": "netcode.net.session",
    "LinkView": "netcode.net.rtc",
    "connect_sync": "netcode.net.sync",
    "list_rooms": "netcode.net.session",
    "list_rooms_sync": "netcode.net.sync",
    "RoomSummary": "netcode.lobby.messages",
    "SyncSession": "netcode.net.sync",
    "PeerJoined": "netcode.events",
    "PeerConnected": "netcode.events",
    "PeerLeft": "netcode.events",
    "PeerLost": "netcode.events",
    "PeerConnectFailed": "netcode.events",
    "StateReceived": "netcode.events",
    "EventReceived": "netcode.events",
    "SnapshotReceived": "netcode.events",
    "StatsUpdated": "netcode.events",
    "PeerReconnecting": "netcode.events",
    "PeerReconnected": "netcode.events",
    "HostChanged": "netcode.events",
    "Kicked": "netcode.events",
    "PeerStats": "netcode.protocol.reliability",
    "InterpolationBuffer": "netcode.protocol.interpolation",
    "recommended_delay": "netcode.protocol.interpolation",
    "Predictor": "netcode.protocol.prediction",
    "TickClock": "netcode.protocol.clock",
    "RemoteClockEstimator": "netcode.protocol.clock",
    "TimestampUnwrapper": "netcode.protocol.clock",
    "InputReceiver": "netcode.protocol.prediction",
    "SnapshotSender": "netcode.protocol.snapshot",
    "SnapshotReceiver": "netcode.protocol.snapshot",
    "Conditioner": "netcode.net.conditioner",
    "Event": "netcode.events",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .events import (
        Event,
        EventReceived,
        HostChanged,
        Kicked,
        PeerConnected,
        PeerConnectFailed,
        PeerJoined,
        PeerLeft,
        PeerLost,
        PeerReconnected,
        PeerReconnecting,
        SnapshotReceived,
        StateReceived,
        StatsUpdated,
    )
    from .lobby.messages import RoomSummary
    from .net.conditioner import Conditioner
    from .net.lobby_server import LobbyServer, serve_lobby
    from .net.rtc import LinkView
    from .net.session import PeerInfo, Session, connect, list_rooms
    from .net.signaling import SignalingClient
    from .net.sync import SyncSession, connect_sync, list_rooms_sync
    from .protocol.clock import RemoteClockEstimator, TickClock, TimestampUnwrapper
    from .protocol.interpolation import InterpolationBuffer, recommended_delay
    from .protocol.prediction import InputReceiver, Predictor
    from .protocol.reliability import PeerStats
    from .protocol.snapshot import SnapshotReceiver, SnapshotSender


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netcode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_PLAYERS",
    "AuthError",
    "BadToken",
    "Banned",
    "ChannelConfig",
    "Conditioner",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "DeltaBaselineMissing",
    "EncodeError",
    "Event",
    "EventReceived",
    "HostChanged",
    "IceServer",
    "IllegalTransition",
    "InputReceiver",
    "InterpolationBuffer",
    "Kicked",
    "Limits",
    "LinkView",
    "LobbyConfig",
    "LobbyError",
    "LobbyProtocolError",
    "LobbyServer",
    "NetcodeError",
    "NetworkConditions",
    "NotOwner",
    "PeerBudget",
    "PeerConnectFailed",
    "PeerConnected",
    "PeerInfo",
    "PeerJoined",
    "PeerLeft",
    "PeerLost",
    "PeerReconnected",
    "PeerReconnecting",
    "PeerStats",
    "Predictor",
    "ProtocolError",
    "RemoteClockEstimator",
    "RoomFull",
    "RoomLocked",
    "RoomNotFound",
    "RoomSummary",
    "Session",
    "SessionConfig",
    "SignalingClient",
    "SnapshotReceived",
    "SnapshotReceiver",
    "SnapshotSender",
    "StateReceived",
    "StatsUpdated",
    "SyncSession",
    "TickClock",
    "TickConfig",
    "TimestampUnwrapper",
    "TransportError",
    "__version__",
    "connect",
    "connect_sync",
    "list_rooms",
    "list_rooms_sync",
    "recommended_delay",
    "serve_lobby",
]
