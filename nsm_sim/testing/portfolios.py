"""Portfolio problems: initiatives with links and their values per simulation."""

from __future__ import annotations

import numpy as np

from nsm_sim.spec import Scenario
from nsm_sim.testing.inputs import flat_tree, initiative, scenario


def portfolio_instance(
    n: int = 50, simulations: int = 10_000, seed: int = 0, *, links: bool = True
) -> tuple[Scenario, np.ndarray]:
    """Return a portfolio problem of ``n`` initiatives with regular links and heavy tails.

    Efforts are integers 1-12 and the capacity a third of the total effort (rounded down).
    With ``links``, initiative ``k`` requires ``k - 1`` when ``k mod 10 = 3`` and excludes
    ``k - 2`` when ``k mod 10 = 7``. Each initiative's value in a simulation is its mean
    (normal, 3 +- 3) plus a Student-t(4) deviation scaled by 1-6.

    Parameters
    ----------
    n : int, default 50
    simulations : int, default 10000
    seed : int, default 0
    links : bool, default True

    Returns
    -------
    scenario : Scenario
    values : ndarray, shape (n, simulations)
    """
    rng = np.random.default_rng(seed)
    names = [f"i{k:02d}" for k in range(n)]
    inis = []
    for k, name in enumerate(names):
        requires = [names[k - 1]] if links and k % 10 == 3 else []
        excludes = [names[k - 2]] if links and k % 10 == 7 else []
        effort = float(rng.integers(1, 13))
        inis.append(initiative(name, effort=effort, requires=requires, excludes=excludes))
    capacity = float(sum(ini.effort for ini in inis) // 3)
    scen = scenario(inis, tree=flat_tree(), horizon=4, capacity=capacity, name="milp")
    mean = rng.normal(3.0, 3.0, n)
    values = mean[:, None] + rng.standard_t(4, (n, simulations)) * rng.uniform(1, 6, n)[:, None]
    return scen, values


def random_portfolio_instance(
    rng: np.random.Generator, n: int, simulations: int = 60
) -> tuple[Scenario, np.ndarray]:
    """Return a small portfolio problem with random links, for checks by enumeration.

    Each initiative requires each other one with probability 0.12 and excludes each other one
    it does not require with probability 0.12; efforts are integers 1-7 and the capacity 20-70 %
    of the total effort. Values are normal, with means about 1 and standard deviations 0.5-4.

    Parameters
    ----------
    rng : numpy.random.Generator
        Consumed: successive calls give different problems.
    n : int
    simulations : int, default 60

    Returns
    -------
    scenario : Scenario
    values : ndarray, shape (n, simulations)
    """
    names = [f"i{k}" for k in range(n)]
    inis = []
    for name in names:
        others = [o for o in names if o != name]
        requires = [o for o in others if rng.random() < 0.12]
        excludes = [o for o in others if o not in requires and rng.random() < 0.12]
        effort = float(rng.integers(1, 8))
        inis.append(initiative(name, effort=effort, requires=requires, excludes=excludes))
    capacity = float(rng.uniform(0.2, 0.7) * sum(ini.effort for ini in inis))
    means = rng.normal(1.0, 1.5, n)[:, None]
    spreads = rng.uniform(0.5, 4.0, n)[:, None]
    return scenario(inis, capacity=capacity), rng.normal(means, spreads, (n, simulations))
