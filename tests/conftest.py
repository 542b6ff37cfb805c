"""Shared fixtures: the synthetic world, a checked panel, one real fit per session.

Tests that sample a real model are marked ``slow``: explicitly, and any test that uses the
session's real fit (the ``fitted`` fixture, directly or through another fixture) is marked
here, so that ``pytest -m "not slow"`` never waits for a sampler.
"""

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run: a failure is a bug to fix, never a
# coin toss in CI (benchmarks/fuzz_cli.py explores further with its own seeds).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.load_profile("repeatable")

pytest_plugins = ["fixtures_world", "fixtures_fit", "fixtures_serve"]

#: Fixtures that sample a real model.
SAMPLING_FIXTURES = {"fitted"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SAMPLING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
