"""Fixtures: a small synthetic world and its checked panel."""

import pytest

from nsm_sim.data import check_frame
from nsm_sim.synth import generate_world, write_world

WORLD_ACCOUNTS = 1500
WORLD_PERIODS = 40
WORLD_SEED = 11


@pytest.fixture(scope="session")
def world():
    """The synthetic world: 1,500 accounts x 40 weeks, seed 11 (panel, tree, truth)."""
    return generate_world(accounts=WORLD_ACCOUNTS, periods=WORLD_PERIODS, seed=WORLD_SEED)


@pytest.fixture(scope="session")
def panel(world):
    """The world's panel checked against its tree."""
    return check_frame(world.panel, world.tree, source="synthetic world")


@pytest.fixture(scope="session")
def world_dir(world, tmp_path_factory):
    """A directory holding the world as panel.csv, tree.yaml and truth.json."""
    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out
