"""The one error hierarchy of netcode.

::

    NetcodeError
    ├── ConfigError                 invalid configuration value (raised at construction)
    ├── EncodeError                 a payload the game passed cannot be sent (type, size, depth)
    ├── ProtocolError               bytes from the network that do not decode
    │   ├── DecodeError             data-channel packet: bad msgpack, bad envelope, too big/deep
    │   └── LobbyProtocolError      lobby message: bad JSON, unknown type, bad fields
    ├── LobbyError                  the lobby answered a request with an error (has .code)
    │   ├── RoomNotFound            join of an unknown room code
    │   ├── RoomFull                join of a room at max_players
    │   ├── RoomLocked              join of a room its host locked
    │   ├── NotOwner                kick/lock/update by someone who is not the host
    │   ├── BadToken                rejoin with an unknown, expired or foreign token
    │   ├── Banned                  rejoin/join of a room we were kicked from
    │   └── AuthError               missing/invalid token
    ├── IllegalTransition           pure state machine asked to do something illegal in
    │                               its current state (names role, state and event)
    ├── TransportError              transport-level failure talking to the lobby or a peer
    │   ├── ConnectTimeout          a peer or the lobby did not connect in time
    │   └── ConnectionClosed        the lobby or peer connection is gone
    └── DeltaBaselineMissing        a delta snapshot refers to a baseline we no longer hold

Local errors are raised inside the pure core; the I/O layer converts remote
errors (lobby "error" messages) into :class:`LobbyError` subclasses at the
receive boundary. Bytes from the network never raise anything but
:class:`ProtocolError` subclasses out of a decoder.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadToken",
    "Banned",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "DeltaBaselineMissing",
    "EncodeError",
    "IllegalTransition",
    "LobbyError",
    "LobbyProtocolError",
    "NetcodeError",
    "NotOwner",
    "ProtocolError",
    "RoomFull",
    "RoomLocked",
    "RoomNotFound",
    "TransportError",
]


class NetcodeError(Exception):
    """Base class of every error netcode raises on purpose."""


class ConfigError(NetcodeError, ValueError):
    """A configuration value is out of range or inconsistent."""


class EncodeError(NetcodeError, ValueError):
    """A payload handed to a send call cannot be encoded: a type msgpack cannot carry,
    or over a size/depth limit the receiving peer would reject anyway."""


class ProtocolError(NetcodeError):
    """Data received from the network does not follow the protocol."""


class DecodeError(ProtocolError):
    """A data-channel packet could not be decoded (bad msgpack/envelope, over a limit)."""


class LobbyProtocolError(ProtocolError):
    """A lobby message is malformed: bad JSON, unknown type, missing or wrong fields.

    ``code`` is the machine-readable error code sent on the wire (see docs/PROTOCOL.md);
    ``rid`` is the request id of the offending message when it had a valid one, so the
    error reply can echo it.
    """

    def __init__(
        self, message: str, *, code: str = "bad_message", rid: int | str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.rid = rid


class LobbyError(NetcodeError):
    """The lobby server answered a request with an ``error`` message."""

    def __init__(self, message: str, *, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


class RoomNotFound(LobbyError):
    """No room with the given code exists."""


class RoomFull(LobbyError):
    """The room already has ``max_players`` peers."""


class RoomLocked(LobbyError):
    """The room's host locked it: no new players."""


class NotOwner(LobbyError):
    """Only the room's host may kick, lock or update the room."""


class BadToken(LobbyError):
    """The reconnection token is unknown, expired, or for another room."""


class Banned(LobbyError):
    """We were kicked from that room: its seat cannot be taken back."""


class AuthError(LobbyError):
    """The lobby requires a token and none, or a wrong one, was given."""


class IllegalTransition(NetcodeError):
    """A pure state machine received an event that is illegal in its current state."""

    def __init__(self, *, role: str, state: str, event: str, detail: str = "") -> None:
        msg = f"{role} in state {state!r} cannot handle {event!r}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)
        self.role = role
        self.state = state
        self.event = event


class TransportError(NetcodeError):
    """A transport-level failure talking to the lobby or a peer."""


class ConnectTimeout(TransportError, TimeoutError):
    """The lobby or a peer did not connect within the configured timeout."""


class ConnectionClosed(TransportError):
    """The lobby or peer connection is closed."""


class DeltaBaselineMissing(ProtocolError):
    """A delta snapshot refers to a baseline the receiver no longer holds."""
