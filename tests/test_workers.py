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


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (3, 3), (4, 4), (16, 4), (64, 4)])
def test_auto_starts_a_worker_per_core_and_four_at_most(monkeypatch, request, cores, workers):
    import conftest

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(conftest.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert conftest.pytest_xdist_auto_num_workers(request.config) == workers
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "7")
    assert conftest.pytest_xdist_auto_num_workers(request.config) is None  # xdist's hook reads it
