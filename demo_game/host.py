"""The host's side of the game: authoritative simulation fed by remote inputs. Pure.

The host owns the one true :class:`~demo_game.sim.World`. Each remote player's
inputs arrive redundantly and out of order on the unreliable channel; an
:class:`InputQueue` per player turns them back into one input per tick, in
sequence order, and remembers the newest applied sequence number, which goes
back in every snapshot so the client's predictor knows what to replay.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from netcode import InputReceiver

from .messages import INPUT_REDUNDANCY, InputPacket, SnapshotView, encode_snapshot, player_from_view
from .sim import Input, Pickup, Player, World, add_player, new_world, remove_player, step

__all__ = ["HostGame", "InputQueue"]


class InputQueue:
    """Paces one client's inputs: exactly one per host tick, in sequence order.

    netcode's :class:`InputReceiver` strips the redundancy (each input once, in
    order, gaps counted as lost); this queue then feeds them to the simulation
    at one per tick. A client's clock runs a little fast or slow against ours,
    so the backlog is bounded: beyond ``max_backlog`` queued inputs the oldest
    are applied at once (a tick of steering lost rather than input latency
    creeping up). When the queue runs dry the last input repeats, which is
    what the player was most likely still doing.
    """

    def __init__(self, max_backlog: int = 6, applied: int = -1) -> None:
        self.max_backlog = max_backlog
        # newest seq simulated: the ack that goes back in snapshots (a new host starts
        # from the ack its predecessor last sent, so acks never go backwards)
        self.applied = applied
        self.last = Input()
        self._receiver: InputReceiver[Input] = InputReceiver(max_batch=4 * INPUT_REDUNDANCY)
        self._pending: deque[tuple[int, Input]] = deque()
        self.received = 0  # inputs accepted (each counted once)

    @property
    def duplicates(self) -> int:
        return self._receiver.duplicates

    @property
    def lost(self) -> int:
        return self._receiver.lost

    def receive(self, packet: InputPacket) -> None:
        fresh = self._receiver.receive([[seq, inp] for seq, inp in packet.inputs])
        self._pending.extend(fresh)
        self.received += len(fresh)
        while len(self._pending) > self.max_backlog:
            self._apply()

    def _apply(self) -> Input:
        self.applied, self.last = self._pending.popleft()
        return self.last

    def pop(self) -> Input:
        """The input for this tick: the next in sequence, or the last one again."""
        return self._apply() if self._pending else self.last

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def idle(self) -> None:
        """The player's process is gone for now: stand still, not repeat its last input."""
        self._pending.clear()
        self.last = Input()


class HostGame:
    """World + per-peer input queues + movement bookkeeping for the stats file."""

    def __init__(self, local_pid: str | None, seed: int = 1, world: World | None = None) -> None:
        """``local_pid`` None: a dedicated host with no player of its own. ``world``: the
        match to carry on (host migration), else a new one."""
        self.local_pid = local_pid
        world = world if world is not None else new_world(seed)
        self.world: World = add_player(world, local_pid) if local_pid else world
        self.queues: dict[str, InputQueue] = {}
        self.moved: dict[str, float] = {}  # remote pid -> distance travelled (px)

    @classmethod
    def take_over(
        cls, view: SnapshotView, local: Player | None, *, ticks_gone: int, seed: int
    ) -> HostGame:
        """The new host after a migration: the world of the last snapshot we got, a
        ``ticks_gone`` later (the snapshot tick keeps rising for everyone), our own
        player where we predicted it, everyone else keeping their entity and score."""
        players = {pid: player_from_view(pv) for pid, pv in view.players.items()}
        if local is not None and local.pid in players:
            players[local.pid] = Player(
                local.pid,
                local.x,
                local.y,
                local.vx,
                local.vy,
                players[local.pid].score,
                players[local.pid].color,
            )
        tick = view.tick + max(0, ticks_gone)
        world = World(
            tick=tick,
            players=players,
            pickups=tuple(Pickup(k, x, y) for k, (x, y) in sorted(view.pickups.items())),
            rng=(seed * 7919 + tick) & 0xFFFF_FFFF,  # the old host's rng is not in snapshots
            next_color=max((p.color for p in players.values()), default=-1) + 1,
        )
        game = cls(local.pid if local is not None else None, seed, world)
        for pid, pv in view.players.items():
            if game.local_pid != pid:
                game.queues[pid] = InputQueue(applied=pv.ack)
                game.moved[pid] = 0.0
        return game

    def idle(self, pid: str) -> None:
        """``pid`` dropped (it may come back with its seat): its entity stays, still."""
        queue = self.queues.get(pid)
        if queue is not None:
            queue.idle()

    def add_peer(self, pid: str) -> None:
        self.world = add_player(self.world, pid)
        self.queues.setdefault(pid, InputQueue())
        self.moved.setdefault(pid, 0.0)

    def remove_peer(self, pid: str) -> None:
        self.world = remove_player(self.world, pid)
        self.queues.pop(pid, None)

    def receive_inputs(self, pid: str, packet: InputPacket) -> None:
        queue = self.queues.get(pid)
        if queue is not None:  # inputs from a peer not (yet) in the game are ignored
            queue.receive(packet)

    def tick(self, local_input: Input | None = None) -> World:
        """One fixed step of the authoritative simulation."""
        inputs: dict[str, Input] = {}
        if self.local_pid and local_input is not None:
            inputs[self.local_pid] = local_input
        for pid, queue in self.queues.items():
            inputs[pid] = queue.pop()
        before = self.world.players
        self.world = step(self.world, inputs)
        for pid in self.moved:
            a, b = before.get(pid), self.world.players.get(pid)
            if a is not None and b is not None:
                self.moved[pid] += math.hypot(b.x - a.x, b.y - a.y)
        return self.world

    def acks(self) -> Mapping[str, int]:
        return {pid: q.applied for pid, q in self.queues.items()}

    def snapshot(self) -> dict[str, dict[str, int]]:
        return encode_snapshot(self.world, self.acks())
