"""The pure lobby core under abuse: one hostile client can only hurt itself.

No sockets; time is passed in, so budgets and refills run on a fake clock.
"""

from __future__ import annotations

import json
import random
import typing
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcode.config import LobbyConfig
from netcode.errors import ConfigError, LobbyProtocolError
from netcode.lobby import messages as m
from netcode.lobby.rooms import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    MAX_OUTBOUND_MESSAGES,
    CloseConnection,
    LobbyCore,
    Output,
    address_key,
)

from .strategies import (
    RID,
    SURROGATE_SLOTS,
    KeyOf,
    Slot,
    plant,
    surrogate_cases,
    valid_client_base,
)

TOO_MANY_ERRORS = CloseConnection(CLOSE_POLICY_VIOLATION, "too many invalid messages")
PER_IP = CloseConnection(CLOSE_POLICY_VIOLATION, "too many connections from your address")


def make_core(**overrides: Any) -> LobbyCore:
    return LobbyCore(LobbyConfig(**overrides), randbelow=random.Random(3).randrange)


def send(core: LobbyCore, conn: int, obj: Mapping[str, object], now: float = 0.0) -> Output:
    return core.receive(conn, json.dumps(obj), now)


def room_of(core: LobbyCore, *conns: int) -> str:
    """conns[0] creates a room, the others join; returns its code."""
    ((_, joined),) = send(core, conns[0], {"type": "create_room", "max_players": 8})
    assert isinstance(joined, m.RoomJoined)
    for conn in conns[1:]:
        assert isinstance(
            send(core, conn, {"type": "join_room", "room": joined.room})[0][1], m.RoomJoined
        )
    return joined.room


def signal(to: str | None, data: object = None, **extra: object) -> dict[str, object]:
    return {"type": "signal", "to": to, "kind": "candidate", "data": data or {"c": 1}, **extra}


def closes(out: Output) -> list[tuple[int, CloseConnection]]:
    return [(c, item) for c, item in out if isinstance(item, CloseConnection)]


# --- lone surrogates ------------------------------------------------------------------


def test_every_string_field_of_every_client_message_has_a_surrogate_slot() -> None:
    """A new string field cannot go unfuzzed: every non-int/bool field has a slot."""
    for cls in m.CLIENT_TYPES:
        hints = typing.get_type_hints(cls)
        fields = {
            f.encode_name
            for f in msgspec.structs.fields(cls)
            if hints[f.name] not in (int, bool, int | None, bool | None, type(None))
        }
        covered = {slot[0] for slot in SURROGATE_SLOTS[cls.TYPE] if isinstance(slot[0], str)}
        assert fields and fields <= covered, cls.__name__
        # Object keys too: an ignored extra field's name, and inside each JSON payload.
        assert (KeyOf("extra"),) in SURROGATE_SLOTS[cls.TYPE]


@pytest.mark.parametrize("kind", sorted(SURROGATE_SLOTS))
def test_the_fuzzed_messages_are_valid_without_the_surrogate(kind: str) -> None:
    """So the planted surrogate is the only thing the server can object to."""
    message = m.parse_client(json.dumps(valid_client_base(kind, to="p")))
    assert (message.TYPE, message.rid) == (kind, RID)


def _expected_rid(slot: Slot) -> int | None:
    return None if slot == ("rid",) else RID


@given(surrogate_cases)
def test_a_lone_surrogate_anywhere_is_bad_message(case: tuple[str, Slot, str]) -> None:
    kind, slot, hostile = case
    frame = json.dumps(plant(valid_client_base(kind, to="p"), slot, hostile))
    assert frame.isascii() and "\\ud" in frame  # on the wire: a JSON escape, valid UTF-8
    with pytest.raises(LobbyProtocolError) as info:
        m.parse(frame, origin="client")
    assert info.value.code == "bad_message"
    assert info.value.rid == _expected_rid(slot)


@given(surrogate_cases)
def test_a_lone_surrogate_never_reaches_another_member(case: tuple[str, Slot, str]) -> None:
    """The sender gets bad_message (its rid echoed if valid); nobody is closed."""
    kind, slot, hostile = case
    core = make_core()
    for conn in (1, 2, 3):
        core.connect(conn, 0.0)
    code = room_of(core, 2, 1, 3)
    obj = plant(valid_client_base(kind, to=str(core.peer_id(2))), slot, hostile)
    out = core.receive(1, json.dumps(obj), 1.0)
    ((conn, reply),) = out
    assert conn == 1 and isinstance(reply, m.ErrorMsg)
    assert (reply.code, reply.rid) == ("bad_message", _expected_rid(slot))
    assert core.rooms() == {code: (2, 1, 3)}
    m.serialize(reply).encode("utf-8")  # what the I/O layer does with it must work


