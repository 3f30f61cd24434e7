"""The NAT lab fixture: namespaces, NAT routers, a real coturn and the lobby (root only).

Skips with the reason (not root, no ``nft``, no ``turnserver``) on a laptop; under CI
(``NETCODE_REQUIRE_SERVICES=1``, set by ``.ci/run`` after installing coturn and
nftables) it fails instead. Marked ``netns``: ``pytest -m "not netns"`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks._natlab import NatKind, NatLab, Player, available
from tests.conftest import require_service

__all__ = ["Lab", "lab"]

# home 0, 1: port-restricted cone NATs; 2, 3: symmetric NATs
KINDS: tuple[NatKind, ...] = ("cone", "cone", "symmetric", "symmetric")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: needs root and network namespaces (NAT lab)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/netns/" in str(item.fspath):
            item.add_marker(pytest.mark.netns)


class Lab:
    """The lab with one player process per home (and one on the open internet)."""

    def __init__(self, nat: NatLab) -> None:
        self.nat = nat
        self.homes: list[Player] = [nat.player(ns) for ns in nat.homes]
        self.public = nat.player(nat.inet)


@pytest.fixture(scope="package")
def lab() -> Iterator[Lab]:
    missing = available()
    require_service(missing is None, f"{missing} for the NAT lab")
    nat = NatLab.create(KINDS)
    try:
        yield Lab(nat)
    finally:
        nat.close()
