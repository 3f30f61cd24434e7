"""The benchmarked paths: echo side (run in the peer process) and sender side.

Every sender-side client has the same small surface: ``send(obj)``,
``on_echo`` (called with each echoed message), ``set_conditions`` and
``close``, plus ``wire_bytes()`` where the bytes on the wire can be counted and
``send_drops()`` where the sender counts state it dropped (backpressure).
Impairment is applied where each mechanism allows (see ``TRANSPORTS`` in
``_common``): the datagram-level conditioner for WebRTC, the same pure model on
each UDP datagram, and message-level delay only for TCP/websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._common import Condition, encode_payload
from netcode.config import NetworkConditions, PeerBudget, SessionConfig
from netcode.net.conditioner import Conditioner, DatagramLink

__all__ = [
    "ECHO_BUDGET",
    "Client",
    "KernelLossWsClient",
    "NetcodeClient",
    "RtcClient",
    "UdpClient",
    "WireCounter",
    "WsClient",
    "open_session",
    "pin_loopback",
    "rtc_answer",
    "session_config",
    "start_netcode_echo",
    "start_udp_echo",
    "start_ws_relay",
]

OnMessage = Callable[[Any], bool]
"""Records a message at the echo peer; returns whether to echo it back."""
OnEcho = Callable[[Any], None]
Close = Callable[[], Awaitable[None]]
LOOPBACK = "127.0.0.1"
WS_MAX = 1 << 16
# Bare aiortc's max-rate probe drops like netcode does: above netcode's default.
STATE_BUFFER_THRESHOLD = SessionConfig().state_buffer_threshold


def pin_loopback() -> None:
    """Only 127.0.0.1 ICE host candidates in this process (aioice skips loopback)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda *_a, **_k: [LOOPBACK]


class WireCounter:
    """Counts every datagram aioice sends in this process (class-level, benchmark only)."""

    bytes = 0
    datagrams = 0
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        import aioice.ice

        original = aioice.ice.Connection.sendto

        async def sendto(self: Any, data: bytes, component: int) -> None:
            cls.bytes += len(data)
            cls.datagrams += 1
            await original(self, data, component)

        aioice.ice.Connection.sendto = sendto
        cls._installed = True


# --------------------------------------------------------------------------- echo side


async def start_udp_echo(on_message: OnMessage) -> tuple[int, Close]:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            if on_message(data):
                self.transport.sendto(data, addr)

    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(LOOPBACK, 0))

    async def close() -> None:
        transport.close()

    return int(transport.get_extra_info("sockname")[1]), close