def test_raw_surrogates_and_valid_pairs() -> None:
    core = make_core()
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    to = str(core.peer_id(2))
    raw = json.dumps(signal(to, {"sdp": "\ud800"}), ensure_ascii=False)  # not via a socket
    ((_, err),) = core.receive(1, raw, 0.0)
    assert isinstance(err, m.ErrorMsg) and err.code == "bad_message"
    pair = json.dumps(signal(to, {"emoji": "\U0001f600"}))  # "\ud83d\ude00" on the wire
    assert "\\ud83d\\ude00" in pair
    ((target, relayed),) = core.receive(1, pair, 0.0)
    assert target == 2 and isinstance(relayed, m.SignalMsg)
    assert relayed.data == {"emoji": "\U0001f600"}


def test_constructors_refuse_lone_surrogates() -> None:
    with pytest.raises(LobbyProtocolError):
        m.JoinRoom(room="AB\udc00")
    with pytest.raises(LobbyProtocolError):
        m.SignalMsg(sender="p", kind="offer", data={"\ud800": 1})
    with pytest.raises(LobbyProtocolError):
        m.CreateRoom(metadata={"game": ["\udfff"]})
    with pytest.raises(LobbyProtocolError):
        m.LeaveRoom(rid="\ud800")


# --- connections per client address ---------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


def test_per_address_cap_refuses_only_that_address() -> None:
    core = make_core(max_connections_per_ip=2)
    for conn in (1, 2):
        assert isinstance(core.connect(conn, 0.0, "10.0.0.1")[0][1], m.Welcome)
    assert core.connect(3, 0.0, "10.0.0.1") == [(3, PER_IP)]
    assert core.connect(4, 0.0, "::ffff:10.0.0.1") == [(4, PER_IP)]  # the same host
    assert isinstance(core.connect(5, 0.0, "10.0.0.2")[0][1], m.Welcome)
    assert isinstance(core.connect(6, 0.0, None)[0][1], m.Welcome)  # unknown: not counted
    assert core.connections() == (1, 2, 5, 6)
    core.disconnect(1, "disconnected", 1.0)
    assert isinstance(core.connect(7, 1.0, "10.0.0.1")[0][1], m.Welcome)  # a slot freed


def test_ipv6_hosts_are_counted_per_64() -> None:
    core = make_core(max_connections_per_ip=2)
    core.connect(1, 0.0, "2001:db8::1")
    core.connect(2, 0.0, "2001:db8::ffff:2")
    assert core.connect(3, 0.0, "2001:db8::3") == [(3, PER_IP)]
    assert isinstance(core.connect(4, 0.0, "2001:db8:0:1::1")[0][1], m.Welcome)


def test_per_address_cap_comes_before_the_global_cap_and_can_be_off() -> None:
    core = make_core(max_connections_per_ip=1, max_connections=1)
    core.connect(1, 0.0, "10.0.0.1")
    assert core.connect(2, 0.0, "10.0.0.1") == [(2, PER_IP)]  # the flooder learns why
    full = CloseConnection(CLOSE_TRY_AGAIN_LATER, "lobby full")
    assert core.connect(3, 0.0, "10.0.0.2") == [(3, full)]
    unlimited = make_core(max_connections_per_ip=None)
    for conn in range(100):
        assert isinstance(unlimited.connect(conn, 0.0, "10.0.0.1")[0][1], m.Welcome)


def test_default_per_address_cap_is_32() -> None:
    core = make_core()
    assert core.config.max_connections_per_ip == 32
    outs = [core.connect(conn, 0.0, "198.51.100.1")[0][1] for conn in range(33)]
    assert all(isinstance(o, m.Welcome) for o in outs[:32]) and outs[32] == PER_IP


# --- the error budget refills ---------------------------------------------------------


