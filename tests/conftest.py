"""Shared fixtures: the synthetic world, a checked panel, one real fit per session.

Tests that sample a real model are marked ``slow``: explicitly, and any test that uses the
session's real fit (the ``fitted`` fixture, directly or through another fixture) is marked
here, so that ``pytest -m "not slow"`` never waits for a sampler.
"""

import pytest

pytest_plugins = ["fixtures_world", "fixtures_fit"]

#: Fixtures that sample a real model.
SAMPLING_FIXTURES = {"fitted"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SAMPLING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
