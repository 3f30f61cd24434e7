"""The frame loop's game logic over an in-memory fake session hub (no sockets):
event dispatch, host/client roles, toggles, stats and the result file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import netcode
from demo_game.app import build_scene
from demo_game.cli import parse_args
from demo_game.loop import HOST_SILENT_S, NO_HOST_GIVE_UP_S, GameLoop
from demo_game.sim import DT, Input
from netcode import NetworkConditions
from netcode.events import (
    EventReceived,
    HostChanged,
    Kicked,
    PeerConnected,
    PeerLeft,
    PeerLost,
    PeerReconnected,
    PeerReconnecting,
    SnapshotReceived,
    StateReceived,
)


@dataclass
class _Info:
    peer_id: str
    state: str = "connected"


@dataclass
class FakeSession:
    """Delivers instantly to the hub's other sessions; counts like PeerStats would."""

    hub: FakeHub
    peer_id: str
    room: str | None = "ROOM42"
    inbox: list[Any] = field(default_factory=list)
    peers: dict[str, Any] = field(default_factory=dict)
    conditions: list[NetworkConditions | None] = field(default_factory=list)
    sent: int = 0
    topology: str = "star"

    @property
    def host_id(self) -> str | None:
        return self.hub.host

    def poll(self) -> list[Any]:
        out, self.inbox = self.inbox, []
        return out

    def _targets(self, to: str | None) -> list[FakeSession]:
        return [s for s in self.hub.sessions if s is not self and to in (None, s.peer_id)]

    def send_state(self, obj: Any, to: str | None = None) -> bool:
        for s in self._targets(to):
            self.sent += 1
            s.inbox.append(StateReceived(self.peer_id, obj, self.sent & 0xFFFF))
        return True

    def send_event(self, obj: Any, to: str | None = None) -> None:
        for s in self._targets(to):
            s.inbox.append(EventReceived(self.peer_id, obj))

    def send_snapshot(self, entities: Any, to: str | None = None) -> None:
        for s in self._targets(to):
            self.sent += 1
            s.inbox.append(SnapshotReceived(self.peer_id, self.sent, dict(entities)))

    def stats(self, peer_id: str) -> Any:
        return netcode.PeerStats(rtt_ms=2.0, packets_sent=self.sent, kbps_sent=10.0)

    def set_conditions(self, conditions: NetworkConditions | None, peer: str | None = None) -> None:
        self.conditions.append(conditions)


@dataclass
class FakeHub:
    sessions: list[FakeSession] = field(default_factory=list)
    host: str | None = None  # the first to join, like the lobby names it

    def join(self, pid: str) -> FakeSession:
        s = FakeSession(self, pid)
        self.host = self.host or pid
        for other in self.sessions:
            other.peers[pid] = _Info(pid)
            s.peers[other.peer_id] = _Info(other.peer_id)
            other.inbox.append(PeerConnected(pid))
            s.inbox.append(PeerConnected(other.peer_id))
        self.sessions.append(s)
        return s


def _match(ticks: int) -> tuple[GameLoop, list[GameLoop]]:
    hub = FakeHub()
    lobby = ["--lobby", "ws://127.0.0.1:1"]
    server = GameLoop(hub.join("srv"), parse_args(["--serve", *lobby]), want_peers=2)
    clients = [
        GameLoop(
            hub.join(f"c{i}"),
            parse_args(["--bot", "--join", "R", *lobby, "--seed", str(i)]),
            want_peers=2,
        )
        for i in range(2)
    ]
    loops = [server, *clients]
    for k in range(1, ticks + 1):
        for g in loops:
            now = g.start + k * DT
            g.handle_events(now)
            g.run_ticks(now, None if g.role == "server" else g.bot_input())
            g.sample_stats(now)
    return server, clients


def test_fake_match_moves_everyone_and_reports() -> None:
    server, clients = _match(ticks=240)
    res = server.result()
    assert res["role"] == "server" and set(res["moved"]) == {"c0", "c1"}
    assert all(d > 30 for d in res["moved"].values())
    assert all(n > 200 for n in res["inputs_received"].values())
    assert res["snapshots_sent"] > 100
    for c in clients:
        r = c.result()
        assert r["host"] == "srv" and r["snapshots_received"] > 100
        assert set(r["moved"]) == {"c0", "c1"} - {c.me}
        assert all(d > 30 for d in r["moved"].values())
        assert all(p["connected"] for p in r["peers"].values())
        assert r["peers"]["srv"]["rtt_p50_ms"] == 2.0
        assert r["bad_packets"] == 0
    assert clients[0].graph.latest is not None


def test_bad_packets_are_counted_not_fatal() -> None:
    server, clients = _match(ticks=2)
    c = clients[0]
    for ev in (
        SnapshotReceived("srv", 1, {"zz": {}}),
        StateReceived("srv", {"k": "in"}, 1),
        EventReceived("srv", [1, 2]),
    ):
        c._dispatch(ev, c.start)
    server._dispatch(StateReceived("c0", {"k": "in", "i": [[1, [9, 9]]]}, 1), server.start)
    assert c.bad_packets == 2 and server.bad_packets == 1


