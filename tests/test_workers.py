"""The suite's own distribution on xdist workers (pyproject's addopts, tests/conftest.py)."""

import pytest


def test_a_files_tests_are_grouped_for_one_worker(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs in one process (-n 0): no workers to group for")
    # xdist reads the group off the test's id; where it cannot write it there (pytest 9.2 with
    # pytest-xdist 3.8) every test is scheduled alone, and module fixtures and the session's
    # real fit are built again on each worker
    assert request.node.nodeid.endswith(
        "::test_a_files_tests_are_grouped_for_one_worker@test_workers"
    )
