"""Fixtures shared by the event-log and engine tests."""

import pytest

#: The synthetic world the event tests write as events: 300 accounts x 12 weeks, seed 11.
SYNTHETIC = {"accounts": 300, "periods": 12, "seed": 11}


@pytest.fixture(scope="session")
def synthetic_events(tmp_path_factory):
    """The synthetic world written as events (Parquet), its tree file and panel: the paths.

    Read only: tests write their outputs elsewhere.
    """
    from nsm_sim.events.synthetic import write_synthetic_events

    out = tmp_path_factory.mktemp("synthetic-events") / "world"
    return write_synthetic_events(out, fmt="parquet", **SYNTHETIC)


@pytest.fixture(scope="session")
def synthetic_build(synthetic_events):
    """The panel built from :func:`synthetic_events` in the engine (read only)."""
    from nsm_sim.events.engine import build_panel

    return build_panel(synthetic_events["tree"])
