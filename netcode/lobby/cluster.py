"""Room snapshots for several lobby nodes (pure: no I/O, time passed in).

When lobby nodes share rooms through Redis (docs/LOBBY.md "Several nodes"), the
node that homes a room writes a compact snapshot of it after every change. If
that node dies, another node imports the snapshot: every member comes back as a
*reconnecting* seat, so the single-node reconnect grace and host migration take
over unchanged (members rejoin with their reconnection tokens).

Tokens never leave the node in clear: a snapshot holds ``hash_token(token)``
(SHA-256), and the importing core accepts a rejoin whose token hashes to it.
Snapshots come from Redis, which is trusted as far as it is private; they are
still decoded against a schema and checked, so a malformed one is refused with
:class:`netcode.errors.DecodeError`, never a crash.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from ..errors import DecodeError
from .roomstate import Room, Seat
from .states import PEER_ID_ALPHABET, PEER_ID_LENGTH, ROOM_CODE_ALPHABET

__all__ = [
    "SNAPSHOT_VERSION",
    "RoomSnapshot",
    "SeatSnapshot",
    "decode_snapshot",
    "encode_snapshot",
    "export_room",
    "hash_token",
    "is_hashed",
    "room_from_snapshot",
]

SNAPSHOT_VERSION = 1
# A hashed token starts with this: raw tokens are URL-safe base64, so never do.
_HASHED = "#"
_MAX_SNAPSHOT_BYTES = 1 << 20


class SeatSnapshot(msgspec.Struct, frozen=True, array_like=True):
    peer_id: str
    token_hash: str


class RoomSnapshot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What survives a node: the room's settings, host and members (join order)."""

    v: int
    code: str
    max_players: int
    private: bool
    topology: str
    locked: bool
    host: str
    metadata: dict[str, Any]
    seats: tuple[SeatSnapshot, ...]
    banned: tuple[str, ...] = ()  # kicked peer ids (kicked tokens are revoked anyway)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RoomSnapshot)


def hash_token(token: str) -> str:
    """The form a reconnection token is stored in outside its node (idempotent)."""
    if is_hashed(token):
        return token
    return _HASHED + hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_hashed(token: str) -> bool:
    return token.startswith(_HASHED)


def _is_peer_id(text: str) -> bool:
    return len(text) == PEER_ID_LENGTH and all(c in PEER_ID_ALPHABET for c in text)


def export_room(room: Room) -> RoomSnapshot:
    """The snapshot of ``room`` (tokens hashed; banned tokens left out: revoked)."""
    return RoomSnapshot(
        v=SNAPSHOT_VERSION,
        code=room.code,
        max_players=room.max_players,
        private=room.private,
        topology=room.topology,
        locked=room.locked,
        host=room.host,
        metadata=dict(room.metadata),
        seats=tuple(SeatSnapshot(s.peer_id, hash_token(s.token)) for s in room.seats),
        banned=tuple(b for b in room.banned if _is_peer_id(b)),
    )


def encode_snapshot(snapshot: RoomSnapshot) -> bytes:
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes, *, max_players_limit: int = 1024) -> RoomSnapshot:
    """Parse and check a stored snapshot; :class:`DecodeError` if it is not one."""
    if len(data) > _MAX_SNAPSHOT_BYTES:
        raise DecodeError(f"room snapshot over {_MAX_SNAPSHOT_BYTES} bytes")
    try:
        snap = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"bad room snapshot: {exc}") from None
    _check(snap, max_players_limit)
    return snap


def _check(snap: RoomSnapshot, max_players_limit: int) -> None:
    problems = []
    if snap.v != SNAPSHOT_VERSION:
        problems.append(f"version {snap.v}")
    if not 4 <= len(snap.code) <= 12 or any(c not in ROOM_CODE_ALPHABET for c in snap.code):
        problems.append("room code")
    if not 1 <= snap.max_players <= max_players_limit or len(snap.seats) > snap.max_players:
        problems.append("max_players")
    if snap.topology not in ("mesh", "star"):
        problems.append("topology")
    ids = [s.peer_id for s in snap.seats]
    if len(set(ids)) != len(ids) or not all(_is_peer_id(i) for i in ids):
        problems.append("peer ids")
    if not all(is_hashed(s.token_hash) and len(s.token_hash) == 65 for s in snap.seats):
        problems.append("tokens")
    if snap.seats and snap.host not in ids:
        problems.append("host")
    if problems:
        raise DecodeError(f"bad room snapshot: {', '.join(problems)}")


def room_from_snapshot(snap: RoomSnapshot, now: float) -> Room:
    """A room whose every member is reconnecting (the caller sets their deadlines)."""
    room = Room(
        snap.code,
        snap.max_players,
        snap.private,
        dict(snap.metadata),
        now,
        topology=snap.topology,
        locked=snap.locked,
        host=snap.host,
    )
    room.seats.extend(Seat(s.peer_id, s.token_hash, None) for s in snap.seats)
    for peer_id in snap.banned:
        room.banned[peer_id] = None
    return room
