"""Fixtures shared by the model, simulation and prioritisation tests."""