def test_error_budget_burst_then_close() -> None:
    core = make_core(max_errors_before_close=5)
    core.connect(1, 0.0)
    for _ in range(5):
        assert not closes(core.receive(1, "junk", 0.0))
    out = core.receive(1, "junk", 0.0)
    assert isinstance(out[0][1], m.ErrorMsg) and out[-1] == (1, TOO_MANY_ERRORS)


def test_error_budget_refills_at_the_configured_rate() -> None:
    core = make_core(max_errors_before_close=5, error_refill_per_s=1.0)
    core.connect(1, 0.0)
    for _ in range(5):
        core.receive(1, "junk", 0.0)
    # Two seconds later two errors are forgiven, not three.
    assert not closes(core.receive(1, "junk", 2.0))
    assert not closes(core.receive(1, "junk", 2.0))
    assert closes(core.receive(1, "junk", 2.0)) == [(1, TOO_MANY_ERRORS)]


def test_a_long_lived_honest_client_is_never_closed_for_rare_races() -> None:
    """An error every 2 s for 10 hours (18,000 errors) is far below the refill."""
    core = make_core()
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    for i in range(18_000):
        out = send(core, 1, signal("gone-peer", rid=i), now=2.0 * i)
        assert [type(item) for _, item in out] == [m.ErrorMsg]
    assert core.state_of(1) == "in_room"


def test_candidates_in_flight_to_a_peer_who_left_do_not_cascade() -> None:
    """B is kicked; A's candidates still in flight to B cost A nothing lasting."""
    core = make_core()
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    b = str(core.peer_id(2))
    for _ in range(21):
        core.receive(2, "junk", 0.0)  # B spends its budget
    assert core.state_of(2) is None
    for burst in range(50):  # the same race, every minute for 50 minutes
        for _ in range(15):
            assert not closes(send(core, 1, signal(b), now=60.0 * burst))
    assert core.state_of(1) == "in_room"


def test_zero_refill_is_a_lifetime_count() -> None:
    core = make_core(max_errors_before_close=3, error_refill_per_s=0.0)
    core.connect(1, 0.0)
    for t in range(3):
        assert not closes(core.receive(1, "junk", 1_000.0 * t))
    assert closes(core.receive(1, "junk", 1e6)) == [(1, TOO_MANY_ERRORS)]


# --- message and byte budgets ---------------------------------------------------------


def test_a_stalled_client_may_catch_up_with_a_burst() -> None:
    core = make_core()  # 200/s, burst 1,000
    core.connect(1, 0.0)
    listing = json.dumps({"type": "list_rooms"})
    for _ in range(1_000):  # ~5 s of the sustained rate, all at once
        assert isinstance(core.receive(1, listing, 10.0)[0][1], m.RoomList)
    rate = CloseConnection(CLOSE_POLICY_VIOLATION, "rate limit exceeded")
    assert core.receive(1, listing, 10.0) == [(1, rate)]


def test_byte_budget_counts_utf8_bytes_and_punishes_the_sender() -> None:
    core = make_core(max_message_bytes=2048, byte_rate_burst=8192, byte_rate_limit_per_s=1024.0)
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    frame = json.dumps(signal(core.peer_id(2), {"sdp": "é" * 900}), ensure_ascii=False)
    assert 1800 < len(frame.encode()) < 2048 and len(frame) < 1000
    relayed = [core.receive(1, frame, 0.0) for _ in range(4)]
    assert all(isinstance(o[0][1], m.SignalMsg) for o in relayed)
    out = core.receive(1, frame, 0.0)
    byte_rate = CloseConnection(CLOSE_POLICY_VIOLATION, "byte rate limit exceeded")
    assert out[-1] == (1, byte_rate)
    # The victim stays (and, the sender having created the room, becomes its host).
    assert [type(item) for c, item in out if c == 2] == [m.PeerLeftMsg, m.HostChanged]
    assert core.state_of(2) == "in_room"


def test_byte_budget_refills() -> None:
    core = make_core(max_message_bytes=1024, byte_rate_burst=2048, byte_rate_limit_per_s=1000.0)
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    frame = json.dumps(signal(core.peer_id(2), {"sdp": "x" * 900}))
    for i in range(100):  # 1 KB every 1.1 s is under 1,000 B/s
        assert isinstance(core.receive(1, frame, 1.1 * i)[0][1], m.SignalMsg)


# --- relays to a clogged recipient: the sender pays -------------------------------------


