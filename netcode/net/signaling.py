"""Client of the lobby/signaling server (protocol in docs/PROTOCOL.md section 1).

::

    async with await SignalingClient.connect("ws://127.0.0.1:8765") as lobby:
        info = await lobby.create_room(max_players=4, topology="star")
        event = await lobby.next_event()      # PeerJoinedMsg | PeerLeftMsg | SignalMsg | ...
        # later, on a new connection after a crash: same peer id and seat
        info = await other_lobby.rejoin(info.token)

A background reader task owns the socket's receive side. Replies are matched to
requests by ``rid``; presence and signal messages are queued for
:meth:`SignalingClient.next_event` / :meth:`SignalingClient.poll_events`. Remote
``error`` replies become :class:`netcode.errors.LobbyError` subclasses here, at the
receive boundary, so callers never inspect wire codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from ..config import DEFAULT_MAX_PLAYERS, IceServer
from ..errors import (
    AuthError,
    BadToken,
    Banned,
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    LobbyError,
    LobbyProtocolError,
    NotOwner,
    RoomFull,
    RoomLocked,
    RoomNotFound,
)
from ..lobby.messages import (
    CancelQuickMatch,
    ClientMessage,
    CreateRoom,
    ErrorMsg,
    HostChanged,
    JoinRoom,
    Kick,
    Kicked,
    LeaveRoom,
    ListRooms,
    LockRoom,
    Ok,
    PeerJoinedMsg,
    PeerLeftMsg,
    PeerReconnected,
    PeerReconnecting,
    QuickMatch,
    QuickMatchWaiting,
    Rejoin,
    RoomJoined,
    RoomLeft,
    RoomList,
    RoomSummary,
    RoomUpdated,
    SendSignal,
    ServerMessage,
    SignalMsg,
    UpdateRoom,
    Welcome,
    parse_server,
    serialize,
)

__all__ = ["LobbyEvent", "RoomInfo", "RoomSummary", "SignalingClient"]

log = logging.getLogger("netcode.signaling")

# Everything the lobby says on its own (not a reply), in arrival order.
LobbyEvent: TypeAlias = (
    PeerJoinedMsg
    | PeerLeftMsg
    | SignalMsg
    | PeerReconnecting
    | PeerReconnected
    | HostChanged
    | Kicked
    | RoomUpdated
    | QuickMatchWaiting
)
_EVENT_TYPES = (
    PeerJoinedMsg,
    PeerLeftMsg,
    SignalMsg,
    PeerReconnecting,
    PeerReconnected,
    HostChanged,
    Kicked,
    RoomUpdated,
    QuickMatchWaiting,
)

# Server frames are capped by the server's max_message_bytes (64 KiB by default);
# a relayed signal is a little larger than the frame that carried it.
_CLIENT_MAX_SIZE = 4 * 1024 * 1024
_ERRORS: dict[str, type[LobbyError]] = {
    "room_not_found": RoomNotFound,
    "room_full": RoomFull,
    "auth_failed": AuthError,
    "room_locked": RoomLocked,
    "not_owner": NotOwner,
    "bad_token": BadToken,
    "banned": Banned,
}


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """The room you are in, as of joining: ``peers`` are the others, in join order
    (``reconnecting``: those of them whose websocket is gone for now).

    ``peer_id`` is yours in this room (after :meth:`SignalingClient.rejoin`, the
    seat's old id). ``host`` is the star's host or the mesh's owner: only it may
    kick, lock and update the room. ``token`` takes the seat back with
    :meth:`SignalingClient.rejoin` (also from another process: persist it) within
    ``token_expires_s`` seconds after the connection drops.
    """

    room: str
    peers: tuple[str, ...]
    max_players: int
    private: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    peer_id: str = ""
    topology: str = "mesh"
    host: str | None = None
    token: str | None = None
    token_expires_s: float = 0.0
    locked: bool = False
    reconnecting: tuple[str, ...] = ()


class _Closed:
    """Sentinel queued when the socket ends, to wake every next_event() waiter."""


_CLOSED = _Closed()


class _Cancelled:
    """Sentinel that ends a pending quick_match() after cancel_quick_match()."""


_CANCELLED = _Cancelled()


def _with_token(url: str, token: str | None) -> str:
    if token is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"]
    query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _lobby_error(reply: ErrorMsg) -> LobbyError:
    cls = _ERRORS.get(reply.code, LobbyError)
    return cls(f"{reply.code}: {reply.message}", code=reply.code)


class SignalingClient:
    """One connection to the lobby. Create it with :meth:`connect`."""

    def __init__(self, ws: ClientConnection, welcome: Welcome, *, timeout: float) -> None:
        self._ws = ws
        self.peer_id: str = welcome.peer_id
        self.ice_servers: tuple[IceServer, ...] = welcome.ice_servers
        self.max_message_bytes: int = welcome.max_message_bytes
        self.protocol_version: int = welcome.v
        self.room: str | None = None
        # As of the last room_joined / host_changed / room_updated.
        self.host: str | None = None
        self.token: str | None = None
        self.topology: str | None = None
        self.locked: bool = False
        # The last error the server sent that answered no pending request
        # (e.g. a signal to a peer that just left); kept for diagnostics.
        self.last_error: LobbyError | None = None
        self._timeout = timeout
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ServerMessage]] = {}
        self._events: asyncio.Queue[LobbyEvent | _Closed] = asyncio.Queue()
        # The rid of the quick_match() in progress and where its replies go.
        self._quick: tuple[int, asyncio.Queue[ServerMessage | _Cancelled]] | None = None
        self._closed_error: ConnectionClosed | None = None
        self._reader = asyncio.create_task(self._read_loop())

    # --- connecting ------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the contract's signature
    ) -> SignalingClient:
        """Open the websocket and wait for ``welcome``.

        Raises AuthError (HTTP 401/403), ConnectTimeout (no welcome within
        ``timeout`` s), ConnectionClosed (refused, or closed e.g. with 1013 when the
        lobby is full), ConfigError (not a ws:// or wss:// url).
        """
        if not isinstance(url, str):
            raise ConfigError(f"lobby url must be a str like 'ws://host:port', got {url!r:.60}")
        try:
            async with asyncio.timeout(timeout):
                ws = await ws_connect(
                    _with_token(url, token),
                    open_timeout=None,  # the outer timeout covers handshake + welcome
                    max_size=_CLIENT_MAX_SIZE,
                    compression=None,
                )
                try:
                    welcome = parse_server(await ws.recv(decode=True))
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError:
            raise ConnectTimeout(f"lobby {url} did not welcome us within {timeout} s") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                msg = f"lobby rejected the token (HTTP {status})"
                raise AuthError(msg, code="auth_failed") from None
            raise ConnectionClosed(f"lobby rejected the handshake: HTTP {status}") from exc
        except InvalidURI as exc:
            raise ConfigError(f"invalid lobby url {url!r}: {exc}") from exc
        except WsConnectionClosed as exc:
            raise ConnectionClosed(f"lobby closed the connection: {exc}") from exc
        except (OSError, InvalidHandshake) as exc:
            raise ConnectionClosed(f"cannot connect to lobby {url}: {exc}") from exc
        if not isinstance(welcome, Welcome):
            await ws.close()
            raise LobbyProtocolError(f"expected welcome, got {welcome.TYPE}", code="bad_message")
        return cls(ws, welcome, timeout=timeout)

    # --- requests --------------------------------------------------------------------

    async def create_room(
        self,
        max_players: int = DEFAULT_MAX_PLAYERS,
        private: bool = False,
        metadata: dict[str, Any] | None = None,
        topology: str = "mesh",
    ) -> RoomInfo:
        """Create a room and join it as its host. Its code is ``info.room``.

        ``topology``: "mesh" (everyone connects to everyone) or "star" (everyone
        connects to the host only); the lobby only records and announces it.
        """
        reply = await self._request(
            lambda rid: CreateRoom(
                max_players=max_players,
                private=private,
                metadata=metadata or {},
                rid=rid,
                topology=topology,
            )
        )
        return self._room_info(reply)

    async def rejoin(self, token: str, room: str | None = None) -> RoomInfo:
        """Take back a seat with its reconnection token (from :attr:`RoomInfo.token`),
        on this new connection: :attr:`peer_id` becomes the seat's old id and the
        other members get ``peer_reconnected``. ``room``, if given, must be the
        token's room. Raises LobbyError code ``bad_token`` (unknown, expired,
        revoked or another room's token) or ``banned`` (kicked from that room)."""
        reply = await self._request(lambda rid: Rejoin(token=token, room=room, rid=rid))
        return self._room_info(reply)

    async def kick(self, peer: str, reason: str = "") -> None:
        """Host only: remove ``peer`` from the room; it gets a ``Kicked`` event with
        ``reason``, the others ``peer_left`` reason ``kicked``, and its identity
        cannot come back. LobbyError codes: ``not_owner``, ``peer_not_in_room``,
        ``bad_target`` (yourself)."""
        self._expect(await self._request(lambda rid: Kick(peer=peer, reason=reason, rid=rid)), Ok)

    async def lock_room(self, locked: bool = True) -> None:
        """Host only: refuse (or allow again) new joins; members get ``RoomUpdated``.
        Joining a locked room fails with LobbyError code ``room_locked``."""
        self._expect(await self._request(lambda rid: LockRoom(locked=locked, rid=rid)), Ok)

    async def update_room(self, metadata: dict[str, Any]) -> None:
        """Host only: replace the room's metadata (seen by list_rooms and, as a
        ``RoomUpdated`` event, by every member)."""
        self._expect(await self._request(lambda rid: UpdateRoom(metadata=metadata, rid=rid)), Ok)

    async def join_room(self, code: str) -> RoomInfo:
        """Join a room by code (case-insensitive). Raises RoomNotFound / RoomFull."""
        reply = await self._request(lambda rid: JoinRoom(room=code, rid=rid))
        return self._room_info(reply)

    async def leave_room(self) -> None:
        """Leave the current room (LobbyError code not_in_room if in none)."""
        reply = await self._request(lambda rid: LeaveRoom(rid=rid))
        self._expect(reply, RoomLeft)

    async def list_rooms(self, game: str | None = None) -> list[RoomSummary]:
        """Public rooms, optionally only those whose metadata ``game`` matches."""
        reply = await self._request(lambda rid: ListRooms(game=game, rid=rid))
        return list(self._expect(reply, RoomList).rooms)

    async def quick_match(
        self,
        game: str,
        size: int,
        *,
        topology: str = "mesh",
        metadata: dict[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the wait for players
    ) -> RoomInfo:
        """Wait until ``size`` players asked for the same ``game``/``size``/
        ``topology``, then return the room the lobby seated them in (the first
        arrival hosts). Progress arrives as ``QuickMatchWaiting`` events.

        ``timeout`` (None: wait as long as it takes) bounds the wait: on expiry the
        request is cancelled and ConnectTimeout raised (unless the match completed
        meanwhile: then its room is returned). :meth:`cancel_quick_match` from
        another task makes this raise LobbyError code ``cancelled``.
        """
        if self._quick is not None:
            raise LobbyError("a quick_match is already waiting", code="in_quick_match")
        rid = next(self._rids)
        message = self._build(
            lambda r: QuickMatch(
                game=game, size=size, topology=topology, metadata=metadata or {}, rid=r
            ),
            rid,
        )
        replies: asyncio.Queue[ServerMessage | _Cancelled] = asyncio.Queue()
        self._quick = (rid, replies)
        try:
            await self._send(message)
            return await self._await_match(replies, timeout)
        finally:
            self._quick = None

    async def _await_match(
        self,
        replies: asyncio.Queue[ServerMessage | _Cancelled],
        timeout: float | None,  # noqa: ASYNC109
    ) -> RoomInfo:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    reply = await self._next_reply(replies)
                    if isinstance(reply, RoomJoined):
                        return self._room_info(reply)
        except TimeoutError:
            pass
        try:
            await self.cancel_quick_match()
        except LobbyError as exc:
            if exc.code != "not_waiting":
                raise
            # Matched while we gave up: the room_joined is on its way.
            async with asyncio.timeout(self._timeout):
                while True:
                    reply = await self._next_reply(replies)
                    if isinstance(reply, RoomJoined):
                        return self._room_info(reply)
        raise ConnectTimeout(f"no quick match within {timeout} s")

    async def _next_reply(
        self, replies: asyncio.Queue[ServerMessage | _Cancelled]
    ) -> ServerMessage:
        if self._closed_error is not None and replies.empty():
            raise self._closed_error
        reply = await replies.get()
        if isinstance(reply, _Cancelled):
            if self._closed_error is not None:
                raise self._closed_error
            raise LobbyError("quick match cancelled", code="cancelled")
        if isinstance(reply, ErrorMsg):
            raise _lobby_error(reply)
        return reply

    async def cancel_quick_match(self) -> None:
        """Stop waiting for a quick match (a pending :meth:`quick_match` raises
        LobbyError ``cancelled``). LobbyError ``not_waiting`` if not waiting (e.g.
        the match just completed)."""
        self._expect(await self._request(lambda rid: CancelQuickMatch(rid=rid)), Ok)
        if self._quick is not None:
            self._quick[1].put_nowait(_CANCELLED)

    async def send_signal(self, to: str, kind: str, data: Any = None) -> None:
        """Relay ``data`` to peer ``to`` in our room (None sends ``{}``: the protocol
        requires a value). Fire-and-forget: the protocol has no success reply; a
        refusal (e.g. ``peer_busy``) lands in :attr:`last_error`."""
        payload = {} if data is None else data
        msg = self._build(lambda rid: SendSignal(to=to, kind=kind, data=payload, rid=rid), 0)
        await self._send(msg)

    # --- events ----------------------------------------------------------------------

    async def next_event(self) -> LobbyEvent:
        """The next presence/signal message. Raises ConnectionClosed once the lobby
        is gone and every queued event was delivered. Bound it with asyncio.timeout."""
        if self._events.empty() and self._closed_error is not None:
            raise self._closed_error
        item = await self._events.get()
        if isinstance(item, _Closed):
            self._events.put_nowait(item)  # wake the next waiter too
            assert self._closed_error is not None
            raise self._closed_error
        return item

    def poll_events(self) -> list[LobbyEvent]:
        """Every queued event, without waiting (for game loops that poll per frame)."""
        events: list[LobbyEvent] = []
        while not self._events.empty():
            item = self._events.get_nowait()
            if isinstance(item, _Closed):
                self._events.put_nowait(item)
                break
            events.append(item)
        return events

    def __aiter__(self) -> SignalingClient:
        return self

    async def __anext__(self) -> LobbyEvent:
        try:
            return await self.next_event()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    # --- closing ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed_error is not None

    @property
    def close_code(self) -> int | None:
        """The close code the lobby sent (None: open, or no close frame came).

        1000 from the lobby means "on purpose" (e.g. reason ``replaced by a newer
        connection``: a rejoin elsewhere took our seat): rejoining would fight it.
        """
        return self._ws.close_code if self._closed_error is not None else None

    async def close(self) -> None:
        """Close the websocket (1000) and stop the reader. Idempotent.

        A normal close means leaving: the lobby frees the seat at once (others get
        ``peer_left`` reason ``disconnected``) and the token stops working.
        """
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def abort(self) -> None:
        """Drop the connection without a close frame, as a crash or a network
        loss would: the lobby keeps the seat for its reconnect grace period (others
        get ``peer_reconnecting``), so :meth:`rejoin` on a new client gets it back."""
        self._ws.transport.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals -------------------------------------------------------------------

    def _build(self, factory: Callable[[int], ClientMessage], rid: int) -> ClientMessage:
        try:
            return factory(rid)
        except LobbyProtocolError as exc:  # a bad argument from our caller
            raise ConfigError(str(exc)) from None

    async def _send(self, message: ClientMessage) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        try:
            await self._ws.send(serialize(message))
        except WsConnectionClosed as exc:
            raise ConnectionClosed(f"lobby connection closed: {exc}") from exc

    async def _request(self, factory: Callable[[int], ClientMessage]) -> ServerMessage:
        rid = next(self._rids)
        message = self._build(factory, rid)
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await self._send(message)
            async with asyncio.timeout(self._timeout):
                reply = await future
        except TimeoutError:
            msg = f"lobby did not answer {message.TYPE} in {self._timeout} s"
            raise ConnectTimeout(msg) from None
        finally:
            self._pending.pop(rid, None)
        if isinstance(reply, ErrorMsg):
            raise _lobby_error(reply)
        return reply

    @staticmethod
    def _expect(reply: ServerMessage, cls: type[Any]) -> Any:
        if not isinstance(reply, cls):
            raise LobbyProtocolError(f"unexpected reply {reply.TYPE}", code="bad_message")
        return reply

    def _room_info(self, reply: ServerMessage) -> RoomInfo:
        joined: RoomJoined = self._expect(reply, RoomJoined)
        return RoomInfo(
            room=joined.room,
            peers=joined.peers,
            max_players=joined.max_players,
            private=joined.private,
            metadata=joined.metadata,
            peer_id=joined.peer_id,
            topology=joined.topology,
            host=joined.host,
            token=joined.token,
            token_expires_s=joined.token_expires_s,
            locked=joined.locked,
            reconnecting=joined.reconnecting,
        )

    async def _read_loop(self) -> None:
        reason = "lobby connection closed"
        try:
            async for text in self._ws:
                self._route(text)
        except WsConnectionClosed as exc:
            reason = f"lobby connection closed: {exc}"
        except Exception:  # a bug here must not leave callers waiting forever
            log.exception("lobby reader failed")
            reason = "lobby reader failed"
            await self._ws.close(1011, "client error")
        finally:
            rcvd = self._ws.close_code
            if rcvd is not None:
                reason = f"lobby connection closed (code {rcvd}: {self._ws.close_reason})"
            self._shutdown(ConnectionClosed(reason))

    def _route(self, text: str | bytes) -> None:
        try:
            message = parse_server(text)
        except LobbyProtocolError as exc:
            # A newer server may send types we don't know: skip, don't die.
            log.warning("ignoring lobby message: %s", exc)
            return
        self._track(message)
        rid = getattr(message, "rid", None)
        future = self._pending.get(rid) if isinstance(rid, int) else None
        quick = self._quick
        if future is not None and not future.done():
            future.set_result(message)
        elif quick is not None and rid == quick[0]:
            quick[1].put_nowait(message)
            if isinstance(message, QuickMatchWaiting):
                self._events.put_nowait(message)
        elif isinstance(message, _EVENT_TYPES):
            self._events.put_nowait(message)
        elif isinstance(message, ErrorMsg):
            self.last_error = _lobby_error(message)
            log.info("lobby error: %s", self.last_error)

    def _track(self, message: ServerMessage) -> None:
        """Keep room, identity and host up to date from what the lobby says."""
        if isinstance(message, RoomJoined):
            self.room, self.peer_id, self.host = message.room, message.peer_id, message.host
            self.token, self.topology, self.locked = message.token, message.topology, message.locked
        elif isinstance(message, RoomLeft | Kicked):
            self.room = self.host = self.token = self.topology = None
            self.locked = False
        elif isinstance(message, HostChanged):
            self.host = message.host
        elif isinstance(message, RoomUpdated):
            self.locked = message.locked

    def _shutdown(self, error: ConnectionClosed) -> None:
        if self._closed_error is not None:
            return
        self._closed_error = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        if self._quick is not None:
            self._quick[1].put_nowait(_CANCELLED)  # woken; _next_reply sees the close
        self._events.put_nowait(_CLOSED)
