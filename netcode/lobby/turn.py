"""Time-limited TURN credentials in coturn's REST scheme, minted per peer (pure).

coturn with ``use-auth-secret`` and ``static-auth-secret=SECRET`` (the "TURN REST
API" draft, draft-uberti-behave-turn-rest-00) accepts any username of the form
``<unix expiry>:<anything>`` whose password is ``base64(HMAC-SHA1(SECRET,
username))``, until the expiry. The lobby and coturn share the secret and never
talk to each other: the lobby mints a pair per peer in its ``welcome``, a
reconnecting peer gets a fresh pair in the welcome of its new connection.

Time is passed in (``unix_now``: wall-clock seconds, the clock coturn compares
against), so this module reads no clock and is tested without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from msgspec.structs import replace

from ..config import IceServer, LobbyConfig
from .messages import Welcome
from .states import Output

__all__ = [
    "TurnCredentials",
    "ice_servers_for",
    "mint_turn_credentials",
    "turn_password",
    "with_turn_credentials",
]


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    """A username/credential pair coturn accepts until ``expires_at`` (unix seconds)."""

    username: str
    credential: str
    expires_at: int


def turn_password(secret: str, username: str) -> str:
    """coturn's REST-scheme password for ``username``: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint_turn_credentials(
    secret: str, peer_id: str, unix_now: float, ttl_s: int
) -> TurnCredentials:
    """Credentials for ``peer_id`` valid for ``ttl_s`` seconds from ``unix_now``.

    The peer id after the colon only labels coturn's logs and quotas; coturn
    checks the expiry before the colon and the HMAC.
    """
    if not secret:
        raise ValueError("TURN secret must not be empty")
    expires_at = int(unix_now) + int(ttl_s)
    username = f"{expires_at}:{peer_id}"
    return TurnCredentials(username, turn_password(secret, username), expires_at)


def ice_servers_for(config: LobbyConfig, peer_id: str, unix_now: float) -> tuple[IceServer, ...]:
    """The ``welcome`` ICE servers for one peer: STUN, TURN (fresh credentials), then
    the static ``config.ice_servers``.

    Order matters: aiortc uses only the first STUN and the first TURN url it is
    given, so the configured STUN/TURN come first.
    """
    servers: list[IceServer] = []
    if config.stun_urls:
        servers.append(IceServer(urls=config.stun_urls))
    if config.turn_urls and config.turn_secret:
        cred = mint_turn_credentials(config.turn_secret, peer_id, unix_now, config.turn_ttl_s)
        servers.append(
            IceServer(urls=config.turn_urls, username=cred.username, credential=cred.credential)
        )
    servers.extend(config.ice_servers)
    return tuple(servers)


def with_turn_credentials(out: Output, config: LobbyConfig, unix_now: float) -> Output:
    """The lobby core's output with every ``welcome`` given its peer's ICE servers.

    The core stays clock-free (its ``now`` is monotonic, coturn needs wall time):
    the I/O layer passes what the core returned through this, with ``time.time()``.
    """
    if not config.turn_urls and not config.stun_urls:
        return out
    result: Output = []
    for conn_id, item in out:
        if isinstance(item, Welcome):
            item = replace(item, ice_servers=ice_servers_for(config, item.peer_id, unix_now))
        result.append((conn_id, item))
    return result
