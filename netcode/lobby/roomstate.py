"""Rooms and seats (pure data): who sits where, who hosts, who is banned.

A **seat** is a member of a room: a peer id, a reconnection token and, while its
websocket is up, a connection. A seat whose websocket dropped is *reconnecting*
(no connection) until it is taken back with ``rejoin`` or its deadline passes.
Seats are kept in join order; the host is chosen from that order.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Room", "RoomView", "Seat", "choose_host"]


@dataclass(slots=True)
class Seat:
    peer_id: str
    token: str
    conn: int | None  # None: reconnecting
    # While reconnecting: the address key whose per-address slot the seat still
    # holds, when it is given up (``expires``) and, for the host, when the lobby
    # stops waiting for it to lead (``host_deadline``; None = already overdue).
    address: str | None = None
    expires: float | None = None
    host_deadline: float | None = None

    @property
    def connected(self) -> bool:
        return self.conn is not None


@dataclass(slots=True)
class Room:
    code: str
    max_players: int
    private: bool
    metadata: dict[str, Any]
    created: float
    topology: str = "mesh"
    locked: bool = False
    host: str = ""  # peer id of the host (star) / owner (mesh)
    seats: list[Seat] = field(default_factory=list)  # join order
    # Kicked identities (tokens and peer ids), oldest first, capped by the core.
    banned: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def seat(self, peer_id: str) -> Seat | None:
        for seat in self.seats:
            if seat.peer_id == peer_id:
                return seat
        return None

    def connected(self, exclude: str | None = None) -> list[int]:
        """Connections of the connected seats (join order), minus ``exclude``'s."""
        return [s.conn for s in self.seats if s.conn is not None and s.peer_id != exclude]

    def ban(self, key: str, cap: int) -> list[str]:
        """Remember ``key`` as banned; return the oldest ones forgotten over ``cap``."""
        self.banned[key] = None
        forgotten = []
        while len(self.banned) > cap:
            forgotten.append(self.banned.popitem(last=False)[0])
        return forgotten


def choose_host(seats: list[Seat]) -> Seat | None:
    """The earliest-joined connected seat; with none connected, the earliest-joined
    seat (it may come back); None for an empty room. Deterministic: every member
    would compute the same answer from the same join order."""
    for seat in seats:
        if seat.connected:
            return seat
    return seats[0] if seats else None


@dataclass(frozen=True, slots=True)
class RoomView:
    """A read-only snapshot of a room for tests and introspection."""

    code: str
    host: str
    topology: str
    locked: bool
    max_players: int
    metadata: dict[str, Any]
    members: tuple[str, ...]  # peer ids, join order
    reconnecting: tuple[str, ...]
