"""Monte Carlo projection of initiatives through the metric tree to the North Star and churn.

The entry points :func:`simulate` and :func:`simulate_sets` (numpy only: no PyMC). Each
simulation takes one posterior draw of the fitted models (elasticities and the churn hazard)
and one outcome of every initiative (whether it works, and its lift), then projects the
population of the last observed period forward ``horizon`` periods, once without any
initiative (the baseline), once with each initiative alone and once with the whole portfolio.
All of them use the same random inputs (common random numbers), so their differences are
sharp; every result is a change against the baseline.

The model of one simulation
---------------------------
- **Lift.** Initiative ``i`` works with probability ``confidence``; its relative lift ``l`` on
  its target node follows its lift model (:func:`sample_lift`). The log-change of the target
  in period ``t`` is ``works * log(1 + l) * r(t)`` with the ramp
  ``r(t) = clip((t - start + 1) / (ramp + 1), 0, 1)``: nothing before ``start``, a linear
  ramp from the ship period, full effect from period ``start + ramp`` on.
- **Tree.** The drivers model is linear on the ``log1p`` scale, and the change is carried
  exactly as it is written. A relative lift ``exp(g) - 1`` on a node at level ``x`` changes
  ``log1p(x)`` by ``log1p(x exp(g)) - log1p(x) = log1p(s (exp(g) - 1))`` with the node's
  share ``s = x / (1 + x)``, taken per cell from the levels its accounts have (the
  population's ``share:<node>`` columns, :mod:`nsm_sim.simulate.levels`; 1, a level far
  above 1, when the population does not give it). Each parent's ``log1p`` then moves by its
  elasticity times its child's, at its own level, up to the North Star: ``d = path * log1p(s
  (exp(g) - 1))`` with ``path[draw, segment]`` the product of the elasticities. The North
  Star of the cell moves from ``N`` to ``(1 + N) exp(d) - 1`` (a lift on the North Star
  itself gives exactly ``N (1 + l)``).
- **Reach.** Initiative ``i`` reaches a share ``rho[i, s]`` of segment ``s`` (``reach``; or 1
  for the listed ``segments`` and 0 for the others; 1 by default): each account with
  probability ``rho``, so in each simulation the share of a cell's ``n`` accounts it hits is
  drawn, with the binomial's mean ``rho`` and variance ``rho (1 - rho) / n`` (normal,
  clipped to ``[0, 1]``; :meth:`nsm_sim.simulate.plan.Plan.reached`). Alone, it is projected
  on the accounts it reaches, and the others keep their baseline (exact: the cell's change is
  the share reached times the change of a cell wholly reached).
- **Several initiatives** combine on the ``log1p`` scale: each contributes its mean change
  over the share of the cell it reaches, ``D_i = log1p(rho_i (exp(d_i) - 1))``, and these
  add. With
  ``scenario.overlap = w > 0`` the joint lift shrinks because the initiatives reach the same
  users: of the positive ``D_i`` the largest counts in full and the rest by ``1 - w``; the
  negative ones likewise (so ``w = 1`` keeps only the largest gain and the largest loss, and a
  single initiative is never shrunk).
- **Churn.** Period ``t = 0, ..., horizon - 1`` is the ``t``-th period after the last observed
  one. Each cell's accounts are the customers of period 0; in period ``t`` an account has
  tenure ``tenure + 1 + t`` and churns after the period with hazard
  ``logistic(churn_logit(x, log1p(tenure + 1 + t), ...))`` from
  :func:`nsm_sim.models.retention.churn_logit`, ``x = log1p(north_star) + d``. The accounts
  active in period ``t`` are ``accounts * prod_{u < t} (1 - h_u)``. A change ``d`` multiplies
  the odds of churn by the mean over the cell's accounts of ``exp(logit - logit0)``: the slope
  term gives ``exp(churn_slope * d)``; the threshold term moves only the accounts that cross
  it, so with the cell's North Star spread uniformly over its range (``north_star_min`` to
  ``north_star_max``, on the ``log1p`` scale) the share ``c`` that crosses upward has its
  odds times ``exp(hinge_jump)`` and the cell's factor is ``1 + c (exp(hinge_jump) - 1)``,
  with no jump at the cell's mean; a cell of one level keeps the model's smooth step.
- **Outputs per simulation** (each a change against the baseline in the same simulation): the
  North Star total in the last period (``sum active * north star level``, absolute and
  in per cent of the baseline), the accounts retained after the last period, and the value
  over the horizon (``sum over periods of active * value``, the value column per account per
  period).

The kernel (:mod:`nsm_sim.simulate.kernel`) projects the baseline, each initiative alone and
the portfolio chunk by chunk, vectorised over simulations, cells and periods.

Reproducibility: every random number is drawn up front (:mod:`nsm_sim.simulate.plan`) from
streams derived from ``seed`` (one for the choice of posterior draws, two per initiative keyed
by its name: its outcomes, and the share of each cell a partial reach hits), never from the
chunks, so the same seed gives the same numbers bitwise whatever
``chunk_size`` or ``n_jobs``; an initiative keeps its outcomes when other initiatives are added
to or removed from the scenario, which makes two scenarios that share initiatives comparable
simulation by simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nsm_sim.data import Population
from nsm_sim.simulate.kernel import execute
from nsm_sim.simulate.plan import make_plan
from nsm_sim.simulate.posterior import PosteriorDraws
from nsm_sim.simulate.results import Outcomes, SimulationResult
from nsm_sim.spec import Scenario


def _outcomes(out: dict[str, Any], sel: int | slice) -> Outcomes:
    path = out["paths"].get(sel) if isinstance(sel, int) else None
    nsm = out["north_star"][sel]
    base = out["base_north_star"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(base > 0, 100.0 * nsm / np.where(base > 0, base, 1.0), 0.0)
    return Outcomes(
        north_star_change=nsm,
        north_star_change_pct=pct,
        retained_accounts=out["retained"][sel],
        value=out["value"][sel],
        north_star_path=path,
    )


def simulate_sets(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    sets: Mapping[str, Sequence[str]],
    *,
    simulations: int = 4000,
    seed: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_paths: bool = False,
) -> dict[str, Outcomes]:
    """Project any sets of a scenario's initiatives on common random numbers.

    The random inputs of each simulation (posterior draw, whether each initiative works,
    its lift) depend only on ``seed``, ``simulations``, the posterior's size and each
    initiative's name, so results of different calls with the same seed are comparable
    simulation by simulation.

    Parameters
    ----------
    scenario : Scenario
    posterior : PosteriorDraws
    population : Population
    sets : mapping of str to sequence of str
        A label for each set and the names of its initiatives.
    simulations, seed, chunk_size, n_jobs, progress
        As in :func:`simulate`.
    keep_paths : bool, default False
        Also keep each set's North Star total per period (``Outcomes.north_star_path``).

    Returns
    -------
    dict of str to Outcomes
        Per set, arrays of shape ``(simulations,)``.
    """
    paths_for = range(len(sets)) if keep_paths else ()
    plan = make_plan(scenario, posterior, population, sets, simulations, seed, paths_for)
    out, _ = execute(plan, chunk_size, n_jobs, progress)
    return {label: _outcomes(out, k) for k, label in enumerate(sets)}


def simulate(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    *,
    simulations: int = 4000,
    seed: int = 0,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Project each initiative alone and the whole portfolio, on common random numbers.

    Parameters
    ----------
    scenario : Scenario
        The initiatives and the horizon; ``scenario.tree``, when set, must have the
        posterior's edges.
    posterior : PosteriorDraws
        From :func:`posterior_draws` (a fit) or :func:`fixed_posterior` (constants).
    population : Population
        Cells of the last observed period (``segment``, ``accounts``, ``north_star``,
        ``tenure``, ``value``; for exact propagation also the levels within each cell:
        ``share:<node>``, ``north_star_min``, ``north_star_max``, see
        :func:`nsm_sim.data.starting_population`).
    simulations : int, default 4000
        Monte Carlo simulations; each uses one posterior draw (chosen without replacement
        when ``simulations`` does not exceed the posterior's draws, with replacement
        otherwise).
    seed : int, default 0
        The same seed gives the same numbers bitwise, whatever ``chunk_size`` and ``n_jobs``.
    chunk_size : int, optional
        Simulations projected at once; by default chosen to keep the working arrays of each
        worker within about 64 MB.
    n_jobs : int, optional
        Worker threads over chunks (numpy releases the GIL); default ``min(2, cpus)``.
    progress : callable, optional
        Called as ``progress(done, total)`` (simulations) after each chunk.

    Returns
    -------
    SimulationResult

    Raises
    ------
    SpecError
        An initiative's target or segments are not in the fitted tree or the data.
    BundleError
        The posterior's edges do not match the scenario's tree.
    DataError
        The population misses a column, has negative values, or a segment unknown to the fit.

    Examples
    --------
    >>> import pandas as pd
    >>> from nsm_sim.data import Population
    >>> from nsm_sim.simulate import fixed_posterior
    >>> from nsm_sim.spec import Initiative, MetricTree, Scenario
    >>> tree = MetricTree(name="t", north_star="nsm", inputs={"a": []})
    >>> scen = Scenario(name="s", model="t.yaml", horizon=4, capacity=1, tree=tree,
    ...                 initiatives=[Initiative(name="x", target="a", lift=0.1)])
    >>> pop = Population(("all",), pd.DataFrame({"segment": ["all"], "segment_idx": [0],
    ...     "accounts": [100.0], "north_star": [5.0], "tenure": [3.0], "value": [0.0],
    ...     "share:a": [0.5]}))
    >>> res = simulate(scen, fixed_posterior(tree, ["all"], elasticity=1.0,
    ...                churn_slope=0.0), pop, simulations=10)
    >>> round(float(res.portfolio.north_star_change_pct[0]), 6)  # a at 1: log1p(a) +log(1.05)
    6.0
    """
    names = tuple(ini.name for ini in scenario.initiatives)
    sets = {n: [n] for n in names}
    sets["\x00portfolio"] = list(names)
    plan = make_plan(scenario, posterior, population, sets, simulations, seed, [len(names)])
    out, used_chunk = execute(plan, chunk_size, n_jobs, progress)
    return SimulationResult(
        scenario=scenario,
        names=names,
        effort=np.array([ini.effort for ini in scenario.initiatives], dtype=float),
        initiatives=_outcomes(out, slice(0, len(names))),
        portfolio=_outcomes(out, len(names)),
        baseline={
            "north_star": out["base_north_star"],
            "retained_accounts": out["base_retained"],
            "value": out["base_value"],
        },
        baseline_path=out["base_path"],
        portfolio_path=out["paths"][len(names)],
        has_value=bool(np.any(plan.cells.value > 0)),
        simulations=simulations,
        seed=seed,
        posterior_index=plan.post_idx,
        posterior=posterior,
        population=population,
        chunk_size=used_chunk,
    )