def _run(loops: list[GameLoop], first: int, last: int) -> None:
    for k in range(first, last + 1):
        for g in loops:
            now = g.start + k * DT
            g.handle_events(now)
            g.check_host(now)
            g.run_ticks(now, None if g.role == "server" else g.bot_input())
            g.sample_stats(now)


def test_host_lost_is_not_the_end_and_end_event_stops_everyone() -> None:
    server, clients = _match(ticks=4)
    c = clients[0]
    c._dispatch(PeerLost("srv", "timeout"), c.start)
    c._dispatch(PeerLeft("srv", "left"), c.start)
    assert c.stop_reason is None  # the lobby will name a new host
    clients[1]._dispatch(EventReceived("c0", {"k": "end"}), clients[1].start)
    assert clients[1].stop_reason is not None
    server._dispatch(PeerLeft("c0", "left"), server.start)
    assert server.host is not None and "c0" not in server.host.world.players


def test_client_without_host_gives_up_after_a_while() -> None:
    _server, clients = _match(ticks=4)
    c = clients[0]
    c.s.peers["srv"].state = "lost"
    c.check_host(c.start)
    assert "waiting for the lobby" in c.notice(c.start) or "connecting" in c.notice(c.start)
    c.check_host(c.start + NO_HOST_GIVE_UP_S - 1)
    assert c.stop_reason is None
    c.check_host(c.start + NO_HOST_GIVE_UP_S + 1)
    assert c.stop_reason == "no host"


def test_host_migration_carries_the_match_on() -> None:
    server, clients = _match(ticks=120)
    hub: FakeHub = server.s.hub  # type: ignore[attr-defined]
    c0, c1 = clients
    assert c0.client is not None and c0.client.latest is not None
    before = dict(c0.client.latest.players)
    tick_before = c0.client.latest.tick
    # the host process dies: the lobby names c0 (joined first after it)
    hub.sessions.remove(server.s)  # type: ignore[arg-type]
    hub.host = "c0"
    for g in clients:
        g.s.peers["srv"].state = "lost"
        g._dispatch(PeerLost("srv", "timeout"), g.start)
    now = c0.start + 200 * DT
    c0._dispatch(HostChanged("c0", "srv", you=True), now)
    c1._dispatch(HostChanged("c0", "srv", you=False), now)
    assert c0.role == "host" and c0.host is not None and c0.client is None
    assert set(c0.host.world.players) == set(before)  # everyone keeps their entity
    assert c0.host.world.tick > tick_before  # the match clock went on meanwhile
    assert all(c0.host.world.players[p].score == v.score for p, v in before.items())
    assert "you are the host now" in c0.notice(now)
    _run(clients, 201, 400)
    res0, res1 = c0.result(), c1.result()
    assert res0["role"] == "host" and res0["moved"]["c1"] > 30  # c1's inputs reach c0
    assert res0["inputs_received"]["c1"] > 100
    assert res1["host"] == "c0" and res1["moved_since_host_change"]["c0"] > 30
    assert res1["bad_packets"] == 0 and res0["bad_packets"] == 0
    events = [(e["event"], e["peer"]) for e in res1["timeline"]]
    assert events == [("first_snapshot", "srv"), ("host_changed", "c0"), ("first_snapshot", "c0")]


def test_dropped_player_keeps_its_entity_and_continues_its_inputs() -> None:
    server, clients = _match(ticks=120)
    assert server.host is not None
    server._dispatch(PeerReconnecting("c0"), server.start)
    assert server.tag_of("c0") == "reconnecting..."
    assert server.host.queues["c0"].last == Input()  # stands still while away
    server._dispatch(PeerLost("c0", "timeout"), server.start)
    server._dispatch(PeerReconnected("c0"), server.start)
    assert "c0" in server.host.world.players and server.tag_of("c0") == "lost"
    acked = server.host.queues["c0"].applied
    assert acked > 0
    # the restarted process: a fresh client, same peer id
    hub: FakeHub = server.s.hub  # type: ignore[attr-defined]
    old = clients[0]
    hub.sessions.remove(old.s)  # type: ignore[arg-type]
    new = GameLoop(hub.join("c0"), old.opts, want_peers=2)
    hub.sessions.remove(server.s)  # type: ignore[arg-type]
    hub.sessions.insert(0, server.s)  # type: ignore[arg-type]
    _run([server, new, clients[1]], 121, 300)
    assert new.client is not None and new.client.predictor is not None
    assert new.client.predictor.next_seq > acked  # continues past what the host applied
    res = server.result()
    assert set(res["scores"]) == {"c0", "c1"} and server.tag_of("c0") == ""
    assert new.result()["bad_packets"] == 0
    assert any(e["event"] == "reconnected" and e["entity_kept"] for e in res["timeline"])


