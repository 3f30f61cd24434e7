"""Kernel packet loss for TCP: a network namespace, a veth pair and nftables drop rules.

Optional (``--kernel-loss``; needs root, ``ip`` and ``nft``). User space cannot
make TCP lose a segment, so the in-process conditioner cannot impair the
websocket path; the kernel can. The echo peer runs inside the namespace and
the benchmark reaches it over the veth pair; an nftables rule on the egress of
each end (``numgen random mod 1000 < n drop``) loses that share of packets in
each direction, TCP retransmissions and ACKs included. Nothing outside the
namespace and the one host-side veth interface is touched, and everything is
removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KernelLossLink", "available"]

_SUBNET = "10.231.{n}.{host}"


def available() -> str | None:
    """None if kernel loss can be set up here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool!r} (apt-get install iproute2 nftables)"
    return None


def _run(args: Sequence[str], ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=10)


@dataclass
class KernelLossLink:
    """Host <-> namespace over veth; ``set_loss`` changes the drop rate both ways."""

    ns: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    @classmethod
    def create(cls, tag: int) -> KernelLossLink:
        n = tag % 250 + 1
        link = cls(
            ns=f"ncbench{tag}",
            host_if=f"ncbh{tag % 100000}",
            ns_if=f"ncbn{tag % 100000}",
            host_ip=_SUBNET.format(n=n, host=1),
            ns_ip=_SUBNET.format(n=n, host=2),
        )
        try:
            link._setup()
        except Exception:
            link.close()
            raise
        return link

    def _setup(self) -> None:
        _run(["ip", "netns", "add", self.ns])
        _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if])
        _run(["ip", "link", "set", self.ns_if, "netns", self.ns])
        _run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if])
        _run(["ip", "link", "set", self.host_if, "up"])
        _run(["ip", "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if], self.ns)
        _run(["ip", "link", "set", self.ns_if, "up"], self.ns)
        _run(["ip", "link", "set", "lo", "up"], self.ns)
        for ns in (None, self.ns):
            _run(["nft", "add", "table", "inet", self.ns], ns)
            chain = "{ type filter hook output priority 0 ; }"
            _run(["nft", "add", "chain", "inet", self.ns, "out", chain], ns)

    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the namespace."""
        return ["ip", "netns", "exec", self.ns]

    def set_loss(self, loss: float) -> None:
        """Drop ``loss`` (0..1) of the packets leaving each end of the veth pair."""
        per_mille = round(loss * 1000)
        for ns, ifname in ((None, self.host_if), (self.ns, self.ns_if)):
            _run(["nft", "flush", "chain", "inet", self.ns, "out"], ns)
            if per_mille > 0:
                rule = ["oifname", ifname, "numgen", "random", "mod", "1000", "<"]
                _run(
                    ["nft", "add", "rule", "inet", self.ns, "out", *rule, str(per_mille), "drop"],
                    ns,
                )

    def close(self) -> None:
        for args in (
            ["nft", "delete", "table", "inet", self.ns],
            ["ip", "link", "delete", self.host_if],
            ["ip", "netns", "delete", self.ns],
        ):
            # Already gone, or never created when setup failed half way.
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _run(args)
