"""Forecast: the North Star as the company reports it, with new accounts, and targets.

- :mod:`~nsm_sim.forecast.history`: what the forecast keeps of a panel (:func:`panel_history`).
- :mod:`~nsm_sim.forecast.acquisition`: new accounts per period (:func:`fit_acquisition`).
- :mod:`~nsm_sim.forecast.model`: arrivals, the new accounts' ramp, the common shock
  (:func:`fit_forecast_model`).
- :mod:`~nsm_sim.forecast.project`: the forecast per calendar period, on the simulator's draws
  (:func:`forecast`); :mod:`~nsm_sim.forecast.projection`: the per-simulation pieces it is
  assembled from (new accounts' survival, the ``at_least`` count); :mod:`~nsm_sim.forecast.result`:
  the result (:class:`Forecast`); :mod:`~nsm_sim.forecast.calendar`: the projected periods' dates
  (:func:`period_dates`) and the target's period.
- :mod:`~nsm_sim.forecast.targets`: P(target), the gap, what it would take
  (:func:`target_report`, :func:`needed_lift`, :func:`needed_arrivals`), and the portfolio
  that maximises P(target) (:func:`best_target_portfolio`).
- :mod:`~nsm_sim.forecast.api`: the same from a fit (:func:`forecast_fit`).
"""

from nsm_sim.forecast.acquisition import AcquisitionModel, fit_acquisition
from nsm_sim.forecast.api import forecast_fit, history_of
from nsm_sim.forecast.calendar import period_dates
from nsm_sim.forecast.history import History, panel_history
from nsm_sim.forecast.model import ForecastModel, fit_forecast_model
from nsm_sim.forecast.project import forecast
from nsm_sim.forecast.projection import BASELINE, PORTFOLIO
from nsm_sim.forecast.result import Forecast
from nsm_sim.forecast.targets import (
    best_target_portfolio,
    needed_arrivals,
    needed_lift,
    target_report,
)

__all__ = [
    "BASELINE",
    "PORTFOLIO",
    "AcquisitionModel",
    "Forecast",
    "ForecastModel",
    "History",
    "best_target_portfolio",
    "fit_acquisition",
    "fit_forecast_model",
    "forecast",
    "forecast_fit",
    "history_of",
    "needed_arrivals",
    "needed_lift",
    "panel_history",
    "period_dates",
    "target_report",
]
