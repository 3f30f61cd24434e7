"""Configuration: frozen, keyword-only dataclasses with sensible defaults.

Every config validates itself in ``__post_init__`` and raises
:class:`netcode.errors.ConfigError` naming the bad field.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Literal, TypeVar, overload

from .errors import ConfigError

_T = TypeVar("_T")

__all__ = [
    "DEFAULT_MAX_PLAYERS",
    "ChannelConfig",
    "IceServer",
    "Limits",
    "LobbyConfig",
    "NetworkConditions",
    "PeerBudget",
    "SessionConfig",
    "TickConfig",
]


def _require(cond: bool, name: str, why: str) -> None:
    if not cond:
        raise ConfigError(f"{name}: {why}")


def _int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    """An int (not a bool: ``True`` is no count) in ``lo..hi``."""
    _require(
        isinstance(value, int) and not isinstance(value, bool),
        name,
        f"must be an int, got {type(value).__name__}",
    )
    assert isinstance(value, int)
    why = f"must be >= {lo}" if hi is None else f"must be in {lo}..{hi}"
    _require(lo <= value and (hi is None or value <= hi), name, f"{why}, got {value}")


def _num(name: str, value: object, lo: float, hi: float, *, open_lo: bool = False) -> None:
    """A finite int/float (not a bool) in ``lo..hi`` (``lo`` excluded if ``open_lo``)."""
    _require(
        isinstance(value, int | float) and not isinstance(value, bool),
        name,
        f"must be a number, got {type(value).__name__}",
    )
    assert isinstance(value, int | float)
    ok = math.isfinite(value) and (lo < value if open_lo else lo <= value) and value <= hi
    bound = f"> {lo}" if open_lo else f">= {lo}"
    _require(ok, name, f"must be finite, {bound} and <= {hi}, got {value!r}")


def _optional(name: str, value: object, kind: type) -> None:
    _require(
        value is None or isinstance(value, kind),
        name,
        f"must be None or a {kind.__name__}, got {type(value).__name__}",
    )


def _tuple_of(obj: object, name: str, kind: type, *, allow_str: bool = False) -> None:
    """Require a tuple of ``kind`` (a list is accepted and stored as a tuple)."""
    value = getattr(obj, name)
    if allow_str and isinstance(value, str):
        return
    _require(
        isinstance(value, tuple | list) and all(isinstance(v, kind) for v in value),
        name,
        f"must be a tuple of {kind.__name__}, got {value!r:.80}",
    )
    object.__setattr__(obj, name, tuple(value))


class _Reliable:
    """``ChannelConfig.reliable(...)`` on the class builds a reliable ordered channel
    (the named constructor pairing with ``.unreliable()``); ``config.reliable`` on an
    instance is the bool "retransmitted until delivered". One name, read two ways,
    so both spellings a user expects work."""

    @overload
    def __get__(self, obj: None, cls: type[ChannelConfig]) -> Callable[..., ChannelConfig]: ...

    @overload
    def __get__(self, obj: ChannelConfig, cls: type[ChannelConfig] | None = None) -> bool: ...

    def __get__(
        self, obj: ChannelConfig | None, cls: type[ChannelConfig] | None = None
    ) -> bool | Callable[..., ChannelConfig]:
        if obj is None:
            assert cls is not None
            return cls.reliable_ordered
        return obj.max_retransmits is None and obj.max_packet_lifetime_ms is None


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
        _require(
            isinstance(self.label, str) and bool(self.label), "label", "must be a non-empty str"
        )
        _int("id", self.id, 0, 1023)
        _require(isinstance(self.ordered, bool), "ordered", "must be a bool")
        if self.max_retransmits is not None:
            _int("max_retransmits", self.max_retransmits, 0, 65535)
        if self.max_packet_lifetime_ms is not None:
            _int("max_packet_lifetime_ms", self.max_packet_lifetime_ms, 0, 65535)
        _require(
            self.max_retransmits is None or self.max_packet_lifetime_ms is None,
            "max_retransmits",
            "max_retransmits and max_packet_lifetime_ms are exclusive (W3C WebRTC 6.2)",
        )

    reliable: ClassVar[_Reliable] = _Reliable()

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

    def __post_init__(self) -> None:
        _tuple_of(self, "urls", str, allow_str=True)
        _require(bool(self.urls), "urls", "must name at least one stun:/turn: url")
        _optional("username", self.username, str)
        _optional("credential", self.credential, str)


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
            _num(name, getattr(self, name), 0.0, 1.0)  # a probability
        for name in ("latency_ms", "jitter_ms"):
            _num(name, getattr(self, name), 0.0, 60_000.0)
        if self.seed is not None:
            _int("seed", self.seed, -(2**63))

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
        _int("rate", self.rate, 1, 1000)  # Hz
        _int("max_catchup_ticks", self.max_catchup_ticks, 1)

    @property
    def dt(self) -> float:
        return 1.0 / self.rate


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Decoder and size limits for data-channel packets (docs/PROTOCOL.md 2.5).

    Receivers drop what exceeds them (``DecodeError``, counted as ``bad_packets``);
    senders refuse to build it (``EncodeError``). Both ends must use the same values.
    """

    # Limits
    max_packet_bytes: int = 65_536
    max_state_bytes: int = 1_160  # one SCTP chunk on a 1200-byte path MTU
    max_depth: int = 16
    max_container_len: int = 4_096
    max_str_len: int = 16_384
    max_event_bytes: int = 1_048_576  # reliable events are chunked above 64 KiB
    # Arrays + maps in one payload: each is 1 byte on the wire but 56-200 B decoded.
    max_containers: int = 8_192
    # One reconstructed snapshot (docs/STATE_SYNC.md 4.6); a receiver keeps ring_size
    # (64) of them, so these bound its memory. The demo and benchmarks use 64 entities
    # of 7 fields (448 fields, ~3.2 KB).
    max_snapshot_entities: int = 1_024
    max_entity_fields: int = 256
    max_snapshot_fields: int = 4_096  # over all entities; array/map values count per element
    max_snapshot_bytes: int = 65_000  # msgpack size of its "e" map: a full must fit a packet

    def __post_init__(self) -> None:
        for name in (
            "max_packet_bytes",
            "max_state_bytes",
            "max_depth",
            "max_container_len",
            "max_str_len",
            "max_event_bytes",
            "max_containers",
            "max_snapshot_entities",
            "max_entity_fields",
            "max_snapshot_fields",
            "max_snapshot_bytes",
        ):
            _int(name, getattr(self, name), 1)
        # A CHUNK adds up to 19 bytes around its data (docs/PROTOCOL.md 2.4).
        _require(self.max_packet_bytes >= 32, "max_packet_bytes", "must be >= 32")


