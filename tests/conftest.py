"""Shared test setup: hypothesis profiles, time scaling for slow machines."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.register_profile("dev", max_examples=100, deadline=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# One time unit for timeouts in tests, scaled on slow machines: NETCODE_TEST_TIMESCALE=3.
TIMESCALE = float(os.environ.get("NETCODE_TEST_TIMESCALE", "1"))

# System services (coturn, redis-server, chromium, nftables, root for namespaces): a test
# that needs one calls require_service(); on a laptop without it the test skips with the
# reason, and CI (.ci/run sets NETCODE_REQUIRE_SERVICES=1 after installing them) fails
# instead, so a missing service can never hide a test there.
REQUIRE_SERVICES = os.environ.get("NETCODE_REQUIRE_SERVICES") == "1"


def require_service(available: bool, what: str) -> None:
    """Skip (or, under NETCODE_REQUIRE_SERVICES=1, fail) unless ``available``."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {what} (NETCODE_REQUIRE_SERVICES=1)")
    pytest.skip(f"needs {what}")


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """``netcode lobby``'s main() configures the root logger (handlers, level); tests
    that call it in-process must not change what later tests' caplog sees."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