async def start_ws_relay(on_message: OnMessage, host: str = LOOPBACK) -> tuple[str, Close]:
    """Relay server plus echo client B: A -> server -> B -> server -> A."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    peers: dict[str, ServerConnection] = {}

    async def handler(ws: ServerConnection) -> None:
        role = "b" if ws.request is not None and ws.request.path == "/b" else "a"
        peers[role] = ws
        other = "a" if role == "b" else "b"
        async for message in ws:
            target = peers.get(other)
            if target is not None:
                await target.send(message)

    server = await serve(handler, host, 0, max_size=WS_MAX, compression=None)
    port = next(iter(server.sockets)).getsockname()[1]
    url = f"ws://{host}:{port}"
    b = await connect(url + "/b", max_size=WS_MAX, compression=None)

    async def echo() -> None:
        with contextlib.suppress(Exception):
            async for message in b:
                if on_message(message):
                    await b.send(message)

    task = asyncio.ensure_future(echo())

    async def close() -> None:
        task.cancel()
        await b.close()
        server.close()
        await server.wait_closed()

    return url + "/a", close


def _rtc_config() -> Any:
    from aiortc import RTCConfiguration

    return RTCConfiguration(iceServers=[])


def _rtc_state_channel(pc: Any) -> Any:
    return pc.createDataChannel("state", ordered=False, maxRetransmits=0, negotiated=True, id=1)


async def rtc_answer(sdp: str, type: str, on_message: OnMessage) -> tuple[dict[str, Any], Close]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(_rtc_config())
    channel = _rtc_state_channel(pc)

    def _echo(message: bytes) -> None:
        if on_message(message) and channel.readyState == "open":
            channel.send(message)

    channel.on("message", _echo)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type))
    await pc.setLocalDescription(await pc.createAnswer())

    async def close() -> None:
        await pc.close()

    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}, close


# The echo sessions accept any state rate: the max-rate probe measures throughput,
# not the default budget (360 packets/s, over it for 1 s ends the link as abuse).
# At 60 Hz no budget is ever reached, so the per-cell results are unaffected.
ECHO_BUDGET = PeerBudget(state_msgs_per_s=1e6, state_bytes_per_s=1e10)


def session_config(state_copies: int = 1, budget: PeerBudget | None = None) -> SessionConfig:
    return SessionConfig(
        host_addresses=(LOOPBACK,),
        ice_servers=(),
        state_copies=state_copies,
        budget=budget or PeerBudget(),
    )


async def open_session(stack: contextlib.AsyncExitStack, url: str, **kwargs: Any) -> Any:
    """``async with netcode.connect(...)`` entered on ``stack`` (closed with it)."""
    import netcode

    kwargs.setdefault("config", session_config())
    return await stack.enter_async_context(netcode.connect(url, **kwargs))


async def start_netcode_echo(
    on_message: OnMessage, *, handler: bool = False, state_copies: int = 1
) -> tuple[dict[str, Any], Any, Close]:
    """Embedded lobby + a netcode session that echoes state and events.

    ``handler``: state is echoed from ``session.on_state`` (in the receive path)
    instead of from the event queue; events always come through the queue.
    """
    import netcode
    from netcode.events import EventReceived, StateReceived

    stack = contextlib.AsyncExitStack()
    server = await stack.enter_async_context(await netcode.serve_lobby(host=LOOPBACK, port=0))
    config = session_config(state_copies, ECHO_BUDGET)
    session = await open_session(stack, server.url, create=True, config=config)

    def echo_state(ev: StateReceived) -> None:
        if on_message(ev.data):
            session.send_state(ev.data, to=ev.peer_id)

    if handler:
        session.on_state(echo_state)

    async def echo() -> None:
        async for ev in session:
            if isinstance(ev, StateReceived):
                echo_state(ev)
            elif isinstance(ev, EventReceived) and on_message(ev.data):
                session.send_event(ev.data, to=ev.peer_id)

    task = asyncio.ensure_future(echo())

    async def close() -> None:
        task.cancel()
        await stack.aclose()

    return {"url": server.url, "room": session.room}, session, close


# --------------------------------------------------------------------------- sender side


class Client:
    """Sender side of one transport; ``on_echo`` is set by the benchmark runner."""

    def __init__(self) -> None:
        self.on_echo: OnEcho = lambda _m: None

    def send(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        raise NotImplementedError

    def wire_bytes(self) -> int | None:
        return None

    def send_drops(self) -> int | None:
        return None

    async def close(self) -> None:
        raise NotImplementedError


class UdpClient(Client):
    """Raw datagrams; the pure impairment model sits on both directions."""

    def __init__(self) -> None:
        super().__init__()
        self._transport: asyncio.DatagramTransport | None = None
        self._addr: tuple[str, int] = (LOOPBACK, 0)
        self._out: DatagramLink | None = None
        self._in: DatagramLink | None = None
        self._bytes = 0

    async def open(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._addr = (LOOPBACK, port)
        client = self

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
                if client._in is not None:
                    client._in.send(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(LOOPBACK, 0))
        self._transport = transport
        await self.set_conditions(Condition("clean", "clean"), 0)

    def _sendto(self, data: bytes) -> None:
        assert self._transport is not None
        self._bytes += len(data)
        self._transport.sendto(data, self._addr)

    def send(self, obj: dict[str, Any]) -> None:
        assert self._out is not None
        self._out.send(encode_payload(obj))

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        for link in (self._out, self._in):
            if link is not None:
                link.close()
        self._out = DatagramLink(cond.conditions(seed), self._sendto, tag="out")
        self._in = DatagramLink(cond.conditions(seed + 1), self.on_echo_bytes, tag="in")

    def on_echo_bytes(self, data: bytes) -> None:
        self.on_echo(data)

    def wire_bytes(self) -> int | None:
        return self._bytes

    async def close(self) -> None:
        for link in (self._out, self._in):
            if link is not None:
                link.close()
        if self._transport is not None:
            self._transport.close()


class WsClient(Client):
    """Client A of the relay; delay/jitter applied per message, loss not applicable."""

    def __init__(self) -> None:
        super().__init__()
        self._ws: Any = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._out: DatagramLink | None = None
        self._in: DatagramLink | None = None
        self._bytes = 0

    async def open(self, url: str) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(url, max_size=WS_MAX, compression=None)
        transport = self._ws.transport
        write = transport.write

        def counting_write(data: bytes) -> None:  # TCP payload bytes, both frames and pings
            self._bytes += len(data)
            write(data)

        transport.write = counting_write
        await self.set_conditions(Condition("clean", "clean"), 0)
        self._tasks = [
            asyncio.ensure_future(self._sender()),
            asyncio.ensure_future(self._receiver()),
        ]

    async def _sender(self) -> None:
        while True:
            await self._ws.send(await self._queue.get())

    async def _receiver(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self._ws:
                if self._in is not None:
                    self._in.send(message)

    def send(self, obj: dict[str, Any]) -> None:
        assert self._out is not None
        self._out.send(encode_payload(obj))

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        delay_only = dataclasses.replace(cond.conditions(seed), loss=0.0)
        for link in (self._out, self._in):
            if link is not None:
                link.close()
        self._out = DatagramLink(delay_only, self._queue.put_nowait, tag="out")
        self._in = DatagramLink(dataclasses.replace(delay_only, seed=seed + 1), self._echo)

    def _echo(self, data: bytes) -> None:
        self.on_echo(data)

    def wire_bytes(self) -> int | None:
        return self._bytes

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()


class KernelLossWsClient(WsClient):
    """The websocket client over a veth pair whose packet loss nftables sets per condition."""

    def __init__(self, set_loss: Callable[[float], None]) -> None:
        super().__init__()
        self._set_loss = set_loss

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        self._set_loss(cond.loss)
        await super().set_conditions(cond, seed)


class RtcClient(Client):
    """Bare aiortc: one negotiated unordered channel, conditioner on this pc (both ways)."""

    def __init__(self) -> None:
        super().__init__()
        self._pc: Any = None
        self._channel: Any = None
        self._cond = Conditioner(NetworkConditions(), NetworkConditions())

    async def offer(self) -> dict[str, str]:
        from aiortc import RTCPeerConnection

        self._pc = RTCPeerConnection(_rtc_config())
        self._cond.attach(self._pc)
        self._channel = _rtc_state_channel(self._pc)
        self._channel.on("message", lambda m: self.on_echo(m))
        await self._pc.setLocalDescription(await self._pc.createOffer())
        return {"sdp": self._pc.localDescription.sdp, "type": self._pc.localDescription.type}

    async def accept(self, answer: dict[str, Any], wait_s: float = 15.0) -> None:
        from aiortc import RTCSessionDescription

        await self._pc.setRemoteDescription(
            RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
        )
        if self._channel.readyState != "open":
            opened = asyncio.Event()
            self._channel.on("open", opened.set)
            await asyncio.wait_for(opened.wait(), wait_s)

    def send(self, obj: dict[str, Any]) -> None:
        self._channel.send(encode_payload(obj))

    def send_if_room(self, obj: dict[str, Any]) -> bool:
        """Latest-wins backpressure like netcode's: drop above 16 KiB buffered."""
        if self._channel.bufferedAmount > STATE_BUFFER_THRESHOLD:
            return False
        self._channel.send(encode_payload(obj))
        return True

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        self._cond.set(outbound=cond.conditions(seed), inbound=cond.conditions(seed + 1))

    def wire_bytes(self) -> int | None:
        return WireCounter.bytes

    async def close(self) -> None:
        if self._pc is not None:
            await self._pc.close()


