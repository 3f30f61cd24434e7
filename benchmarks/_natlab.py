"""The NAT lab: an "internet" namespace with the lobby and a real coturn, homes behind NATs.

Topology (all addresses the lab's own: TEST-NET-3 for the internet, TEST-NET-2 for
the home LANs; never 192.0.2.0/24, this machine's uplink)::

    [home0 198.51.100.2] -- [router0 NAT] --+
    [home1 198.51.100.18] -- [router1 NAT] --+-- br0 in "inet": 203.0.113.1 (lobby, coturn)
    ...                                      +-- router WANs 203.0.113.10+i

A router is a namespace with ``ip_forward`` and nftables: ``masquerade`` (port
preserving: a port-restricted cone NAT) or ``masquerade random,fully-random`` (a
symmetric NAT), and ``ct state new drop`` on its WAN (without it conntrack keeps the
other player's early check and re-maps the router's port, so hole punching never
works: AIORTC_NOTES "NAT and TURN"). Namespaces connect only to each other: no veth
to the machine's interfaces, no route out. Names carry the prefix ``ncnat`` plus the
pid; stale ones from a killed run are swept at start.

Processes: ``turnserver`` (coturn, generated config, ``use-auth-secret``), the lobby
(``python -m netcode lobby`` with ``--turn-url``/``--stun-url`` and the secret in
``NETCODE_TURN_SECRET``) and the players (:mod:`benchmarks._nat_peer`), each run
with ``ip netns exec``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LAB_PREFIX",
    "LOBBY_URL",
    "STUN_URL",
    "TURN_URL",
    "NatKind",
    "NatLab",
    "Player",
    "available",
    "sweep_stale",
]

NatKind = Literal["cone", "symmetric"]
LAB_PREFIX = "ncnat"
INET_IP = "203.0.113.1"
LOBBY_URL = f"ws://{INET_IP}:8765"
TURN_URL = f"turn:{INET_IP}:3478"
STUN_URL = f"stun:{INET_IP}:3478"
VOID_IP, VOID_MAC = "203.0.113.254", "02:00:00:00:00:fe"
ROOT = Path(__file__).resolve().parents[1]
_STEP_TIMEOUT_S = 10.0


def available() -> str | None:
    """None if the lab can run here, else what is missing."""
    if os.geteuid() != 0:
        return "root (network namespaces)"
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables"), ("turnserver", "coturn")):
        if shutil.which(tool) is None:
            return f"{tool!r} (apt-get install {pkg})"
    return None


def _run(args: Sequence[str], ns: str | None = None, stdin: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    done = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=_STEP_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def _namespaces() -> list[str]:
    out = _run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sweep_stale() -> list[str]:
    """Delete lab namespaces left by runs whose process is gone; returns their names."""
    swept = []
    for ns in _namespaces():
        if not ns.startswith(LAB_PREFIX):
            continue
        pid = ns[len(LAB_PREFIX) :].split("x", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue  # a live run's lab (this process's own included)
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            _run(["ip", "netns", "delete", ns])
            swept.append(ns)
    return swept


def _router_rules(kind: NatKind) -> str:
    flags = " random,fully-random" if kind == "symmetric" else ""
    return f"""
