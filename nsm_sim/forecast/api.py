"""The forecast from a fit: what ``simulate``, ``prioritise``, the report and ``track`` call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nsm_sim.errors import BundleError
from nsm_sim.forecast.history import History
from nsm_sim.forecast.model import fit_forecast_model
from nsm_sim.forecast.project import forecast
from nsm_sim.forecast.result import Forecast
from nsm_sim.spec import Scenario


def history_of(fit: Any) -> History:
    """Return the forecast's history of a fit.

    Parameters
    ----------
    fit : nsm_sim.models.inference.Fit
        Fresh or loaded from a bundle.

    Returns
    -------
    History

    Raises
    ------
    BundleError
        The fit has no history (a bundle written before the forecast existed, or a fit from a
        query engine's reduction): fit again from the panel.
    """
    if getattr(fit, "history", None) is None:
        raise BundleError(
            "fit",
            [
                "history.csv: missing; the forecast needs the fit's history of arrivals and "
                "North Star by period (fit again from the panel with this version)"
            ],
        )
    return History(frame=fit.history, period=fit.tree.period)


def forecast_fit(
    scenario: Scenario,
    fit: Any,
    *,
    portfolio: Sequence[str] | None = None,
    each: bool = True,
    simulations: int = 4000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Forecast:
    """Forecast the North Star's aggregate of a scenario from a fit (see :func:`forecast`).

    Parameters
    ----------
    scenario : Scenario
        Its tree must be the fit's (the aggregate, target and currency may differ).
    fit : nsm_sim.models.inference.Fit
    portfolio : sequence of str, optional
        The initiatives of the ``"portfolio"`` path; default all.
    each : bool, default True
        Also each initiative alone.
    simulations, seed : int
        As for :func:`nsm_sim.simulate.simulate` (the same seed gives the same draws).
    progress : callable, optional

    Returns
    -------
    Forecast

    Examples
    --------
    A planner's loop (``fit`` from ``nsm_sim.models.inference.load_bundle``)::

        fc = forecast_fit(scenario, fit, simulations=2000)
        fc.summary()                      # per calendar period: mean, p5, p50, p95
        fc.p_target("portfolio")          # P(reaching the target) with the portfolio
        target_report(fc)["needed"]       # what it would take
    """
    from nsm_sim.simulate import posterior_draws

    history = history_of(fit)
    posterior = posterior_draws(fit.idata, scenario.tree)
    model = fit_forecast_model(history, posterior.segments)
    return forecast(
        scenario,
        posterior,
        fit.population,
        model,
        history.frame,
        portfolio=portfolio,
        each=each,
        simulations=simulations,
        seed=seed,
        progress=progress,
    )
