"""Shared fixtures: the synthetic world, a checked panel, one real fit per session."""

pytest_plugins = ["fixtures_world", "fixtures_fit"]