table ip nat {{
  chain post {{ type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade{flags}; }}
}}
table inet fw {{
  chain from_wan {{ type filter hook forward priority filter; policy accept;
    iifname "wan" ct state new drop; }}
  chain to_router {{ type filter hook input priority filter; policy accept;
    iifname "wan" ct state new drop; }}
}}
"""


@dataclass
class Player:
    """One ``benchmarks._nat_peer`` process in a namespace, driven by JSON lines."""

    ns: str
    proc: subprocess.Popen[str]

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Run one command; the reply must come within its own ``timeout`` + 30 s."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = _readline(self.proc, float(args.get("timeout", 0.0)) + 30.0)
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise RuntimeError(f"{self.ns} {cmd}: {reply['error']}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line within ``timeout`` (a hung player fails the run, never blocks it)."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"player {proc.args!r} silent for {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"player exited ({proc.poll()}); see its stderr")
    return line


@dataclass
class NatLab:
    """The lab; ``homes[i]`` is the namespace of a player behind router ``i``."""

    kinds: tuple[NatKind, ...]
    tag: str = field(default_factory=lambda: f"{LAB_PREFIX}{os.getpid()}x{secrets.token_hex(2)}")
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    turn_ttl_s: int = 600
    inet: str = ""
    routers: list[str] = field(default_factory=list)
    homes: list[str] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ncnat-")))
    turn: subprocess.Popen[bytes] | None = None
    lobby: subprocess.Popen[str] | None = None
    players: list[Player] = field(default_factory=list)

    @classmethod
    def create(cls, kinds: Sequence[NatKind], **kwargs: Any) -> NatLab:
        sweep_stale()
        lab = cls(tuple(kinds), **kwargs)
        try:
            lab._build()
            lab.start_turn()
            lab._start_lobby()
        except BaseException:
            lab.close()
            raise
        return lab

    # -- topology ---------------------------------------------------------------------

    def _ns(self, name: str) -> str:
        _run(["ip", "netns", "add", name])
        _run(["ip", "link", "set", "lo", "up"], name)
        return name

    def _void_route(self, ns: str, dev: str) -> None:
        """The rest of "the internet": a default route to a neighbour nobody is.

        Packets for other addresses (a home's private LAN address, say) leave and
        vanish, as on the real internet. Without a route a send to them fails at
        once (ENETUNREACH), and coturn closes the whole allocation on that error.
        """
        _run(
            ["ip", "neigh", "add", VOID_IP, "lladdr", VOID_MAC, "dev", dev, "nud", "permanent"], ns
        )
        _run(["ip", "route", "add", "default", "via", VOID_IP, "dev", dev], ns)

    def _build(self) -> None:
        self.inet = self._ns(f"{self.tag}i")
        _run(["ip", "link", "add", "br0", "type", "bridge"], self.inet)
        _run(["ip", "addr", "add", f"{INET_IP}/24", "dev", "br0"], self.inet)
        _run(["ip", "link", "set", "br0", "up"], self.inet)
        self._void_route(self.inet, "br0")
        for i, kind in enumerate(self.kinds):
            self._home(i, kind)

    def _veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        _run(["ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b])
        _run(["ip", "-n", ns_a, "link", "set", if_b, "netns", ns_b])
        _run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
        _run(["ip", "-n", ns_b, "link", "set", if_b, "up"])

    def _home(self, i: int, kind: NatKind) -> None:
        router = self._ns(f"{self.tag}r{i}")
        home = self._ns(f"{self.tag}h{i}")
        self.routers.append(router)
        self.homes.append(home)
        self._veth(self.inet, f"r{i}", router, "wan")
        _run(["ip", "link", "set", f"r{i}", "master", "br0"], self.inet)
        _run(["ip", "addr", "add", f"203.0.113.{10 + i}/24", "dev", "wan"], router)
        self._void_route(router, "wan")
        lan = 16 * i
        self._veth(router, "lan", home, "eth0")
        _run(["ip", "addr", "add", f"198.51.100.{lan + 1}/28", "dev", "lan"], router)
        _run(["ip", "addr", "add", f"198.51.100.{lan + 2}/28", "dev", "eth0"], home)
        _run(["ip", "route", "add", "default", "via", f"198.51.100.{lan + 1}"], home)
        _run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], router)
        _run(["nft", "-f", "-"], router, stdin=_router_rules(kind))

    # -- services ---------------------------------------------------------------------

    def _turn_config(self) -> Path:
        conf = self.tmp / "turnserver.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listening-ip={INET_IP}",
                    f"relay-ip={INET_IP}",
                    "listening-port=3478",
                    "min-port=49152",
                    "max-port=49407",
                    "use-auth-secret",
                    f"static-auth-secret={self.secret}",
                    "realm=netcode.lab",
                    "fingerprint",
                    "no-tls",
                    "no-dtls",
                    "no-cli",
                    "no-tcp-relay",
                    f"pidfile={self.tmp / 'turnserver.pid'}",
                    f"userdb={self.tmp / 'turndb'}",
                    f"log-file={self.tmp / 'turn.log'}",
                    "simple-log",
                    "verbose",
                    "",
                ]
            )
        )
        return conf

    def start_turn(self) -> None:
        """Start coturn and wait until it answers (its log says it listens)."""
        conf = self._turn_config()
        cmd = ["ip", "netns", "exec", self.inet, "turnserver", "-c", str(conf)]
        self.turn = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_udp(3478)

    def stop_turn(self) -> None:
        """Kill coturn (SIGKILL: a crashed relay, no goodbye to anyone)."""
        if self.turn is not None:
            self.turn.kill()
            self.turn.wait(timeout=5)
            self.turn = None

    def _wait_udp(self, port: int) -> None:
        deadline = time.monotonic() + _STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            out = _run(["cat", "/proc/net/udp"], self.inet)
            if f":{port:04X} " in out:
                return
            assert self.turn is not None
            if self.turn.poll() is not None:
                break
            time.sleep(0.05)  # polling a system service's socket table, not syncing peers
        raise RuntimeError(f"coturn did not start; log: {self.tmp / 'turn.log'}")

    def _start_lobby(self) -> None:
        env = {**os.environ, "NETCODE_TURN_SECRET": self.secret}
        cmd = [
            *("ip", "netns", "exec", self.inet, sys.executable, "-m", "netcode", "lobby"),
            *("--host", INET_IP, "--port", "8765", "--log-level", "WARNING"),
            *("--turn-url", TURN_URL, "--stun-url", STUN_URL, "--turn-ttl", str(self.turn_ttl_s)),
        ]
        self.lobby = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        line = _readline(self.lobby, 30.0)
        if "listening on" not in line:
            raise RuntimeError(f"lobby did not start: {line!r}")

    def player(self, ns: str) -> Player:
        """A player process in namespace ``ns`` (a home, or ``self.inet``: no NAT)."""
        log = self.tmp / f"player{len(self.players)}.log"
        with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "benchmarks._nat_peer"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        p = Player(ns, proc)
        self.players.append(p)
        return p

    def conntrack(self, router: int) -> str:
        """The router's connection tracking table (the lab has no ``conntrack`` tool)."""
        return _run(["cat", "/proc/net/nf_conntrack"], self.routers[router])

    def close(self) -> None:
        for p in self.players:
            p.close()
        self.stop_turn()
        if self.lobby is not None:
            self.lobby.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.lobby.wait(timeout=5)
            if self.lobby.poll() is None:
                self.lobby.kill()
        for ns in [*self.homes, *self.routers, self.inet]:
            if ns:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    _run(["ip", "netns", "delete", ns])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> NatLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
