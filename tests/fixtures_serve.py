"""Fixtures: a planning page on a small world, with no sampler (a seeded posterior).

The planner gets what a fit bundle gives it (posterior draws, the starting population, the
drivers summary, the forecast's model of new accounts) built without NUTS: the posterior is
:func:`nsm_sim.testing.demo_posterior` on the demo tree, the population and the history are
those of a small synthetic world's panel, the drivers summary is read off the posterior's
draws as :func:`nsm_sim.models.inference.summarise` reads a fit's.
"""

import datetime
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = ROOT / "nsm_sim" / "examples" / "scenarios" / "demo.yaml"
DEMO_TREE = ROOT / "nsm_sim" / "examples" / "models" / "demo.yaml"

#: Simulations per edit in the tests (the page's default is larger).
TEST_SIMULATIONS = 400


def drivers_of(posterior):
    """The drivers summary's population rows, read off the posterior's draws."""
    import numpy as np
    import pandas as pd

    rows = []
    for k, (parent, child) in enumerate(posterior.edges):
        x = posterior.elasticity[:, k, :].ravel()
        low, high = np.quantile(x, [0.05, 0.95])
        rows.append(
            {
                "parent": parent,
                "child": child,
                "segment": None,
                "mean": float(x.mean()),
                "low": float(low),
                "high": float(high),
                "calibrated_by": "",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def small_fit_model():
    """A FitModel of a 400-account world with a seeded demo-tree posterior and a forecast."""
    from nsm_sim import testing
    from nsm_sim.data import check_frame, starting_population
    from nsm_sim.forecast import fit_forecast_model, panel_history
    from nsm_sim.serve import FitModel
    from nsm_sim.synth import generate_world

    world = generate_world(accounts=400, periods=30, seed=5)
    panel = check_frame(world.panel, world.tree, source="small world")
    posterior = testing.demo_posterior(n_draws=400)
    history = panel_history(panel)
    return FitModel(
        tree=world.tree,
        posterior=posterior,
        population=starting_population(panel),
        drivers=drivers_of(posterior),
        forecast_model=fit_forecast_model(history, posterior.segments),
        history=history.frame,
        origin=f"{panel.periods[-1]:%Y-%m-%d}",
    ), panel


def write_scenario(folder: Path, panel, *, name: str = "demo.yaml", capacity: int = 30) -> Path:
    """Copy the demo scenario and tree into ``folder``; its target 8 weeks after the panel."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "scenarios").mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO_TREE, folder / "models" / "demo.yaml")
    text = DEMO_SCENARIO.read_text(encoding="utf-8")
    by = (panel.periods[-1] + datetime.timedelta(weeks=8)).strftime("%Y-%m-%d")
    text = re.sub(
        r"target: \{value: [0-9]+, by: [0-9-]+\}", f"target: {{value: 3500, by: {by}}}", text
    )
    text = re.sub(r"capacity: [0-9]+", f"capacity: {capacity}", text, count=1)
    path = folder / "scenarios" / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def planner(small_fit_model, tmp_path):
    """A Planner on a fresh copy of the demo scenario (tests may edit and save it)."""
    from nsm_sim.serve import Planner, ScenarioDocument

    model, panel = small_fit_model
    path = write_scenario(tmp_path, panel)
    return Planner([ScenarioDocument(path)], model, simulations=TEST_SIMULATIONS, seed=0)


@pytest.fixture
def served(planner):
    """The planner served on 127.0.0.1 on a free port, in a thread: (base URL, planner)."""
    from nsm_sim.serve import make_server

    server = make_server(planner, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}", planner
    finally:
        server.shutdown()
        server.server_close()
