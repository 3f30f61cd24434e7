"""Internet play in the NAT lab: STUN hole punching, TURN relay with lobby-minted
credentials, relay-only, bad credentials, and coturn dying mid-match.

Each case checks the path both players report (``session.link_view(peer).path``)
and that state and events flow over it. aioice nominates the first pair that works,
not the best: with TURN configured two cone players may go through the relay
(AIORTC_NOTES), so only the STUN-only case asserts "no relay".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks._natlab import LOBBY_URL, STUN_URL, TURN_URL, Player
from netcode.lobby.turn import mint_turn_credentials
from tests.conftest import TIMESCALE
from tests.netns.conftest import Lab

pytestmark = pytest.mark.timeout(120 * TIMESCALE)
WAIT_S = 20.0 * TIMESCALE


def _join(a: Player, b: Player, **b_args: Any) -> tuple[str, str]:
    """``a`` creates a room, ``b`` joins; both wait for the link (or its failure)."""
    ida = a.call("join", url=LOBBY_URL, **b_args.pop("a_args", {}))
    idb = b.call("join", url=LOBBY_URL, room=ida["room"], **b_args)
    return ida["peer_id"], idb["peer_id"]


def _connected(a: Player, b: Player, ida: str, idb: str) -> tuple[str, str]:
    for p, other in ((a, idb), (b, ida)):
        got = p.call("wait", n=1, timeout=WAIT_S)
        assert other in got["connected"], got
    pa = a.call("paths")["peers"][idb]
    pb = b.call("paths")["peers"][ida]
    return pa["path"], pb["path"]


def _flows(a: Player, b: Player, ida: str, idb: str) -> None:
    """State both ways (ping/echo) and reliable events arrive over the link."""
    got = a.call("ping", peer=idb, n=30, hz=60.0)
    assert len(got["rtt_ms"]) >= 24, got  # >= 80 % of 30 echoes on a clean lab link
    b.call("events", peer=ida, n=20)
    assert a.call("received", peer=idb, n=20, timeout=WAIT_S)["received"] == 20


@pytest.fixture
def players(lab: Lab) -> Iterator[Lab]:
    try:
        yield lab
    finally:
        for p in [*lab.homes, lab.public]:
            p.call("leave")


def test_cone_to_cone_punches_through_with_stun_only(players: Lab) -> None:
    a, b = players.homes[0], players.homes[1]
    stun = [{"urls": STUN_URL}]
    ida, idb = _join(a, b, ice=stun, a_args={"ice": stun})
    assert _connected(a, b, ida, idb) == ("srflx", "srflx")
    _flows(a, b, ida, idb)


def test_cone_to_cone_with_turn_connects(players: Lab) -> None:
    a, b = players.homes[0], players.homes[1]
    ida, idb = _join(a, b)
    paths = _connected(a, b, ida, idb)
    assert set(paths) <= {"srflx", "relay"} and paths[0] == paths[1], paths
    _flows(a, b, ida, idb)


@pytest.mark.parametrize(
    ("x", "y"), [(0, 2), (2, 3)], ids=["cone-symmetric", "symmetric-symmetric"]
)
def test_symmetric_nat_goes_through_the_relay(players: Lab, x: int, y: int) -> None:
    a, b = players.homes[x], players.homes[y]
    ida, idb = _join(a, b)
    assert _connected(a, b, ida, idb) == ("relay", "relay")
    _flows(a, b, ida, idb)


def test_relay_only_policy_forces_the_relay(players: Lab) -> None:
    a, b = players.homes[0], players.homes[1]  # two cones: srflx would work
    ida, idb = _join(a, b, policy="relay", a_args={"policy": "relay"})
    assert _connected(a, b, ida, idb) == ("relay", "relay")
    _flows(a, b, ida, idb)


def test_public_peers_connect_host_to_host(players: Lab) -> None:
    a, b = players.public, players.homes[0]
    ida, idb = _join(a, b, ice=[{"urls": STUN_URL}], a_args={"ice": [{"urls": STUN_URL}]})
    # Each side reports what it sees: the public player gets the home's packets from
    # its NAT's address (prflx/srflx), the home reaches a plain host address.
    assert _connected(a, b, ida, idb) == ("srflx", "host")
    _flows(a, b, ida, idb)


def _bad_credentials(secret: str) -> dict[str, list[dict[str, str]]]:
    now = time.time()
    expired = mint_turn_credentials(secret, "thief", now - 7200, 3600)
    good = mint_turn_credentials(secret, "alice", now, 600)
    return {
        "wrong": [{"urls": TURN_URL, "username": good.username, "credential": "bm90IGl0"}],
        "expired": [
            {"urls": TURN_URL, "username": expired.username, "credential": expired.credential}
        ],
        # alice's credential replayed under another name: the HMAC covers the name
        "replayed": [
            {
                "urls": TURN_URL,
                "username": f"{good.expires_at}:mallory",
                "credential": good.credential,
            }
        ],
    }


@pytest.mark.parametrize("kind", ["wrong", "expired", "replayed"])
def test_bad_turn_credentials_fail_with_a_clear_reason(players: Lab, kind: str) -> None:
    a, b = players.homes[0], players.homes[2]
    ice = _bad_credentials(players.nat.secret)[kind]
    ida, _ = _join(a, b, ice=ice, policy="relay")
    got = b.call("wait", n=1, timeout=WAIT_S)
    assert got["connected"] == [], got
    failure = got["ended"][ida]
    assert failure["why"] == "failed"
    assert f"no relay candidate from TURN server {TURN_URL}" in failure["reason"], failure
    assert "credentials" in failure["reason"]


def test_turn_server_dies_mid_match(players: Lab) -> None:
    """cone0 + cone1 (STUN only: their link is direct for sure) + symmetric2 (TURN) in
    one room; coturn killed: the relayed links are lost within the peer timeout (3 s),
    the direct one keeps carrying state and events."""
    lab = players.nat
    a, b, c = players.homes[0], players.homes[1], players.homes[2]
    stun = [{"urls": STUN_URL}]
    room = a.call("join", url=LOBBY_URL, ice=stun)
    idb = b.call("join", url=LOBBY_URL, room=room["room"], ice=stun)["peer_id"]
    idc = c.call("join", url=LOBBY_URL, room=room["room"])["peer_id"]
    for p in (a, b, c):
        assert len(p.call("wait", n=2, timeout=WAIT_S)["connected"]) == 2
    paths = {pid: info["path"] for pid, info in a.call("paths")["peers"].items()}
    assert paths == {idb: "srflx", idc: "relay"}
    assert b.call("paths")["peers"][idc]["path"] == "relay"
    try:
        killed_at = a.call("now")["now"]
        lab.stop_turn()
        for p, lost in ((a, idc), (b, idc), (c, None)):
            ended = p.call("lost", n=1 if lost else 2, timeout=10.0 * TIMESCALE)["ended"]
            gone = [lost] if lost else [room["peer_id"], idb]
            assert sorted(ended) == sorted(gone), ended
            for pid in gone:
                assert ended[pid]["why"] == "PeerLost" and ended[pid]["reason"] == "timeout"
                # peer_timeout_s is 3 s; a heartbeat interval and scheduling on top
                assert ended[pid]["at"] - killed_at < 3.0 + 2.0 * TIMESCALE
        _flows(a, b, room["peer_id"], idb)  # the direct link is unaffected
        _flows(b, a, idb, room["peer_id"])
    finally:
        lab.start_turn()


def test_stale_lab_namespaces_are_swept(lab: Lab) -> None:
    """A namespace left by a killed run (its pid gone) goes; the live lab stays."""
    import subprocess

    from benchmarks._natlab import LAB_PREFIX, sweep_stale

    stale = f"{LAB_PREFIX}4194305x0000i"  # above the kernel's largest pid: never alive
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=10)
    try:
        assert sweep_stale() == [stale]
        names = subprocess.run(
            ["ip", "netns", "list"], check=True, capture_output=True, text=True, timeout=10
        ).stdout
        assert stale not in names and lab.nat.inet in names
    finally:
        subprocess.run(["ip", "netns", "delete", stale], capture_output=True, timeout=10)
