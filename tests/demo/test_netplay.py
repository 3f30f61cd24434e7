"""Host + clients over an in-memory lossy, delayed link: prediction, reconciliation,
interpolation and redundant inputs, all without sockets."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from demo_game.bot import bot_input
from demo_game.client import ClientGame
from demo_game.host import HostGame, InputQueue
from demo_game.messages import InputPacket, decode_inputs, decode_snapshot
from demo_game.sim import DT, Input


@dataclass
class Link:
    """Delivers after ``delay`` ticks, drops with probability ``loss`` (seeded)."""

    delay: int
    loss: float
    rng: random.Random
    queue: list[tuple[int, object]] = field(default_factory=list)

    def send(self, now_tick: int, msg: object) -> None:
        if self.rng.random() >= self.loss:
            self.queue.append((now_tick + self.delay + self.rng.randint(0, 2), msg))

    def receive(self, now_tick: int) -> list[object]:
        due = [m for t, m in self.queue if t <= now_tick]
        self.queue = [(t, m) for t, m in self.queue if t > now_tick]
        return due


def _play(ticks: int, delay: int, loss: float, seed: int) -> tuple[HostGame, list[ClientGame]]:
    rng = random.Random(seed)
    host = HostGame("h", seed=seed)
    clients = [ClientGame(f"c{i}") for i in range(2)]
    up = {c.me: Link(delay, loss, rng) for c in clients}
    down = {c.me: Link(delay, loss, rng) for c in clients}
    for c in clients:
        host.add_peer(c.me)
    for t in range(ticks):
        for c in clients:
            for msg in up[c.me].receive(t):
                host.receive_inputs(c.me, decode_inputs(msg))
        hp = host.world.players["h"]
        host.tick(bot_input((hp.x, hp.y), [(k.x, k.y) for k in host.world.pickups], t, 0))
        if t % 2 == 0:
            for c in clients:
                down[c.me].send(t, host.snapshot())
        for i, c in enumerate(clients):
            for msg in down[c.me].receive(t):
                c.on_snapshot(decode_snapshot(msg), t * DT)  # type: ignore[arg-type]
            pos = c.my_position() or (0.0, 0.0)
            packet = c.tick(bot_input(pos, c.pickups(), t, i + 1))
            if packet is not None:
                up[c.me].send(t, packet)
    return host, clients


def test_clean_link_prediction_matches_the_host() -> None:
    host, clients = _play(ticks=300, delay=3, loss=0.0, seed=1)
    for c in clients:
        assert c.snapshots > 100
        assert all(d > 50 for d in c.moved.values())  # remote entities really moved
        assert set(c.moved) == {"h", *(o.me for o in clients if o is not c)}
    assert all(q.received > 250 for q in host.queues.values())
    assert all(d > 50 for d in host.moved.values())


def test_lossy_link_still_moves_everyone_and_recovers_inputs() -> None:
    host, clients = _play(ticks=400, delay=4, loss=0.2, seed=2)
    for c in clients:
        assert c.snapshots > 100
        assert min(c.moved.values()) > 50
    # 8-fold redundancy: nearly every input reaches the host despite 20% loss
    for q in host.queues.values():
        assert q.received > 0.9 * 400 - 20


def test_reconciled_prediction_replays_unacked_inputs() -> None:
    host = HostGame(None, seed=3)
    c = ClientGame("c")
    host.add_peer("c")
    c.on_snapshot(decode_snapshot(host.snapshot()), 0.0)
    sent = [c.tick(Input(1, 0)) for _ in range(10)]
    assert all(p is not None for p in sent)
    for pkt in sent[:4]:  # the host has seen only 4 of our 10 inputs
        host.receive_inputs("c", decode_inputs(pkt))
        host.tick()
    c.on_snapshot(decode_snapshot(host.snapshot()), 0.1)
    for pkt in sent[4:]:
        host.receive_inputs("c", decode_inputs(pkt))
        host.tick()
    hp = host.world.players["c"]
    mine = c.my_position()
    assert mine is not None
    # quantization of the snapshot (0.1 px) is the only difference left
    assert math.hypot(mine[0] - hp.x, mine[1] - hp.y) < 1.0


def test_interpolation_draws_between_snapshots() -> None:
    host = HostGame(None, seed=4)
    c = ClientGame("c")
    host.add_peer("c")
    host.add_peer("r")
    xs = []
    for t in range(40):
        host.receive_inputs("r", InputPacket(((t, Input(1, 0)),)))
        host.tick()
        if t % 4 == 0:
            c.on_snapshot(decode_snapshot(host.snapshot()), 1.0 + t * DT)
    for i in range(20):
        now = 1.0 + 20 * DT + i * DT
        r = next(p for p in c.players(now, interpolate=True, predict=True) if p.pid == "r")
        xs.append(r.x)
    steps = {round(b - a, 3) for a, b in itertools.pairwise(xs)}
    assert len(steps) > 2  # glides every frame ...
    assert xs == sorted(xs)  # ... in the direction the player moves
    raw = [
        next(
            p
            for p in c.players(1.0 + 20 * DT + i * DT, interpolate=False, predict=True)
            if p.pid == "r"
        ).x
        for i in range(20)
    ]
    assert len(set(raw)) == 1  # without interpolation it sits on the newest snapshot


seqs = st.lists(st.integers(0, 60), max_size=60)


@given(seqs, st.integers(1, 10))
def test_input_queue_applies_each_seq_at_most_once_in_order(order: list[int], backlog: int) -> None:
    q = InputQueue(max_backlog=backlog)
    applied = []
    for seq in order:
        q.receive(InputPacket(((seq, Input(1 if seq % 2 else -1, 0)),)))
        before = q.applied
        q.pop()
        if q.applied != before:
            applied.append(q.applied)
    assert applied == sorted(set(applied))
    assert q.backlog <= backlog


def test_input_queue_repeats_last_input_when_dry() -> None:
    q = InputQueue()
    q.receive(InputPacket(((1, Input(1, 1)),)))
    assert q.pop() == Input(1, 1)
    assert q.pop() == Input(1, 1)
    assert q.applied == 1
    q.receive(InputPacket(((1, Input(0, 0)), (0, Input(0, 0)))))
    assert q.duplicates == 2


def test_corrections_slide_instead_of_snapping() -> None:
    host = HostGame(None, seed=5)
    c = ClientGame("c")
    host.add_peer("c")
    host.add_peer("x")
    c.on_snapshot(decode_snapshot(host.snapshot()), 0.0)
    for _ in range(10):
        c.tick(Input(1, 0))  # predicted 10 ticks to the right ...

    def drawn() -> float:
        return next(p.x for p in c.players(0.0, interpolate=True, predict=True) if p.local)

    before = drawn()
    for seq in range(3):  # ... but the host got "stand still" for our first 3 inputs
        host.receive_inputs("c", InputPacket(((seq, Input()),)))
        host.tick()
    snap = decode_snapshot(host.snapshot())
    c.on_snapshot(snap, 0.2)
    assert c.corrections == 1
    assert abs(drawn() - before) < 1.0  # no visible jump at the correction ...
    assert c.predictor is not None
    for _ in range(40):
        c.tick(Input())
    assert abs(drawn() - c.predictor.state.x) < 0.1  # ... and it converges to the truth
