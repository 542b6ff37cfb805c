"""The forecast: the North Star's aggregate per calendar period, with and without initiatives.

One simulation of the forecast is one simulation of :func:`nsm_sim.simulate.simulate_sets`
(the same posterior draw, chosen by :func:`nsm_sim.simulate.posterior_choice` from the same
seed, and the same outcomes of the initiatives) plus the draws of the forecast's own parts,
each from a stream of its own under the seed
(:data:`~nsm_sim.forecast.projection.FORECAST_STREAM`): arrivals, the common shock and the
ramp's level. So the baseline, each initiative and the portfolio are one
computation per simulation, and P(target) is the share of simulations at or above the target.

The model of one simulation is :mod:`nsm_sim.forecast.projection`'s; the result is a
:class:`~nsm_sim.forecast.result.Forecast`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtr

from nsm_sim.data import Population
from nsm_sim.errors import SpecError
from nsm_sim.forecast.calendar import period_dates, periods_to, target_period
from nsm_sim.forecast.model import ForecastModel
from nsm_sim.forecast.projection import BASELINE, PORTFOLIO, build_projection
from nsm_sim.forecast.result import Forecast
from nsm_sim.simulate import PosteriorDraws, simulate_sets
from nsm_sim.spec import Scenario
from nsm_sim.spec.forecast import Aggregate


def _observed(model: ForecastModel, history_frame: pd.DataFrame, aggregate: Aggregate) -> pd.Series:
    f = history_frame
    by = f.groupby("period", sort=True)
    if aggregate == "sum":
        return by["north_star_sum"].sum()
    if aggregate == "mean":
        return by["north_star_sum"].sum() / by["accounts"].sum()
    n = f["accounts"].to_numpy(dtype=float)
    m = f["log_sum"].to_numpy(dtype=float) / n
    sd = np.sqrt(np.maximum(f["log_sumsq"].to_numpy(dtype=float) / n - m * m, 1e-12))
    above = n * (1.0 - ndtr((np.log1p(aggregate.at_least) - m) / sd))
    return pd.Series(above, index=f["period"]).groupby(level=0).sum()


def forecast(
    scenario: Scenario,
    posterior: PosteriorDraws,
    population: Population,
    model: ForecastModel,
    history: pd.DataFrame | None = None,
    *,
    portfolio: Sequence[str] | None = None,
    each: bool = True,
    simulations: int = 4000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Forecast:
    """Forecast the North Star's aggregate with new accounts, without and with initiatives.

    Parameters
    ----------
    scenario : Scenario
        Its tree (``scenario.tree``) gives the aggregate and the calendar; its target (or the
        tree's) is judged. The horizon is the scenario's, extended to the target's date.
    posterior : PosteriorDraws
    population : Population
        The accounts there now (a fit's).
    model : ForecastModel
        From :func:`nsm_sim.forecast.fit_forecast_model`.
    history : pandas.DataFrame, optional
        The history table (:attr:`nsm_sim.forecast.History.frame`), for the observed
        aggregate; without it ``observed`` is empty.
    portfolio : sequence of str, optional
        The initiatives of the ``"portfolio"`` path; default every initiative.
    each : bool, default True
        Also forecast each initiative alone (for P(target) per initiative).
    simulations : int, default 4000
    seed : int, default 0
        The simulator's seed: the same posterior draws and initiative outcomes as
        :func:`nsm_sim.simulate.simulate` with this seed.
    progress : callable, optional
        ``progress(done, total)`` from the simulator.

    Returns
    -------
    Forecast

    Raises
    ------
    SpecError
        The target's date is before the first projected period, or more than ten years on.
    """
    tree = scenario.tree
    if tree is None:
        raise SpecError(f"scenario {scenario.name!r}", ["model: the scenario has no tree"])
    source = f"scenario {scenario.name!r}"
    goal = scenario.goal
    horizon = scenario.horizon
    if goal is not None:
        horizon = max(horizon, periods_to(goal, model.last_period, model.period))
        if horizon > 10 * (52 if model.period == "week" else 12):
            raise SpecError(source, [f"target.by: {goal.by} is more than ten years ahead"])
    dates = period_dates(model.last_period, model.period, horizon)
    target_index = None
    if goal is not None:
        target_index = target_period(goal, dates, model.last_period, source)
    run = scenario.model_copy(update={"horizon": horizon})
    names = [i.name for i in scenario.initiatives]
    chosen = tuple(names if portfolio is None else portfolio)
    sets: dict[str, list[str]] = {BASELINE: [], PORTFOLIO: list(chosen)}
    if each:
        sets.update({f"\x00{n}": [n] for n in names})
    out = simulate_sets(
        run,
        posterior,
        population,
        sets,
        simulations=simulations,
        seed=seed,
        progress=progress,
        keep_paths=True,
    )
    existing = {label: o.north_star_path for label, o in out.items()}
    projection = build_projection(
        tree.north_star_aggregate, model, posterior, population, existing, simulations, seed
    )
    paths = {
        BASELINE: projection.assemble(existing[BASELINE]),
        PORTFOLIO: projection.assemble(existing[PORTFOLIO]),
    }
    alone = {n: projection.assemble(existing[f"\x00{n}"]) for n in names} if each else {}
    observed = (
        _observed(model, history, tree.north_star_aggregate)
        if history is not None
        else pd.Series(dtype=float)
    )
    return Forecast(
        dates=dates,
        aggregate=tree.north_star_aggregate,
        paths=paths,
        initiatives=alone,
        portfolio=chosen,
        observed=observed,
        target=goal,
        target_index=target_index,
        simulations=simulations,
        seed=seed,
        scenario=run,
        posterior=posterior,
        population=population,
        projection=projection,
    )
