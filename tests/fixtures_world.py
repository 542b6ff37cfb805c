"""Fixtures: a small synthetic world and its checked panel."""
