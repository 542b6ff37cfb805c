"""Fixtures shared by the model, simulation and prioritisation tests.

Compiling a PyMC model's function costs far more than evaluating it (PyTensor rewrites the
whole graph at each compile): the fixtures here build a model once, compile one function for
everything the tests read from it, and hand out the model with its values, read-only.
"""

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest


def compile_at(model, outs):
    """One compiled function of the value variables (a point) giving every output of ``outs``."""
    return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=True)


def jittered(start, rng, scale):
    """A point away from ``start``: every value moved by Normal(0, ``scale``) noise."""
    return {k: v + rng.normal(0.0, scale, np.shape(v)) for k, v in start.items()}


def few_levels_panel():
    """A panel of 300 accounts x 12 weeks whose North Star and logins take 6 levels each.

    With the tenures kept apart (``tenure_step=0``) its churn cells are exact: the rows of a
    cell share their segment, level and tenure.
    """
    from nsm_sim.data import check_frame
    from nsm_sim.synth import generate_world

    world = generate_world(accounts=300, periods=12, seed=4)
    frame = world.panel.copy()
    for column, width in ((world.tree.north_star, 5.0), ("logins", 10.0)):
        frame[column] = np.minimum(np.floor(frame[column] / width), 5.0)
    return check_frame(frame, world.tree, source="few levels")


@dataclass(frozen=True)
class RetentionAt:
    """A retention model, its initial point and its values at a point away from it."""

    panel: Any
    rows: np.ndarray
    cells: Any
    model: Any
    start: dict
    point: dict
    #: the model's log density (with the Jacobian), the potential ``churn_cells`` alone, and
    #: ``churn_slope`` and ``churn_intercept``, at ``point``
    logp: float
    churn_cells_logp: float
    churn_slope: np.ndarray
    churn_intercept: np.ndarray


@pytest.fixture(scope="module")
def logins_retention():
    """The retention model on exact cells of ``logins`` (not the North Star) on some rows.

    ``logins_retention(hinge)`` is a :class:`RetentionAt` of the model with or without the
    threshold step, on the cells of :func:`few_levels_panel`'s rows before week 8 with the
    tenures kept apart; the point is the initial point moved by Normal(0, 0.3) noise of seed
    3. Each is built and compiled at its first use in the module.
    """
    from nsm_sim.data import churn_cells
    from nsm_sim.models.retention import build_retention_model

    panel = few_levels_panel()
    early = (panel.frame["t"] < 8).to_numpy()
    cells = churn_cells(panel, "logins", rows=early, tenure_step=0)

    @functools.cache
    def at(hinge: bool) -> RetentionAt:
        model = build_retention_model(cells, hinge=hinge)
        start = model.initial_point()
        point = jittered(start, np.random.default_rng(3), 0.3)
        logp, cells_logp, slope, intercept = compile_at(
            model,
            [
                model.logp(),
                model.logp(vars=[model["churn_cells"]]),
                *model.replace_rvs_by_values([model["churn_slope"], model["churn_intercept"]]),
            ],
        )(point)
        return RetentionAt(
            panel,
            early,
            cells,
            model,
            start,
            point,
            *map(float, (logp, cells_logp)),
            slope,
            intercept,
        )

    return at


@pytest.fixture(scope="module")
def planted_step_cells():
    """Churn cells (80 bins) of a world with a planted threshold step.

    3,000 accounts x 40 weeks, seed 4: a slope of -0.3 and a jump of -1.2 above a North Star
    of 6.
    """
    from nsm_sim.data import check_frame, churn_cells
    from nsm_sim.synth import generate_world

    world = generate_world(3000, 40, seed=4, churn_slope=-0.3, hinge_jump=-1.2, hinge_tau=6.0)
    return churn_cells(check_frame(world.panel, world.tree), bins=80)
