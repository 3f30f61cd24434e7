"""Hypothesis strategies for lobby messages (shared by the lobby tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from netcode.config import IceServer
from netcode.lobby import messages as m

__all__ = ["any_message", "by_type", "json_values", "metadata", "rids"]

ids = st.text(min_size=1, max_size=m.MAX_ID_LEN)
room_codes = st.text(min_size=1, max_size=m.MAX_ROOM_CODE_LEN)
rids: st.SearchStrategy[m.Rid | None] = (
    st.none() | st.integers(-(2**53), 2**53) | st.text(max_size=m.MAX_ID_LEN)
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
metadata: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=4
)
kinds = st.sampled_from(sorted(m.SIGNAL_KINDS))
players = st.integers(1, 1024)
ice = st.builds(
    IceServer,
    urls=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=3).map(tuple),
    username=st.none() | st.text(min_size=1, max_size=10),
    credential=st.none() | st.text(min_size=1, max_size=10),
)
summaries = st.builds(
    m.RoomSummary,
    room=room_codes,
    players=st.integers(0, 1024),
    max_players=players,
    metadata=metadata,
)


def _pair(
    cls: type[Any], **fields: st.SearchStrategy[Any]
) -> tuple[type[Any], st.SearchStrategy[Any]]:
    return cls, st.builds(cls, **fields)


_client: list[tuple[type[Any], st.SearchStrategy[Any]]] = [
    _pair(
        m.CreateRoom,
        max_players=st.none() | players,
        private=st.booleans(),
        metadata=metadata,
        rid=rids,
    ),
    _pair(m.JoinRoom, room=room_codes, rid=rids),
    _pair(m.LeaveRoom, rid=rids),
    _pair(m.ListRooms, game=st.none() | ids, rid=rids),
    _pair(m.SendSignal, to=ids, kind=kinds, data=json_values, rid=rids),
]
_server: list[tuple[type[Any], st.SearchStrategy[Any]]] = [
    _pair(
        m.Welcome,
        peer_id=ids,
        v=st.integers(1, 1000),
        ice_servers=st.lists(ice, max_size=3).map(tuple),
        max_message_bytes=st.integers(1024, 2**30),
    ),
    _pair(
        m.RoomJoined,
        room=room_codes,
        peer_id=ids,
        peers=st.lists(st.text(min_size=1, max_size=64), max_size=5).map(tuple),
        max_players=players,
        private=st.booleans(),
        metadata=metadata,
        rid=rids,
    ),
    _pair(m.RoomLeft, room=room_codes, rid=rids),
    _pair(m.RoomList, rooms=st.lists(summaries, max_size=4).map(tuple), rid=rids),
    _pair(m.PeerJoinedMsg, room=room_codes, peer_id=ids),
    _pair(
        m.PeerLeftMsg,
        room=room_codes,
        peer_id=ids,
        reason=st.sampled_from(sorted(m.PEER_LEFT_REASONS)),
    ),
    _pair(m.SignalMsg, sender=ids, kind=kinds, data=json_values),
    _pair(m.ErrorMsg, code=ids, message=st.text(max_size=100), rid=rids),
]
# One strategy per message class, so every type gets its own round-trip test.
by_type: dict[type[Any], st.SearchStrategy[Any]] = dict([*_client, *_server])
any_message: st.SearchStrategy[m.Message] = st.one_of(*by_type.values())