def test_relay_to_a_clogged_peer_is_refused_with_peer_busy() -> None:
    core = make_core(max_outbound_bytes=200_000)
    for conn in (1, 2, 3):
        core.connect(conn, 0.0)
    room_of(core, 1, 2, 3)
    frame = json.dumps(signal(core.peer_id(2), {"sdp": "x" * 1000}, rid="r"))
    core.report_backlog(2, 100_000 - len(frame), 3)  # exactly fits half of the cap
    assert isinstance(core.receive(1, frame, 0.0)[0][1], m.SignalMsg)
    core.report_backlog(2, 100_000 - len(frame) + 1, 3)
    ((conn, err),) = core.receive(1, frame, 0.0)
    assert conn == 1 and isinstance(err, m.ErrorMsg)
    assert (err.code, err.rid) == ("peer_busy", "r")
    core.report_backlog(2, 0, MAX_OUTBOUND_MESSAGES // 2)  # many small messages count too
    assert core.receive(1, frame, 0.0)[0][1] == m.ErrorMsg(
        code="peer_busy", message=err.message, rid="r"
    )
    # Another member is not clogged: relays to it still flow.
    to3 = json.dumps(signal(core.peer_id(3)))
    assert core.receive(1, to3, 0.0)[0][0] == 3
    core.report_backlog(2, 0, 0)  # drained
    assert isinstance(core.receive(1, frame, 0.0)[0][1], m.SignalMsg)


def test_a_flooder_at_a_clogged_peer_is_closed_and_the_peer_stays() -> None:
    core = make_core()
    for conn in (1, 2):
        core.connect(conn, 0.0)
    code = room_of(core, 1, 2)
    core.report_backlog(2, 600_000, 10)  # the victim has half a MiB unread
    frame = json.dumps(signal(core.peer_id(2), {"sdp": "x" * 100}))
    flooder = str(core.peer_id(1))
    outs = [core.receive(1, frame, 0.0) for _ in range(21)]
    for out in outs[:20]:
        ((conn, err),) = out
        assert conn == 1 and isinstance(err, m.ErrorMsg) and err.code == "peer_busy"
    assert outs[20][-1] == (1, TOO_MANY_ERRORS)
    assert (2, m.PeerLeftMsg(room=code, peer_id=flooder, reason="kicked")) in outs[20]
    assert core.rooms() == {code: (2,)}


def test_report_backlog_of_an_unknown_connection_is_ignored() -> None:
    core = make_core()
    core.report_backlog(99, 10**9, 10**6)
    assert core.stats().connections == 0


# --- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"max_connections_per_ip": 0}, "max_connections_per_ip"),
        ({"max_connections_per_ip": True}, "max_connections_per_ip"),
        ({"error_refill_per_s": -1.0}, "error_refill_per_s"),
        ({"rate_limit_burst": 0.5}, "rate_limit_burst"),
        ({"byte_rate_limit_per_s": 0.0}, "byte_rate_limit_per_s"),
        ({"byte_rate_burst": 1000}, "byte_rate_burst"),  # below max_message_bytes
        ({"max_outbound_bytes": 100_000}, "max_outbound_bytes"),  # below 2 frames
        ({"trusted_proxies": ("10.0.0.0/8", "proxy.local")}, "trusted_proxies"),
        ({"trusted_proxies": "10.0.0.1"}, "trusted_proxies"),
    ],
)
def test_config_refuses_bad_limits(fields: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        LobbyConfig(**fields)


def test_config_accepts_proxy_networks_as_a_list() -> None:
    config = LobbyConfig(trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"])  # type: ignore[arg-type]
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")


@given(st.integers(1024, 1 << 18))
def test_a_full_size_frame_is_relayed_with_the_tightest_budgets(cap: int) -> None:
    """The config guarantees one full frame fits an empty byte bucket and relay half."""
    core = make_core(max_message_bytes=cap, byte_rate_burst=cap, max_outbound_bytes=2 * cap)
    for conn in (1, 2):
        core.connect(conn, 0.0)
    room_of(core, 1, 2)
    head = json.dumps(signal(core.peer_id(2), "x")).encode()
    frame = json.dumps(signal(core.peer_id(2), "x" * (cap - len(head) + 1)))
    assert len(frame.encode()) == cap
    out = core.receive(1, frame, 60.0)  # the joins' bytes are refilled by then
    assert isinstance(out[0][1], m.SignalMsg)
