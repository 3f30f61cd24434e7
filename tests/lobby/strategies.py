"""Hypothesis strategies for lobby messages (shared by the lobby tests)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from netcode.config import IceServer
from netcode.lobby import messages as m

__all__ = [
    "SURROGATE_SLOTS",
    "KeyOf",
    "any_message",
    "by_type",
    "hostile_strings",
    "json_values",
    "metadata",
    "plant",
    "rids",
    "surrogate_cases",
    "valid_client_base",
]

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
topologies = st.sampled_from(sorted(m.TOPOLOGIES))
summaries = st.builds(
    m.RoomSummary,
    room=room_codes,
    players=st.integers(0, 1024),
    max_players=players,
    metadata=metadata,
    topology=topologies,
    locked=st.booleans(),
)
tokens = st.text(min_size=1, max_size=64)
peer_lists = st.lists(st.text(min_size=1, max_size=64), max_size=5).map(tuple)


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
        topology=topologies,
    ),
    # Blanks around a join code are stripped, so the code must not be all blank.
    _pair(m.JoinRoom, room=room_codes.filter(lambda s: bool(s.strip())), rid=rids),
    _pair(m.LeaveRoom, rid=rids),
    _pair(m.ListRooms, game=st.none() | ids, rid=rids),
    _pair(
        m.SendSignal, to=ids, kind=kinds, data=json_values.filter(lambda v: v is not None), rid=rids
    ),
    _pair(
        m.Rejoin,
        token=tokens,
        room=st.none() | room_codes.filter(lambda s: bool(s.strip())),
        rid=rids,
    ),
    _pair(m.Kick, peer=ids, reason=st.text(max_size=256), rid=rids),
    _pair(m.LockRoom, locked=st.booleans(), rid=rids),
    _pair(m.UpdateRoom, metadata=metadata, rid=rids),
    _pair(
        m.QuickMatch,
        game=ids,
        size=st.integers(2, 1024),
        topology=topologies,
        metadata=metadata,
        rid=rids,
    ),
    _pair(m.CancelQuickMatch, rid=rids),
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
        peers=peer_lists,
        max_players=players,
        private=st.booleans(),
        metadata=metadata,
        rid=rids,
        topology=topologies,
        host=st.none() | ids,
        token=st.none() | tokens,
        token_expires_s=st.floats(0, 86_400),
        locked=st.booleans(),
        reconnecting=peer_lists,
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
    _pair(m.Ok, rid=rids),
    _pair(m.Kicked, room=room_codes, reason=st.text(max_size=100)),
    _pair(m.RoomUpdated, room=room_codes, metadata=metadata, locked=st.booleans()),
    _pair(m.PeerReconnecting, room=room_codes, peer_id=ids),
    _pair(m.PeerReconnected, room=room_codes, peer_id=ids),
    _pair(m.HostChanged, room=room_codes, host=ids, previous=ids),
    _pair(
        m.QuickMatchWaiting,
        game=ids,
        size=st.integers(2, 1024),
        waiting=st.integers(1, 1024),
        topology=topologies,
        rid=rids,
    ),
]
# One strategy per message class, so every type gets its own round-trip test.
by_type: dict[type[Any], st.SearchStrategy[Any]] = dict([*_client, *_server])
any_message: st.SearchStrategy[m.Message] = st.one_of(*by_type.values())


# --- lone surrogates planted in every string field of every client message --------

# st.text() never draws surrogates itself, so the planted one stays lone (a high one
# followed by a low one would be a valid pair once JSON-escaped).
lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
hostile_strings: st.SearchStrategy[str] = st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=6), lone_surrogates, st.text(max_size=6)
)

RID = 7
TO = "<to>"  # replaced by a real peer id by the test


@dataclass(frozen=True)
class KeyOf:
    """A slot that is an object key: the key ``name`` is renamed to the hostile text."""

    name: str


Slot = tuple[str | int | KeyOf, ...]


def valid_client_base(kind: str, to: str = TO) -> dict[str, Any]:
    """A valid client message of each type, with a rid and an ignored extra field."""
    bases: dict[str, dict[str, Any]] = {
        "create_room": {"max_players": 4, "metadata": {"game": "pong", "tags": ["a"]}},
        "join_room": {"room": "ABCDEF"},
        "leave_room": {},
        "list_rooms": {"game": "pong"},
        "signal": {"to": to, "kind": "candidate", "data": {"c": "x", "l": ["y"]}},
        "rejoin": {"token": "t0k3n", "room": "ABCDEF"},
        "kick": {"peer": to, "reason": "cheating"},
        "lock_room": {"locked": True},
        "update_room": {"metadata": {"game": "pong", "tags": ["a"]}},
        "quick_match": {
            "game": "arena",
            "size": 4,
            "topology": "star",
            "metadata": {"game": "pong", "tags": ["a"]},
        },
        "cancel_quick_match": {},
    }
    return {"type": kind, "v": 1, "rid": RID, "extra": "x", **copy.deepcopy(bases[kind])}


_COMMON: list[Slot] = [("type",), ("rid",), ("v",), ("extra",), (KeyOf("extra"),)]
# Every place a string can sit, per client type (test_abuse checks none is missing).
SURROGATE_SLOTS: dict[str, list[Slot]] = {
    "create_room": [
        *_COMMON,
        ("metadata", "game"),
        ("metadata", KeyOf("game")),
        ("metadata", "tags", 0),
        ("topology",),
    ],
    "join_room": [*_COMMON, ("room",)],
    "rejoin": [*_COMMON, ("token",), ("room",)],
    "kick": [*_COMMON, ("peer",), ("reason",)],
    "lock_room": _COMMON,
    "update_room": [
        *_COMMON,
        ("metadata", "game"),
        ("metadata", KeyOf("game")),
        ("metadata", "tags", 0),
    ],
    "quick_match": [
        *_COMMON,
        ("game",),
        ("topology",),
        ("metadata", "game"),
        ("metadata", KeyOf("game")),
        ("metadata", "tags", 0),
    ],
    "cancel_quick_match": _COMMON,
    "leave_room": _COMMON,
    "list_rooms": [*_COMMON, ("game",)],
    "signal": [
        *_COMMON,
        ("to",),
        ("kind",),
        ("data",),
        ("data", "c"),
        ("data", KeyOf("c")),
        ("data", "l", 0),
    ],
}


def plant(base: dict[str, Any], slot: Slot, hostile: str) -> dict[str, Any]:
    """A deep copy of ``base`` with ``hostile`` at ``slot`` (a value, or a key name)."""
    obj = copy.deepcopy(base)
    target: Any = obj
    for step in slot[:-1]:
        target = target[step]
    last = slot[-1]
    if isinstance(last, KeyOf):
        target[hostile] = target.pop(last.name)
    else:
        target[last] = hostile
    return obj


surrogate_cases: st.SearchStrategy[tuple[str, Slot, str]] = st.sampled_from(
    [(kind, slot) for kind, slots in SURROGATE_SLOTS.items() for slot in slots]
).flatmap(lambda ks: hostile_strings.map(lambda h: (ks[0], ks[1], h)))
