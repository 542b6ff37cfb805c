"""Shared fixtures: the synthetic world, a checked panel, one real fit per session.

Tests that sample a real model are marked ``slow``: explicitly, and any test that uses the
session's real fit (the ``fitted`` fixture, directly or through another fixture) is marked
here, so that ``pytest -m "not slow"`` never waits for a sampler.
"""

import functools
import gc
import os

import pytest
import typer.testing
from threadpoolctl import threadpool_limits

# The imports of collection (PyMC, PyTensor, pandas...) make millions of long-lived objects
# and little garbage: the cyclic collector has nothing to find there until the tests run
# (pytest_collection_finish).
gc.disable()

# One BLAS thread unless told otherwise: the tests' matrices are small, and two OpenBLAS pools
# (NumPy's and SciPy's) spinning against each other on two cores made some LAPACK calls five
# times slower. The variable reaches libraries loaded later and the tests' subprocesses.
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    threadpool_limits(1, user_api="blas")

pytest_plugins = [
    "fixtures_world",
    "fixtures_fit",
    "fixtures_serve",
    "fixtures_events",
    "fixtures_models",
]

#: Fixtures that sample a real model.
SAMPLING_FIXTURES = {"fitted"}


#: The most workers ``-n auto`` (pyproject's addopts) starts: each imports the libraries and
#: collects every file again (about 7 s of CPU and up to 0.8 GB), already half of each one's
#: share of the fast tier's 50 s of tests at four.
MOST_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """A worker per core, at most :data:`MOST_WORKERS` (``-n N`` sets any other number)."""
    if "PYTEST_XDIST_AUTO_NUM_WORKERS" in os.environ:
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(MOST_WORKERS, cores or 1)


def is_xdist_controller(config) -> bool:
    """Whether this process hands the tests to xdist workers and runs none itself."""
    workers = config.getoption("numprocesses", None)
    return bool(workers) and not hasattr(config, "workerinput")


def pytest_configure(config):
    if is_xdist_controller(config):
        return
    from hypothesis import settings

    # Property tests draw the same examples on every run: a failure is a bug to fix, never a
    # coin toss in CI (benchmarks/fuzz_cli.py explores further with its own seeds).
    settings.register_profile("repeatable", derandomize=True, database=None)
    settings.load_profile("repeatable")


@pytest.fixture(scope="session", autouse=True)
def one_click_command_per_app():
    """Build each Typer app's Click command once, not on every ``CliRunner.invoke``.

    Typer rebuilds the whole command tree from the functions' signatures on every invocation
    (about 18 ms for ``nsm-sim``, some 270 times in the fast tier). The command holds no state
    between invocations (each parses into a new context), so reusing it changes no result.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))
        yield


def pytest_collection_finish(session):
    """Collect again, with what the imports built set aside for good (``gc.freeze``).

    Every full collection would otherwise walk those long-lived objects again; the tests' own
    objects are collected as before.
    """
    gc.collect()
    gc.freeze()
    gc.enable()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the tests that sample as slow, and keep together what shares costly fixtures.

    Under ``--dist loadgroup`` (the default, see pyproject's addopts) the tests of one file
    run on one worker, so that its module fixtures are built once, and every test of the
    session's real fit runs on one worker, so that it is sampled once. First among the
    hooks: xdist reads the groups in its own.
    """
    for item in items:
        if SAMPLING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("fitted"))
        else:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
