"""The simulator set against the synthetic world's counterfactual truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.simulate import PosteriorDraws
from nsm_sim.simulate.levels import share_column
from nsm_sim.synth import demo_tree
from nsm_sim.testing.inputs import initiative, scenario

#: Ten initiatives on the synthetic world's nodes: ``(target, lift, reach, ramp)``, at levels
#: from about 1 (integrations) to the North Star, full and partial reach, with and without ramp.
COUNTERFACTUAL_INITIATIVES = (
    ("active_seats", 0.20, 1.0, 0),
    ("seats_activated", 0.20, 1.0, 0),
    ("boards_shared", 0.20, 1.0, 0),
    ("integrations_connected", 0.20, 1.0, 0),
    ("projects_completed", 0.10, 1.0, 0),
    ("invites_sent", 0.30, 0.8, 2),
    ("integrations_connected", 0.50, 0.7, 3),
    ("boards_shared", 0.10, 0.9, 1),
    ("seats_activated", 0.40, 0.6, 0),
    ("active_seats", 0.05, 1.0, 4),
)


def counterfactual_comparison(
    world: dict[str, int],
    start: int,
    posterior: PosteriorDraws,
    population: Population,
    *,
    simulations: int = 1000,
    seed: int = 0,
    simulator: Any = None,
) -> pd.DataFrame:
    """Simulate :data:`COUNTERFACTUAL_INITIATIVES` and set them against the world's truth.

    Each initiative starts in the first period after the panel the posterior was fitted on
    (``start`` of the world) and is compared, on the North Star total of the world's last
    period, with :func:`nsm_sim.synth.counterfactual` of the same world.

    Parameters
    ----------
    world : dict
        ``accounts``, ``periods`` and ``seed`` of :func:`nsm_sim.synth.generate_world`.
    start : int
        Periods of the world the posterior was fitted on.
    posterior : PosteriorDraws
    population : Population
        The fitted panel's starting population (with its levels, for exact propagation).
    simulations, seed : int
        Of the simulator.
    simulator : callable, optional
        ``simulator(scenario, posterior, population, simulations=, seed=)`` returning the
        per-simulation North Star change in per cent of each initiative, (I, N); by default
        :func:`nsm_sim.simulate.simulate`'s.

    Returns
    -------
    pandas.DataFrame
        One row per initiative: ``name``, ``target``, ``lift``, ``reach``, ``ramp``,
        ``share`` (the target's mean share ``x / (1 + x)`` over the population's accounts;
        NaN when the population does not give it),
        ``truth`` (per cent), ``mean``, ``q05``, ``q95``, ``q005``, ``q995`` and ``error``
        (``mean / truth - 1``).
    """
    from nsm_sim.simulate import simulate
    from nsm_sim.synth import Intervention, counterfactual

    horizon = world["periods"] - start
    inis = [
        initiative(f"{k:02d} {target}", target=target, lift=lift, reach=reach, ramp=ramp)
        for k, (target, lift, reach, ramp) in enumerate(COUNTERFACTUAL_INITIATIVES)
    ]
    scen = scenario(inis, tree=demo_tree(), horizon=horizon)
    if simulator is None:
        pct = simulate(
            scen, posterior, population, simulations=simulations, seed=seed
        ).initiatives.north_star_change_pct
    else:
        pct = simulator(scen, posterior, population, simulations=simulations, seed=seed)
    rows = []
    for k, ini in enumerate(inis):
        target, lift, reach, ramp = COUNTERFACTUAL_INITIATIVES[k]
        iv = Intervention(target, lift, start=start, reach=reach, ramp=ramp, name=ini.name)
        truth = counterfactual(iv, **world)["north_star_change_pct"].iloc[-1]
        q = np.quantile(pct[k], [0.05, 0.95, 0.005, 0.995])
        column = share_column(target)
        frame = population.frame
        if column in frame:
            share = float(np.average(frame[column], weights=frame["accounts"]))
        else:
            share = float("nan")
        rows.append(
            {
                "name": ini.name,
                "target": target,
                "lift": lift,
                "reach": reach,
                "ramp": ramp,
                "share": share,
                "truth": float(truth),
                "mean": float(pct[k].mean()),
                "q05": q[0],
                "q95": q[1],
                "q005": q[2],
                "q995": q[3],
                "error": float(pct[k].mean() / truth - 1.0),
            }
        )
    return pd.DataFrame(rows)