def _check_turn(cfg: LobbyConfig) -> None:
    """stun_urls / turn_urls / turn_secret / turn_ttl_s of a LobbyConfig."""
    _tuple_of(cfg, "stun_urls", str)
    _tuple_of(cfg, "turn_urls", str)
    for url in cfg.stun_urls:
        _require(url.startswith(("stun:", "stuns:")), "stun_urls", f"not a stun: url: {url!r:.60}")
    for url in cfg.turn_urls:
        _require(url.startswith(("turn:", "turns:")), "turn_urls", f"not a turn: url: {url!r:.60}")
    _optional("turn_secret", cfg.turn_secret, str)
    if cfg.turn_urls:
        # A guessable secret lets anyone mint credentials for the relay.
        ok = cfg.turn_secret is not None and len(cfg.turn_secret) >= 16
        _require(ok, "turn_secret", "turn_urls need a shared secret of at least 16 characters")
    _int("turn_ttl_s", cfg.turn_ttl_s, 60, 30 * 86_400)


# The one default room size: connect(), SignalingClient.create_room() and the lobby's
# LobbyConfig.default_max_players all read it, so no two layers disagree.
DEFAULT_MAX_PLAYERS = 8


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _cli(default: _T, help: str, **cli: object) -> _T:
    """A LobbyConfig field with its ``netcode lobby`` flag metadata (see LobbyConfig)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True, kw_only=True, slots=True)
class LobbyConfig:
    """Lobby server settings.

    Every field is also a ``netcode lobby`` flag and environment variable, generated
    from the field's metadata (``help``; ``flag``/``env`` where the name differs from
    ``--field-name`` / ``NETCODE_LOBBY_FIELD_NAME``; ``secret``: never printed): a
    new field needs a ``help`` and a line in docs/LOBBY.md, nothing else.
    """

    # Limits (docs/LOBBY.md "Limits and abuse" says what exceeding each one does)
    max_message_bytes: int = _cli(
        65_536, "largest frame accepted; bigger ones close the connection with 1009"
    )
    max_rooms: int = _cli(10_000, "rooms at once; create_room beyond gets too_many_rooms")
    max_connections: int = _cli(
        10_000, "connections at once; further ones are closed with 1013 (try again later)"
    )
    # Per client address (an IPv4 address or an IPv6 /64); None: no per-address cap.
    # 32 leaves room for a NAT'd household or LAN party behind one public address.
    max_connections_per_ip: int | None = _cli(
        32, "per IPv4 address / IPv6 /64; further ones are closed with 1008; 0: no limit",
        none_if=0,
    )  # fmt: skip
    max_players_limit: int = _cli(64, "the largest max_players a room may ask for")
    default_max_players: int = _cli(
        DEFAULT_MAX_PLAYERS, "room size when create_room names none (capped by the limit)"
    )
    max_metadata_bytes: int = _cli(4_096, "serialized size cap of a room's metadata")
    # Error budget per connection: a token bucket holding max_errors_before_close
    # refusals, refilled at error_refill_per_s, so rare honest races never add up.
    max_errors_before_close: int = _cli(
        20, "error budget: refused messages at once per connection; beyond: close 1008",
        flag="--max-errors",
    )  # fmt: skip
    error_refill_per_s: float = _cli(
        1.0, "errors/s the budget regains; 0: a lifetime count", flag="--error-refill"
    )
    # Inbound budget per connection: token buckets for messages and for bytes.
    rate_limit_per_s: float = _cli(
        200.0, "messages/s per connection (sustained); beyond the burst: close 1008",
        flag="--rate-limit",
    )  # fmt: skip
    rate_limit_burst: float = _cli(1_000.0, "messages at once", flag="--rate-burst")
    byte_rate_limit_per_s: float = _cli(
        131_072.0, "bytes/s per connection (sustained); beyond the burst: close 1008",
        flag="--byte-rate-limit",
    )  # fmt: skip
    byte_rate_burst: int = _cli(1_048_576, "bytes at once", flag="--byte-burst")
    # Outbound queue per connection: relays to it are refused (peer_busy) once
    # half of this is queued; past all of it the connection is not reading.
    max_outbound_bytes: int = _cli(
        1_048_576, "queued for one client; from half: relays to it refused (peer_busy);"
        " beyond: close 1008",
    )  # fmt: skip
    # Timeouts
    ping_interval_s: float = _cli(
        5.0, "seconds between websocket keepalive pings", flag="--ping-interval"
    )
    ping_timeout_s: float = _cli(
        10.0, "seconds to wait for the pong before closing with 1011", flag="--ping-timeout"
    )
    # Auth: if set, clients must present this token.
    token: str | None = field(
        default=None,
        repr=False,
        metadata={"help": "require this token (?token=... or Authorization: Bearer)",
                  "env": "NETCODE_LOBBY_TOKEN", "secret": True},
    )  # fmt: skip
    # ICE servers handed to clients in the welcome message (CLI: --ice-server,
    # --ice-username, --ice-credential, built by hand: a list of records).
    ice_servers: tuple[IceServer, ...] = _cli(
        (), "STUN/TURN servers handed to clients in welcome", flag=None
    )
    # Internet play (docs/DEPLOY.md): STUN urls and TURN urls with coturn's shared
    # secret (use-auth-secret); each welcome carries TURN credentials minted for that
    # peer, valid turn_ttl_s seconds. The secret stays out of repr, logs and /healthz.
    stun_urls: tuple[str, ...] = _cli(
        (), "stun: url for clients (aiortc uses the first)",
        flag="--stun-url", env="NETCODE_STUN_URLS",
    )  # fmt: skip
    turn_urls: tuple[str, ...] = _cli(
        (), "turn: url of a coturn with use-auth-secret (aiortc uses the first)",
        flag="--turn-url", env="NETCODE_TURN_URLS",
    )  # fmt: skip
    turn_secret: str | None = field(
        default=None,
        repr=False,
        metadata={"help": "coturn's static-auth-secret (a flag shows in ps: prefer the env"
                  " variable or --turn-secret-file)", "env": "NETCODE_TURN_SECRET",
                  "secret": True},
    )  # fmt: skip
    turn_ttl_s: int = _cli(
        86_400, "seconds minted TURN credentials stay valid", flag="--turn-ttl",
        env="NETCODE_TURN_TTL",
    )  # fmt: skip
    room_code_length: int = _cli(6, "characters in a room code (4..12)")
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = _cli(
        (), "reverse proxy (address or network) whose X-Forwarded-For is believed",
        flag="--trusted-proxy",
    )  # fmt: skip
    # Match lifecycle (docs/LOBBY.md "Reconnect and host migration"): a member whose
    # websocket drops keeps its seat this long (0: leaves at once); a host gone this
    # long is replaced by the earliest-joined connected member.
    reconnect_grace_s: float = _cli(
        30.0, "seconds a dropped member keeps its seat (0: leaves at once)",
        flag="--reconnect-grace",
    )  # fmt: skip
    host_grace_s: float = _cli(
        3.0, "seconds a dropped host keeps the host role before migration", flag="--host-grace"
    )
    # Kicked identities remembered per room (to answer "banned"); older ones are
    # forgotten but stay refused (their tokens are revoked either way).
    max_banned_per_room: int = _cli(256, "kicked identities remembered per room")
    # Browser play (docs/BROWSER.md): serve the JS client and the demo page at /play
    # (a fixed allow-list of static files, no secrets); False: /play answers 404.
    serve_play: bool = _cli(True, "serve the browser client and demo page at /play")
    # Operations (docs/LOBBY.md "Operations"): the node's name in metrics and logs
    # (None: host name + random, new each start), a bearer token for /metrics (None:
    # open like /healthz), and built-in TLS (wss://): a PEM certificate chain and its
    # key (None: in certfile).
    node_id: str | None = _cli(
        None, "this node's name in metrics, logs and the cluster (default HOSTNAME-random)"
    )
    metrics_token: str | None = field(
        default=None,
        repr=False,
        metadata={"help": "require this bearer token on /metrics", "secret": True},
    )
    certfile: str | None = _cli(None, "PEM certificate chain: serve wss:// and https://")
    keyfile: str | None = _cli(None, "PEM private key of --certfile (default: in certfile)")
    # Several nodes (docs/LOBBY.md "Several nodes"): lobby processes sharing rooms
    # through one private Redis (None: this process alone); a node that has not
    # refreshed its lease for node_lease_s is dead and its rooms are adopted.
    redis_url: str | None = field(
        default=None,
        repr=False,  # may carry a password
        metadata={
            "help": "share rooms with other lobby nodes through Redis (redis://HOST:PORT/DB)",
            "flag": "--redis",
            "secret": True,
        },
    )
    node_lease_s: float = _cli(3.0, "seconds without a heartbeat before a node is dead")

    def __post_init__(self) -> None:
        # The welcome message announces the cap; 1 GiB is the protocol's ceiling.
        _int("max_message_bytes", self.max_message_bytes, 1024, 2**30)
        _int("max_rooms", self.max_rooms, 1)
        _int("max_connections", self.max_connections, 1)
        # room_joined/room_list carry max_players, capped at 1024 on the wire.
        _int("max_players_limit", self.max_players_limit, 1, 1024)
        _int("default_max_players", self.default_max_players, 1)
        _require(
            self.default_max_players <= self.max_players_limit,
            "default_max_players",
            "must be in 1..max_players_limit",
        )
        _int("max_metadata_bytes", self.max_metadata_bytes, 2)  # "{}" is 2 bytes
        if self.max_connections_per_ip is not None:
            _int("max_connections_per_ip", self.max_connections_per_ip, 1)
        _int("max_errors_before_close", self.max_errors_before_close, 0)
        _num("error_refill_per_s", self.error_refill_per_s, 0.0, 1e9)  # 0: lifetime count
        _num("rate_limit_per_s", self.rate_limit_per_s, 0.0, 1e9, open_lo=True)
        _num("rate_limit_burst", self.rate_limit_burst, 1.0, 1e9)
        _num("byte_rate_limit_per_s", self.byte_rate_limit_per_s, 0.0, 1e12, open_lo=True)
        # A full-size frame must fit in an empty bucket and in half an empty queue.
        _int("byte_rate_burst", self.byte_rate_burst, self.max_message_bytes)
        _int("max_outbound_bytes", self.max_outbound_bytes, 2 * self.max_message_bytes)
        _num("ping_interval_s", self.ping_interval_s, 0.0, 86_400.0, open_lo=True)
        _num("ping_timeout_s", self.ping_timeout_s, 0.0, 86_400.0, open_lo=True)
        _optional("token", self.token, str)
        # An empty token would let every client in: say "no token" with None.
        _require(self.token != "", "token", "must not be empty (None disables the check)")
        _tuple_of(self, "ice_servers", IceServer)
        _check_turn(self)
        _int("room_code_length", self.room_code_length, 4, 12)
        _num("reconnect_grace_s", self.reconnect_grace_s, 0.0, 86_400.0)
        _num("host_grace_s", self.host_grace_s, 0.0, 86_400.0)
        _int("max_banned_per_room", self.max_banned_per_room, 0)
        _require(type(self.serve_play) is bool, "serve_play", "must be a bool")
        _optional("node_id", self.node_id, str)
        _optional("metrics_token", self.metrics_token, str)
        _require(self.metrics_token != "", "metrics_token", "must not be empty (None: open)")
        _optional("certfile", self.certfile, str)
        _optional("keyfile", self.keyfile, str)
        _require(self.keyfile is None or self.certfile is not None, "keyfile", "needs certfile")
        _optional("redis_url", self.redis_url, str)
        _require(
            self.redis_url is None or self.redis_url.startswith(_REDIS_SCHEMES),
            "redis_url",
            "must be redis://HOST:PORT/DB (or rediss://, unix://)",
        )
        _num("node_lease_s", self.node_lease_s, 0.3, 600.0)
        _tuple_of(self, "trusted_proxies", str)
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(
                    f"trusted_proxies: not an address/network: {proxy!r:.60}"
                ) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerBudget:
    """What one remote peer may send us, checked per packet before decoding.

    Token buckets per channel: ``*_per_s`` is the sustained rate, ``burst_s``
    seconds of it the most that can arrive at once. The defaults leave ample
    headroom over 60 Hz state with heartbeats (about 70 packets/s) and a game
    sending 16 events per tick. Over budget, a state-channel packet is dropped
    (``PeerStats.rate_limited``) and a reliable one ends the link, because it
    cannot be dropped without breaking its channel's promise; a state channel
    over budget for ``abuse_after_s`` ends it too. Either way the game gets
    ``PeerLost(peer_id, reason="abuse")``. ``pings_answered_per_s``: PINGs beyond
    it are ignored (``PeerStats.pings_ignored``), never answered in bulk. Malformed
    messages (``PeerStats.bad_packets``) beyond ``bad_messages_burst``, refilled at
    ``bad_messages_per_s``, end the link with ``reason="abuse"`` too.
    """

    # Limits
    state_msgs_per_s: float = 360.0
    state_bytes_per_s: float = 512_000.0
    event_msgs_per_s: float = 1_000.0
    event_bytes_per_s: float = 2_000_000.0
    burst_s: float = 2.0
    pings_answered_per_s: float = 8.0
    # Malformed messages tolerated: a burst of this many, refilled at the rate below
    # (an honest peer sends none; a hostile one is cut off before it costs much).
    bad_messages_burst: int = 10
    bad_messages_per_s: float = 1.0
    # Timeouts
    abuse_after_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("state_msgs_per_s", "event_msgs_per_s", "pings_answered_per_s"):
            _num(name, getattr(self, name), 0.0, 1e7, open_lo=True)
        for name in ("state_bytes_per_s", "event_bytes_per_s"):
            _num(name, getattr(self, name), 0.0, 1e12, open_lo=True)
        _num("burst_s", self.burst_s, 0.0, 3_600.0, open_lo=True)
        _int("bad_messages_burst", self.bad_messages_burst, 1)
        _num("bad_messages_per_s", self.bad_messages_per_s, 0.0, 1e6)
        _num("abuse_after_s", self.abuse_after_s, 0.0, 86_400.0)


def _quantize_map(value: object) -> Mapping[str, float]:
    """A read-only copy of a ``{field: step > 0}`` map (both ends must round alike)."""
    _require(
        isinstance(value, Mapping),
        "snapshot_quantize",
        f"must be a mapping field -> step, got {type(value).__name__}",
    )
    assert isinstance(value, Mapping)
    for name, step in value.items():
        _require(
            isinstance(name, str) and bool(name),
            "snapshot_quantize",
            f"field names must be non-empty str, got {name!r:.60}",
        )
        _num(f"snapshot_quantize[{name!r}]", step, 0.0, 1e12, open_lo=True)
    return MappingProxyType(dict(value))


def _default_channels() -> tuple[ChannelConfig, ...]:
    return (ChannelConfig.unreliable(), ChannelConfig.reliable_ordered())


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionConfig:
    """Settings of a :func:`netcode.connect` session."""

    channels: tuple[ChannelConfig, ...] = field(default_factory=_default_channels)
    ice_servers: tuple[IceServer, ...] = ()
    # "relay": connect only through the TURN server (W3C iceTransportPolicy), for
    # testing TURN and for players who must not reveal their address; "all": any path.
    ice_transport_policy: Literal["all", "relay"] = "all"
    # Pin ICE host candidates to these addresses (e.g. ("127.0.0.1",) for local play
    # and tests). None: every non-loopback interface, aiortc's default.
    host_addresses: tuple[str, ...] | None = None
    limits: Limits = field(default_factory=Limits)
    conditions: NetworkConditions | None = None
    token: str | None = None
    # Timeouts
    connect_timeout_s: float = 10.0
    lobby_timeout_s: float = 10.0
    heartbeat_interval_s: float = 0.25
    peer_timeout_s: float = 3.0
    # Backpressure. State waiting to be handed to SCTP beyond this many bytes makes
    # new state drop (latest wins): about two ticks of 1,160-byte state.
    state_buffer_threshold: int = 2_400
    reliable_buffer_limit: int = 65_536
    # Hostile or buggy peers: what each peer may send us, and how many of its
    # events wait for poll() (over max_queued_events events or max_queued_event_bytes
    # encoded bytes: the peer is disconnected with PeerLost(reason="overflow"); over
    # max_queued_states: its oldest queued state/snapshot is dropped, newest wins).
    budget: PeerBudget = field(default_factory=PeerBudget)
    max_queued_events: int = 1_024
    max_queued_event_bytes: int = 2_097_152
    max_queued_states: int = 16
    # Redundancy: every state/snapshot packet goes out this many times (2: each one
    # is sent twice, so one lost copy costs no tick; twice the bytes). The receiver
    # keeps the first copy and counts the others as stale_drops.
    state_copies: int = 1
    # Stats: a StatsUpdated event per connected peer every this many seconds (checked
    # on each heartbeat, so never more often than heartbeat_interval_s); None: off.
    stats_interval_s: float | None = 1.0
    # Snapshots: {field: step}; those float fields travel as integer multiples of the
    # step (smaller deltas). Every peer must use the same map. Stored read-only and
    # left out of the hash (a mapping is not hashable).
    snapshot_quantize: Mapping[str, float] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        _tuple_of(self, "channels", ChannelConfig)
        _tuple_of(self, "ice_servers", IceServer)
        _require(
            self.ice_transport_policy in ("all", "relay"),
            "ice_transport_policy",
            f'must be "all" or "relay", got {self.ice_transport_policy!r:.40}',
        )
        if isinstance(self.host_addresses, str):  # ("127.0.0.1") is a str, not a tuple
            raise ConfigError(
                f"host_addresses: must be a tuple of addresses, e.g. ({self.host_addresses!r},)"
            )
        if self.host_addresses is not None:
            _tuple_of(self, "host_addresses", str)
        _require(isinstance(self.limits, Limits), "limits", "must be a Limits")
        _optional("conditions", self.conditions, NetworkConditions)
        _optional("token", self.token, str)
        for name in ("connect_timeout_s", "lobby_timeout_s", "heartbeat_interval_s"):
            _num(name, getattr(self, name), 0.0, 86_400.0, open_lo=True)
        _num("peer_timeout_s", self.peer_timeout_s, 0.0, 86_400.0, open_lo=True)
        _int("state_buffer_threshold", self.state_buffer_threshold, 0)
        _int("reliable_buffer_limit", self.reliable_buffer_limit, 1)
        _require(isinstance(self.budget, PeerBudget), "budget", "must be a PeerBudget")
        _int("max_queued_events", self.max_queued_events, 1)
        _int("max_queued_states", self.max_queued_states, 1)
        _int("max_queued_event_bytes", self.max_queued_event_bytes, 1)
        _require(
            self.max_queued_event_bytes >= self.limits.max_event_bytes,
            "max_queued_event_bytes",
            "must be >= limits.max_event_bytes (one whole event must fit)",
        )
        _int("state_copies", self.state_copies, 1, 3)
        if self.stats_interval_s is not None:
            _num("stats_interval_s", self.stats_interval_s, 0.0, 86_400.0, open_lo=True)
        if self.snapshot_quantize is not None:
            object.__setattr__(self, "snapshot_quantize", _quantize_map(self.snapshot_quantize))
        _require(
            self.peer_timeout_s > self.heartbeat_interval_s,
            "peer_timeout_s",
            "must be greater than heartbeat_interval_s",
        )
        ids = [c.id for c in self.channels]
        _require(len(ids) == len(set(ids)), "channels", "channel ids must be unique")
        labels = [c.label for c in self.channels]
        _require(len(labels) == len(set(labels)), "channels", "channel labels must be unique")
