"""netcode: low-latency multiplayer game networking over WebRTC data channels.

The public API is what ``__all__`` lists. Heavy parts (aiortc, which imports
PyAV) load lazily on first use, so ``import netcode`` and the lobby server stay
light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import (
    ChannelConfig,
    IceServer,
    Limits,
    LobbyConfig,
    NetworkConditions,
    SessionConfig,
    TickConfig,
)
from .errors import (
    AuthError,
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    DecodeError,
    DeltaBaselineMissing,
    IllegalTransition,
    LobbyError,
    LobbyProtocolError,
    NetcodeError,
    ProtocolError,
    RoomFull,
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
    "connect_sync": "netcode.net.sync",
    "SyncSession": "netcode.net.sync",
    "PeerJoined": "netcode.events",
    "PeerConnected": "netcode.events",
    "PeerLeft": "netcode.events",
    "PeerLost": "netcode.events",
    "PeerConnectFailed": "netcode.events",
    "StateReceived": "netcode.events",
    "EventReceived": "netcode.events",
    "SnapshotReceived": "netcode.events",
    "PeerStats": "netcode.protocol.reliability",
    "InterpolationBuffer": "netcode.protocol.interpolation",
    "Predictor": "netcode.protocol.prediction",
    "TickClock": "netcode.protocol.clock",
}

if TYPE_CHECKING:  # pragma: no cover
    pass


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netcode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthError",
    "ChannelConfig",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "DeltaBaselineMissing",
    "IceServer",
    "IllegalTransition",
    "Limits",
    "LobbyConfig",
    "LobbyError",
    "LobbyProtocolError",
    "NetcodeError",
    "NetworkConditions",
    "ProtocolError",
    "RoomFull",
    "RoomNotFound",
    "SessionConfig",
    "TickConfig",
    "TransportError",
    "__version__",
]
