"""Client of the lobby/signaling server (protocol in docs/PROTOCOL.md section 1).

::

    async with await SignalingClient.connect("ws://127.0.0.1:8765") as lobby:
        info = await lobby.create_room(max_players=4)
        event = await lobby.next_event()      # PeerJoinedMsg | PeerLeftMsg | SignalMsg

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

from ..config import IceServer
from ..errors import (
    AuthError,
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    LobbyError,
    LobbyProtocolError,
    RoomFull,
    RoomNotFound,
)
from ..lobby.messages import (
    ClientMessage,
    CreateRoom,
    ErrorMsg,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    PeerJoinedMsg,
    PeerLeftMsg,
    RoomJoined,
    RoomLeft,
    RoomList,
    RoomSummary,
    SendSignal,
    ServerMessage,
    SignalMsg,
    Welcome,
    parse_server,
    serialize,
)

__all__ = ["LobbyEvent", "RoomInfo", "RoomSummary", "SignalingClient"]

log = logging.getLogger("netcode.signaling")

LobbyEvent: TypeAlias = PeerJoinedMsg | PeerLeftMsg | SignalMsg

# Server frames are capped by the server's max_message_bytes (64 KiB by default);
# a relayed signal is a little larger than the frame that carried it.
_CLIENT_MAX_SIZE = 4 * 1024 * 1024
_ERRORS: dict[str, type[LobbyError]] = {
    "room_not_found": RoomNotFound,
    "room_full": RoomFull,
    "auth_failed": AuthError,
}


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """The room you are in, as of joining: ``peers`` are the others, in join order."""

    room: str
    peers: tuple[str, ...]
    max_players: int
    private: bool
    metadata: dict[str, Any] = field(default_factory=dict)


class _Closed:
    """Sentinel queued when the socket ends, to wake every next_event() waiter."""


_CLOSED = _Closed()


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
        # The last error the server sent that answered no pending request
        # (e.g. a signal to a peer that just left); kept for diagnostics.
        self.last_error: LobbyError | None = None
        self._timeout = timeout
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ServerMessage]] = {}
        self._events: asyncio.Queue[LobbyEvent | _Closed] = asyncio.Queue()
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
        max_players: int = 4,
        private: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> RoomInfo:
        """Create a room and join it. Its code is ``info.room``."""
        reply = await self._request(
            lambda rid: CreateRoom(
                max_players=max_players, private=private, metadata=metadata or {}, rid=rid
            )
        )
        return self._room_info(reply)

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

    async def close(self) -> None:
        """Close the websocket (1000) and stop the reader. Idempotent."""
        await self._ws.close()
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
        if isinstance(message, RoomJoined):
            self.room = message.room
        elif isinstance(message, RoomLeft):
            self.room = None
        rid = getattr(message, "rid", None)
        future = self._pending.get(rid) if isinstance(rid, int) else None
        if future is not None and not future.done():
            future.set_result(message)
        elif isinstance(message, PeerJoinedMsg | PeerLeftMsg | SignalMsg):
            self._events.put_nowait(message)
        elif isinstance(message, ErrorMsg):
            self.last_error = _lobby_error(message)
            log.info("lobby error: %s", self.last_error)

    def _shutdown(self, error: ConnectionClosed) -> None:
        if self._closed_error is not None:
            return
        self._closed_error = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._events.put_nowait(_CLOSED)
