"""Configuration: frozen, keyword-only dataclasses with sensible defaults.

Every config validates itself in ``__post_init__`` and raises
:class:`netcode.errors.ConfigError` naming the bad field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError

__all__ = [
    "ChannelConfig",
    "IceServer",
    "Limits",
    "LobbyConfig",
    "NetworkConditions",
    "SessionConfig",
    "TickConfig",
]


def _require(cond: bool, name: str, why: str) -> None:
    if not cond:
        raise ConfigError(f"{name}: {why}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelConfig:
    """One data channel on every peer connection.

    Channels are negotiated out of band with a fixed ``id`` (both sides create
    them with the same id), so no in-band DCEP round trip and no id collision.
    """

    label: str
    id: int
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_lifetime_ms: int | None = None

    def __post_init__(self) -> None:
        _require(bool(self.label), "label", "must not be empty")
        _require(0 <= self.id <= 1023, "id", "must be in 0..1023")
        _require(
            self.max_retransmits is None or self.max_packet_lifetime_ms is None,
            "max_retransmits",
            "max_retransmits and max_packet_lifetime_ms are exclusive (W3C WebRTC 6.2)",
        )
        _require(
            self.max_retransmits is None or self.max_retransmits >= 0,
            "max_retransmits",
            "must be >= 0",
        )

    @property
    def reliable(self) -> bool:
        return self.max_retransmits is None and self.max_packet_lifetime_ms is None

    @classmethod
    def unreliable(cls, label: str = "state", id: int = 1) -> ChannelConfig:
        """Unordered, never retransmitted: for game state where only the newest matters."""
        return cls(label=label, id=id, ordered=False, max_retransmits=0)

    @classmethod
    def reliable_ordered(cls, label: str = "events", id: int = 2) -> ChannelConfig:
        """Reliable and ordered: for events that must all arrive, in order."""
        return cls(label=label, id=id, ordered=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class IceServer:
    """A STUN or TURN server (W3C RTCIceServer)."""

    urls: str | tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConditions:
    """Simulated network impairment, applied per datagram below DTLS/SCTP.

    Probabilities are in 0..1, times in milliseconds. ``seed`` makes the
    pattern reproducible.
    """

    loss: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            v = getattr(self, name)
            _require(0.0 <= v <= 1.0, name, f"must be a probability in 0..1, got {v!r}")
        for name in ("latency_ms", "jitter_ms"):
            v = getattr(self, name)
            _require(0.0 <= v <= 60_000.0, name, f"must be in 0..60000 ms, got {v!r}")

    @property
    def is_clean(self) -> bool:
        return (
            self.loss == 0.0
            and self.latency_ms == 0.0
            and self.jitter_ms == 0.0
            and self.duplicate == 0.0
            and self.reorder == 0.0
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TickConfig:
    """Fixed simulation timestep."""

    rate: int = 60
    max_catchup_ticks: int = 5

    def __post_init__(self) -> None:
        _require(1 <= self.rate <= 1000, "rate", "must be in 1..1000 Hz")
        _require(self.max_catchup_ticks >= 1, "max_catchup_ticks", "must be >= 1")

    @property
    def dt(self) -> float:
        return 1.0 / self.rate


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Decoder and size limits for data-channel packets."""

    # Limits
    max_packet_bytes: int = 65_536
    max_state_bytes: int = 1_160  # one SCTP chunk on a 1200-byte path MTU
    max_depth: int = 16
    max_container_len: int = 4_096
    max_str_len: int = 16_384
    max_event_bytes: int = 1_048_576  # reliable events are chunked above 64 KiB

    def __post_init__(self) -> None:
        for name in (
            "max_packet_bytes",
            "max_state_bytes",
            "max_depth",
            "max_container_len",
            "max_str_len",
            "max_event_bytes",
        ):
            _require(getattr(self, name) > 0, name, "must be > 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class LobbyConfig:
    """Lobby server settings."""

    # Limits
    max_message_bytes: int = 65_536
    max_rooms: int = 10_000
    max_connections: int = 10_000
    max_players_limit: int = 64
    default_max_players: int = 8
    max_metadata_bytes: int = 4_096
    max_errors_before_close: int = 20
    rate_limit_per_s: float = 200.0
    # Timeouts
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 10.0
    # Auth: if set, clients must present this token.
    token: str | None = None
    # ICE servers handed to clients in the welcome message.
    ice_servers: tuple[IceServer, ...] = ()
    room_code_length: int = 6

    def __post_init__(self) -> None:
        _require(self.max_message_bytes >= 1024, "max_message_bytes", "must be >= 1024")
        _require(
            1 <= self.default_max_players <= self.max_players_limit,
            "default_max_players",
            "must be in 1..max_players_limit",
        )
        _require(self.ping_interval_s > 0, "ping_interval_s", "must be > 0")
        _require(self.ping_timeout_s > 0, "ping_timeout_s", "must be > 0")
        _require(4 <= self.room_code_length <= 12, "room_code_length", "must be in 4..12")


def _default_channels() -> tuple[ChannelConfig, ...]:
    return (ChannelConfig.unreliable(), ChannelConfig.reliable_ordered())


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionConfig:
    """Settings of a :func:`netcode.connect` session."""

    channels: tuple[ChannelConfig, ...] = field(default_factory=_default_channels)
    ice_servers: tuple[IceServer, ...] = ()
    # Pin ICE host candidates to these addresses (e.g. ("127.0.0.1",) for local play
    # and tests). None: every non-loopback interface, aiortc's default.
    host_addresses: tuple[str, ...] | None = None
    limits: Limits = field(default_factory=Limits)
    conditions: NetworkConditions | None = None
    tick: TickConfig = field(default_factory=TickConfig)
    token: str | None = None
    # Timeouts
    connect_timeout_s: float = 10.0
    lobby_timeout_s: float = 10.0
    heartbeat_interval_s: float = 0.25
    peer_timeout_s: float = 3.0
    # Backpressure
    state_buffer_threshold: int = 16_384
    reliable_buffer_limit: int = 65_536

    def __post_init__(self) -> None:
        _require(self.connect_timeout_s > 0, "connect_timeout_s", "must be > 0")
        _require(self.heartbeat_interval_s > 0, "heartbeat_interval_s", "must be > 0")
        _require(
            self.peer_timeout_s > self.heartbeat_interval_s,
            "peer_timeout_s",
            "must be greater than heartbeat_interval_s",
        )
        ids = [c.id for c in self.channels]
        _require(len(ids) == len(set(ids)), "channels", "channel ids must be unique")
        labels = [c.label for c in self.channels]
        _require(len(labels) == len(set(labels)), "channels", "channel labels must be unique")