def test_kicked_stops() -> None:
    _server, clients = _match(ticks=2)
    clients[0]._dispatch(Kicked("c0", "griefing"), clients[0].start)
    assert clients[0].stop_reason == "kicked (griefing)"


def test_conditioner_toggle_and_scene() -> None:
    _server, clients = _match(ticks=60)
    c = clients[0]
    c.toggle_conditioner()
    c.toggle_conditioner()
    s: FakeSession = c.s  # type: ignore[assignment]
    assert s.conditions[0] is not None and s.conditions[0].loss > 0 and s.conditions[1] is None
    scene = build_scene(c, "ROOM42", "ws://x", c.start + 60 * DT)
    assert {e.pid for e in scene.players} == {"c0", "c1"}
    assert [e.local for e in scene.players if e.pid == "c0"] == [True]
    assert len(scene.pickups) > 0 and scene.ghost is not None


def test_renders_a_frame_offscreen(tmp_path: Any) -> None:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from demo_game.render import WINDOW_SIZE, Renderer

    server, _clients = _match(ticks=60)
    surf = pygame.Surface(WINDOW_SIZE)
    Renderer().draw(surf, build_scene(server, "ROOM42", "ws://x", server.start), server.graph)
    colors = {tuple(surf.get_at((x, y)))[:3] for x in range(0, 960, 7) for y in range(0, 640, 7)}
    assert len(colors) > 10  # arena, players, coins and HUD were drawn


def test_keys_toggle_interpolation_prediction_graph_and_quit() -> None:
    import pygame

    from demo_game.app import _key

    _server, clients = _match(ticks=4)
    c = clients[0]
    for key in (pygame.K_i, pygame.K_p, pygame.K_g):
        _key(c, key)
    assert (c.toggles.interpolation, c.toggles.prediction, c.toggles.graph) == (False,) * 3
    scene = build_scene(c, "R", "ws://x", c.start)
    assert not scene.interpolation and not scene.prediction and scene.ghost is None
    _key(c, pygame.K_c)
    assert c.conditioner_label().startswith("5%")
    _key(c, pygame.K_ESCAPE)
    assert c.stop_reason == "escape"


def test_snapshot_acking_an_unsent_input_is_a_bad_packet() -> None:
    _server, clients = _match(ticks=10)
    c = clients[0]
    assert c.client is not None and c.client.latest is not None
    ents = {
        f"p:{pid}": {"x": 10, "y": 10, "vx": 0, "vy": 0, "s": 0, "c": 0, "a": 10**9}
        for pid in ("c0", "c1")
    }
    ents["w"] = {"t": c.client.latest.tick + 100}
    c._dispatch(SnapshotReceived("srv", 99, ents), c.start)
    assert c.bad_packets == 1


def test_hud_shows_reconnecting_players_and_a_lost_host() -> None:
    server, clients = _match(ticks=60)
    c = clients[0]
    c._dispatch(PeerReconnecting("c1"), c.start)
    scene = build_scene(c, "R", "ws://x", c.start + 60 * DT)
    assert [e.tag for e in scene.players if e.pid == "c1"] == ["reconnecting..."]
    assert scene.notice == "" and scene.role == "client (star)"
    c.s.peers["srv"].state = "lost"
    c.check_host(c.start)
    assert "new host" in build_scene(c, "R", "ws://x", c.start).notice
    c.s.peers["srv"].state = "connected"  # link up, but its snapshots stopped
    later = c.start + 60 * DT + HOST_SILENT_S + 0.1
    assert build_scene(c, "R", "ws://x", later).notice == "host not responding..."
    assert c.client is not None and c.client.predictor is not None
    before = c.client.predictor.next_seq
    assert c.run_ticks(later, Input(1, 0)) > 0
    assert c.client.predictor.next_seq == before  # no input predicted meanwhile
    server._dispatch(PeerLost("c0", "timeout"), server.start)
    assert [
        e.tag for e in build_scene(server, "R", "ws://x", server.start).players if e.pid == "c0"
    ] == ["lost"]


def test_new_host_drops_entities_of_players_already_gone() -> None:
    _server, clients = _match(ticks=60)
    c0 = clients[0]
    del c0.s.peers["c1"]  # c1 left the room before the lobby named us host
    c0._dispatch(PeerLeft("c1", "left"), c0.start)
    c0._dispatch(HostChanged("c0", "srv", you=True), c0.start + 61 * DT)
    assert c0.host is not None and set(c0.host.world.players) == {"c0"}


def test_nothing_after_end_is_dispatched() -> None:
    server, _clients = _match(ticks=30)
    assert server.host is not None
    s: FakeSession = server.s  # type: ignore[assignment]
    s.inbox += [EventReceived("c0", {"k": "end"}), PeerLeft("c0", "left"), PeerLeft("c1", "left")]
    server.handle_events(server.start)
    assert server.match_over and server.stop_reason == "match ended by c0"
    assert set(server.result()["scores"]) == {"c0", "c1"}  # the final world, as played
