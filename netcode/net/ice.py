"""ICE for internet play: the transport policy, the relay check, the path a link took.

aiortc is silent where a game developer needs to know (AIORTC_NOTES "NAT and TURN"):

- Wrong, expired or replayed TURN credentials, or an unreachable TURN server, give no
  error: ``setLocalDescription`` returns normally and the SDP has no ``typ relay``
  candidate; ICE then fails ~63 s later. :func:`check_relay` looks right away:
  relay-only links fail at once with a reason naming the TURN server, other links log
  a warning (they may still connect directly).
- Which path a link took (host / srflx / relay) is only in aioice's private
  ``Connection._nominated``; :func:`selected_path` reads it defensively.
- Only the first STUN and the first TURN url are used, only password credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from ..config import IceServer
from ..errors import TransportError

__all__ = [
    "PathType",
    "check_relay",
    "path_type",
    "relay_problem",
    "rtc_ice_transport_policy",
    "selected_pair",
    "selected_path",
    "turn_urls",
]

logger = logging.getLogger("netcode.ice")

PathType = Literal["host", "srflx", "relay"]
"""``host``: both ends on their own addresses (LAN, no NAT between); ``srflx``: direct
through at least one NAT (server- or peer-reflexive candidate); ``relay``: through TURN."""


def rtc_ice_transport_policy(policy: str) -> Any:
    """aiortc's RTCIceTransportPolicy for ``SessionConfig.ice_transport_policy``."""
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    return RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL


def turn_urls(servers: Sequence[IceServer]) -> list[str]:
    """Every turn:/turns: url in ``servers``, in order (aiortc uses the first)."""
    urls: list[str] = []
    for server in servers:
        for url in (server.urls,) if isinstance(server.urls, str) else server.urls:
            if url.startswith(("turn:", "turns:")):
                urls.append(url)
    return urls


def _has_relay_candidate(sdp: str) -> bool:
    return any(
        line.startswith("a=candidate:") and " typ relay" in line for line in sdp.splitlines()
    )


def relay_problem(sdp: str, servers: Sequence[IceServer], policy: str) -> str | None:
    """Why the local description lacks the relay candidate it should have, or None."""
    urls = turn_urls(servers)
    if not urls:
        return "relay-only policy but no TURN server configured" if policy == "relay" else None
    if _has_relay_candidate(sdp):
        return None
    return (
        f"no relay candidate from TURN server {urls[0]}: wrong, expired or replayed"
        " credentials, or the server is unreachable"
    )


def check_relay(sdp: str, servers: Sequence[IceServer], policy: str, peer_id: str) -> None:
    """Raise TransportError for a relay-only link without a relay; warn otherwise."""
    problem = relay_problem(sdp, servers, policy)
    if problem is None:
        return
    if policy == "relay":
        raise TransportError(problem)
    logger.warning("peer %s: %s (trying direct paths only)", peer_id, problem)


def path_type(local: str, remote: str) -> PathType:
    """The path of a candidate pair from its two candidate types (RFC 8445 5.1.1.1)."""
    if "relay" in (local, remote):
        return "relay"
    if local == "host" and remote == "host":
        return "host"
    return "srflx"  # srflx or prflx on either side: direct, through a NAT


def selected_pair(pc: Any) -> tuple[str, str] | None:
    """(local type, remote type) of the nominated pair of ``pc``, or None.

    Reads aiortc/aioice internals (``RTCIceTransport._connection._nominated``);
    None when they are missing or nothing is nominated yet.
    """
    try:
        connection = pc.sctp.transport.transport._connection
        pair = next(iter(connection._nominated.values()), None)
        if pair is None:
            return None
        return str(pair.local_candidate.type), str(pair.remote_candidate.type)
    except AttributeError:
        return None


def selected_path(pc: Any) -> PathType | None:
    """host / srflx / relay for ``pc``'s nominated candidate pair (None: not connected)."""
    pair = selected_pair(pc)
    return None if pair is None else path_type(*pair)
