"""The session's seat in the lobby room: lobby messages, signals, rejoining.

:class:`_LobbySeat` is the middle layer of :class:`netcode.net.session.Session`,
on top of the peer table (:mod:`netcode.net._peer_links`). It reads the lobby
connection (peers joining and leaving, signals relayed for our links, host
changes, kicks, room updates) and, when that connection drops, takes the seat
back on a new one with the reconnection token, rotating through the lobby's
nodes, while the peer links stay up. Also here: which lobby nodes a session may
use and the first of them that answers, and the check of how to get into a room.

Private to :mod:`netcode.net`: the state is set up by ``Session.__init__``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import SessionConfig
from ..errors import ConfigError, ConnectionClosed, ConnectTimeout, LobbyError
from ..events import Kicked, PeerLeft, PeerReconnected, PeerReconnecting
from ..lobby.match_messages import HostChanged as HostChangedMsg
from ..lobby.match_messages import Kicked as KickedMsg
from ..lobby.match_messages import PeerReconnected as PeerReconnectedMsg
from ..lobby.match_messages import PeerReconnecting as PeerReconnectingMsg
from ..lobby.match_messages import RoomUpdated
from ..lobby.messages import PeerJoinedMsg, PeerLeftMsg, SignalMsg
from ._peer_links import _PeerLinks
from .rtc import PeerLink
from .signaling import RoomInfo, SignalingClient

__all__ = ["_LobbySeat", "check_room_choice", "first_lobby", "lobby_urls"]

# The session's logger, whichever module of it logs.
logger = logging.getLogger("netcode.session")


class _LobbySeat(_PeerLinks):
    """The lobby side of a session (see the module docstring)."""

    _loop: asyncio.AbstractEventLoop
    _urls: tuple[str, ...]
    _url: str
    _room: str
    _token: str | None
    _token_ttl: float
    _metadata: dict[str, Any]
    _locked: bool
    _kicked: bool
    _closed: bool
    lobby_connected: bool

    # -- lobby ------------------------------------------------------------------------------

    async def _signal_loop(self) -> None:
        while True:
            try:
                async for msg in self._client:
                    self._on_lobby_message(msg)
            except ConnectionClosed:
                pass
            except Exception:  # never let a lobby hiccup kill established peer links
                logger.exception("lobby connection failed")
            self.lobby_connected = False
            if self._closed or self._kicked or not await self._rejoin_lobby():
                break
        if not self._closed:
            logger.warning("lost the lobby connection; peer links stay up")

    async def _rejoin_lobby(self) -> bool:
        """Take our seat back on a new lobby connection, within the grace period."""
        if self._token is None or not self._url:
            return False
        if self._client.close_code == 1000:
            # The lobby closed us on purpose (our seat was taken by a newer connection
            # with our token, or we were told to go): taking it back would fight it.
            logger.info("the lobby closed our connection normally: not rejoining")
            return False
        logger.info("lobby connection lost: rejoining room %s", self._room)
        deadline = self._loop.time() + max(self._token_ttl, 1.0)
        delay = 0.05
        turn = 0
        while not self._closed and self._loop.time() < deadline:
            url = self._urls[turn % len(self._urls)]
            try:
                client = await SignalingClient.connect(
                    url, token=self._config.token, timeout=self._config.lobby_timeout_s
                )
            except (ConnectionClosed, ConnectTimeout, OSError):
                turn += 1  # that node is down: the next one (several lobby nodes)
                if turn % len(self._urls) == 0:
                    delay = await _back_off(delay)  # none is back yet: retry, backing off
                continue
            self._url = url
            try:
                info = await client.rejoin(self._token, self._room)
            except LobbyError as exc:  # bad_token (expired), banned, room gone: final
                if exc.code == "unavailable":  # several nodes: the room is moving
                    await client.close()
                    delay = await _back_off(delay)
                    continue
                logger.warning("could not rejoin room %s: %s", self._room, exc)
                await client.close()
                return False
            except (ConnectionClosed, ConnectTimeout, TimeoutError):
                await client.abort()
                continue
            self._client, self.lobby_connected = client, True
            # Fresh TURN credentials come with the new welcome: rebuilt links use them.
            self._ice_servers = self._config.ice_servers or tuple(client.ice_servers)
            self._after_rejoin(info)
            return True
        return False

    def _after_rejoin(self, info: RoomInfo) -> None:
        """Back in the room: catch up on what the lobby said while we were away (a new
        host, peers gone), rebuild the links that died meanwhile (we offer: others
        wait for the rejoiner), keep the ones that work or were made just now."""
        before = {pid: row.link for pid, row in self._peers.items()}
        previous = self._host_id
        if info.host is not None and previous is not None and info.host != previous:
            self._on_host_changed(info.host, previous)  # the event, and the star rebuilt
        self._host_id = info.host
        for gone in [p for p in self._peers if p not in info.peers]:
            self._retire(gone, None)
            self._push(PeerLeft(gone, "left"))
        for peer_id in info.peers:
            if peer_id in info.reconnecting:
                continue
            peer = self._peers.get(peer_id)
            if not self._wants_link(peer_id):  # a star client: through the host
                if peer is None:
                    self._add_via_host(peer_id)
                continue
            link = None if peer is None else peer.link
            if link is not None and link is not before.get(peer_id):
                continue  # made by the host change above: its offer is on its way
            if link is None or link.state != "connected":  # its signals may be lost
                self._replace_link(peer_id, offer=True)

    def _on_lobby_message(self, msg: object) -> None:
        if isinstance(msg, SignalMsg):
            self._on_signal(msg)
        elif isinstance(msg, PeerJoinedMsg):
            if msg.peer_id not in self._peers and msg.peer_id != self.peer_id:
                self._add_peer(msg.peer_id, offer=False)
        elif isinstance(msg, PeerLeftMsg) and msg.peer_id in self._peers:
            self._retire(msg.peer_id, None)
            self._push(PeerLeft(msg.peer_id, msg.reason))
        elif isinstance(msg, PeerReconnectingMsg):
            self._push(PeerReconnecting(msg.peer_id))
        elif isinstance(msg, PeerReconnectedMsg):
            self._push(PeerReconnected(msg.peer_id))
            # It offers anew where its links died; ours is replaced when its offer comes.
        elif isinstance(msg, HostChangedMsg):
            self._on_host_changed(msg.host, msg.previous)
        elif isinstance(msg, KickedMsg):
            self._on_kicked(msg.reason)
        elif isinstance(msg, RoomUpdated):
            self._metadata, self._locked = dict(msg.metadata), msg.locked

    def _on_kicked(self, reason: str) -> None:
        self._kicked = True
        for peer_id in list(self._peers):
            self._retire(peer_id, None)
        self._push(Kicked(self.peer_id, reason))

    def _on_signal(self, msg: SignalMsg) -> None:
        if not isinstance(msg.data, dict):
            logger.debug("signal %r from %s without a data object", msg.kind, msg.sender)
            return
        link = self._link(msg.sender)
        fresh = link is None or link.state != "connecting" or self._offered(link)
        if msg.kind == "offer" and msg.sender != self.peer_id and fresh:
            # A new peer (its offer raced peer_joined), one that is back after a
            # crash or a dropped link, or a client of ours offering in a new star.
            link = self._replace_link(msg.sender, offer=False)
        if link is not None:
            link.handle_signal(msg.kind, msg.data)

    @staticmethod
    def _offered(link: PeerLink) -> bool:
        """We sent an offer on this link too (both sides offered: the newer offer wins)."""
        return link.offerer


async def _back_off(delay: float) -> float:
    """Wait ``delay`` s; the next delay (doubled, at most 1 s)."""
    await asyncio.sleep(delay)
    return min(delay * 2, 1.0)


def lobby_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """The lobby URLs a session may use: one URL, a comma-separated list of them
    (``"ws://a:8765,ws://b:8765"``) or a sequence; ConfigError if there is none."""
    parts = url.split(",") if isinstance(url, str) else list(url)
    if not all(isinstance(p, str) for p in parts):
        raise ConfigError(f"lobby url: a str or a sequence of str, got {url!r:.80}")
    urls = tuple(p.strip() for p in parts if p.strip())
    if not urls:
        raise ConfigError(f"lobby url: none given in {url!r:.80}")
    return urls


async def first_lobby(urls: tuple[str, ...], config: SessionConfig) -> tuple[SignalingClient, str]:
    """A client of the first lobby node that answers, in order."""
    error: Exception | None = None
    for url in urls:
        try:
            client = await SignalingClient.connect(
                url, token=config.token, timeout=config.lobby_timeout_s
            )
            return client, url
        except (ConnectionClosed, ConnectTimeout) as exc:  # refused, closed, silent
            error = exc
    raise ConnectTimeout(f"lobby {', '.join(urls)} unreachable: {error}") from error


def check_room_choice(
    room: str | None,
    create: bool,
    quick_match: Mapping[str, Any] | None,
    rejoin_token: str | None,
) -> None:
    """Exactly one way into a room, and well-formed options, before any I/O."""
    if room is not None and create:
        raise ConfigError("connect: pass room= to join, or create=True, not both")
    if quick_match is not None:
        if room is not None or create or rejoin_token is not None:
            raise ConfigError(
                "connect: quick_match= finds the room: no room=/create=/rejoin_token="
            )
        if not isinstance(quick_match, Mapping) or not {"game", "size"} <= quick_match.keys():
            raise ConfigError(
                'quick_match: a mapping with "game" and "size", e.g. {"game": "arena", "size": 4}'
            )
    if rejoin_token is not None and (create or not isinstance(rejoin_token, str)):
        raise ConfigError(
            "connect: rejoin_token= (a str from session.reconnect_token) takes "
            "the seat back; no create="
        )
