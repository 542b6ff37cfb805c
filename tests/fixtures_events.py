"""Fixtures shared by the event-log and engine tests."""