class NetcodeClient(Client):
    """netcode session; ``reliable`` picks send_event over send_state.

    Conditions go to both sessions (this one and the echo peer's, named ``echo``
    there), because a session applies its conditioner to what it sends.
    """

    def __init__(
        self, session: Any, peer_id: str, *, reliable: bool, remote: Any, echo: str | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.peer_id = peer_id
        self.reliable = reliable
        self._remote = remote  # async (cmd, **kw) -> reply, to reach the echo process
        self._echo = echo

    def send(self, obj: dict[str, Any]) -> None:
        if self.reliable:
            self.session.send_event(obj, to=self.peer_id)
        else:
            self.session.send_state(obj, to=self.peer_id)

    async def set_conditions(self, cond: Condition, seed: int) -> None:
        mine = cond.conditions(seed)
        self.session.set_conditions(None if mine.is_clean else mine)
        theirs = None if mine.is_clean else dataclasses.asdict(cond.conditions(seed + 1))
        named = {} if self._echo is None else {"name": self._echo}
        await self._remote("set_conditions", conditions=theirs, **named)

    def wire_bytes(self) -> int | None:
        return WireCounter.bytes

    def send_drops(self) -> int | None:
        if self.reliable:
            return None
        try:
            return int(self.session.stats(self.peer_id).state_drops)
        except KeyError:  # the peer is gone: nothing to count
            return None

    async def close(self) -> None:
        """The runner closes the shared session."""
