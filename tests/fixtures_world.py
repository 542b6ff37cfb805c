"""Fixtures: a small synthetic world and its checked panel.

The fixture modules import the product inside their fixtures: an xdist controller loads them
but runs no test, and should not wait for PyMC's imports before it starts its workers.
"""

import pytest

WORLD_ACCOUNTS = 1500
WORLD_PERIODS = 40
WORLD_SEED = 11


@pytest.fixture(scope="session")
def world():
    """The synthetic world: 1,500 accounts x 40 weeks, seed 11 (panel, tree, truth)."""
    from nsm_sim.synth import generate_world

    return generate_world(accounts=WORLD_ACCOUNTS, periods=WORLD_PERIODS, seed=WORLD_SEED)


@pytest.fixture(scope="session")
def panel(world):
    """The world's panel checked against its tree."""
    from nsm_sim.data import check_frame

    return check_frame(world.panel, world.tree, source="synthetic world")


@pytest.fixture(scope="session")
def world_dir(world, tmp_path_factory):
    """A directory holding the world as panel.csv, tree.yaml and truth.json."""
    from nsm_sim.synth import write_world

    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out
