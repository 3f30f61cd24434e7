"""Shared test setup: hypothesis profiles, time scaling for slow machines."""

from __future__ import annotations

import os

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
