"""Fixtures: one real fit of the small synthetic world per session."""
