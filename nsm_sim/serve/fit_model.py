"""The fit as the planning page holds it: read once from a bundle, shared by every edit.

:class:`FitModel` keeps what the page needs of a fit bundle: the tree, the posterior draws as
the simulator takes them, the starting population, the drivers summary, the fit's warnings
and, when the bundle has a history, the forecast model of new accounts and the date the fan
chart's periods start from. :class:`nsm_sim.serve.planner.Planner` simulates on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class FitModel:
    """What the page needs of a fit bundle, read once.

    Attributes
    ----------
    tree : nsm_sim.spec.MetricTree
    posterior : nsm_sim.simulate.PosteriorDraws
    population : nsm_sim.data.Population
    drivers : pandas.DataFrame
        The drivers summary (:func:`nsm_sim.models.inference.summarise`).
    warnings : list of str
        The fit's warnings (:attr:`nsm_sim.models.inference.Fit.warnings`).
    forecast_model : nsm_sim.forecast.ForecastModel or None
        New accounts and their ramp, fitted once from the bundle's history; ``None`` when the
        bundle has none (then the page shows no forecast).
    history : pandas.DataFrame or None
        The bundle's history (:attr:`nsm_sim.forecast.History.frame`).
    origin : str or None
        Start of the panel's last period (the fan chart's periods are dated from it).
    """

    tree: Any
    posterior: Any
    population: Any
    drivers: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    forecast_model: Any = None
    history: pd.DataFrame | None = None
    origin: str | None = None

    @classmethod
    def from_bundle(cls, fit_dir: str | Path, tree: Any) -> FitModel:
        """Load a fit bundle, refused when it was fitted on another tree.

        Parameters
        ----------
        fit_dir : str or Path
        tree : nsm_sim.spec.MetricTree
            The scenarios' tree.

        Returns
        -------
        FitModel
        """
        from nsm_sim import simulate
        from nsm_sim.models import inference

        fit = inference.load_bundle(fit_dir, tree=tree)
        posterior = simulate.posterior_draws(fit.idata, fit.tree)
        warnings = list(fit.warnings)
        forecast_model = history = None
        if getattr(fit, "history", None) is not None:
            from nsm_sim import forecast

            found = forecast.history_of(fit)
            forecast_model = forecast.fit_forecast_model(found, posterior.segments)
            history = found.frame
        else:
            warnings.append(
                "the fit bundle has no history.csv (fitted before forecasts): no forecast with "
                "new accounts on the page; fit again from the panel"
            )
        return cls(
            tree=fit.tree,
            posterior=posterior,
            population=fit.population,
            drivers=inference.summarise(fit)["drivers"],
            warnings=warnings,
            forecast_model=forecast_model,
            history=history,
            origin=(fit.panel or {}).get("periods", {}).get("last"),
        )
