"""Hypothesis strategies for lobby messages (shared by the lobby tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from netcode.config import IceServer
from netcode.lobby import messages as m

__all__ = ["any_message", "json_values", "metadata", "rids"]

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

client_messages: st.SearchStrategy[m.ClientMessage] = st.one_of(
    st.builds(
        m.CreateRoom,
        max_players=st.none() | players,
        private=st.booleans(),
        metadata=metadata,
        rid=rids,
    ),
    st.builds(m.JoinRoom, room=room_codes, rid=rids),
    st.builds(m.LeaveRoom, rid=rids),
    st.builds(m.ListRooms, game=st.none() | ids, rid=rids),
    st.builds(m.SendSignal, to=ids, kind=kinds, data=json_values, rid=rids),
)
server_messages: st.SearchStrategy[m.ServerMessage] = st.one_of(
    st.builds(
        m.Welcome,
        peer_id=ids,
        v=st.integers(1, 1000),
        ice_servers=st.lists(ice, max_size=3).map(tuple),
        max_message_bytes=st.integers(1024, 2**30),
    ),
    st.builds(
        m.RoomJoined,
        room=room_codes,
        peer_id=ids,
        peers=st.lists(st.text(min_size=1, max_size=64), max_size=5).map(tuple),
        max_players=players,
        private=st.booleans(),
        metadata=metadata,
        rid=rids,
    ),
    st.builds(m.RoomLeft, room=room_codes, rid=rids),
    st.builds(m.RoomList, rooms=st.lists(summaries, max_size=4).map(tuple), rid=rids),
    st.builds(m.PeerJoinedMsg, room=room_codes, peer_id=ids),
    st.builds(
        m.PeerLeftMsg,
        room=room_codes,
        peer_id=ids,
        reason=st.sampled_from(sorted(m.PEER_LEFT_REASONS)),
    ),
    st.builds(m.SignalMsg, sender=ids, kind=kinds, data=json_values),
    st.builds(m.ErrorMsg, code=ids, message=st.text(max_size=100), rid=rids),
)
any_message: st.SearchStrategy[m.Message] = st.one_of(client_messages, server_messages)
