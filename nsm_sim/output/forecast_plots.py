"""The forecast's figure: the North Star's aggregate on calendar dates against its target.

See :mod:`nsm_sim.output.figures` for what every figure shares. The numbers come from
:meth:`nsm_sim.forecast.Forecast.summary` and :meth:`~nsm_sim.forecast.Forecast.to_dict`
(:func:`forecast_figure` takes them from a forecast); this module only draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nsm_sim.output.figures import (
    SCENARIO_COLOURS,
    floats,
    new_figure,
    nothing_to_show,
    plain,
    require_columns,
)

#: Quantiles the fan chart needs from :meth:`nsm_sim.forecast.Forecast.summary`.
FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

#: Colour of the observed history and of the target.
HISTORY_COLOUR, TARGET_COLOUR = "#222222", "#d62728"


def forecast_fan(
    summary: pd.DataFrame,
    observed: pd.Series,
    north_star: str,
    *,
    aggregate: str = "total over accounts",
    target: Mapping[str, Any] | None = None,
) -> Figure:
    """Fan chart of the forecast on calendar dates, the observed history and the target.

    Parameters
    ----------
    summary : pandas.DataFrame
        :meth:`nsm_sim.forecast.Forecast.summary` with the quantiles of
        :data:`FAN_QUANTILES`: ``period`` (dates), ``series`` (``baseline``, ``portfolio``),
        ``p5``, ``p25``, ``p50``, ``p75``, ``p95``.
    observed : pandas.Series
        The observed aggregate, indexed by period start date.
    north_star : str
        The North Star's name.
    aggregate : str
        How it is aggregated, in words (:func:`nsm_sim.spec.aggregate_label`).
    target : mapping, optional
        The forecast's ``target`` block (:meth:`~nsm_sim.forecast.Forecast.to_dict`):
        ``value``, ``by``, ``p_baseline``, ``p_portfolio``.

    Returns
    -------
    Figure

    Examples
    --------
    >>> s = pd.DataFrame({"period": pd.to_datetime(["2026-01-05", "2026-01-12"] * 2),
    ...     "series": ["baseline"] * 2 + ["portfolio"] * 2, "p5": [9, 9, 9, 10],
    ...     "p25": [10, 10, 10, 11], "p50": [11, 11, 11, 12], "p75": [12, 12, 12, 13],
    ...     "p95": [13, 13, 13, 14]})
    >>> obs = pd.Series([10.0, 11.0], index=pd.to_datetime(["2025-12-22", "2025-12-29"]))
    >>> fig = forecast_fan(s, obs, "nsm", target={"value": 12, "by": "2026-01-12",
    ...                    "p_baseline": 0.2, "p_portfolio": 0.5})
    >>> fig.axes[0].get_title()
    'Forecast of nsm (total over accounts) against the target'
    """
    require_columns(summary, ["period", "series", "p5", "p25", "p50", "p75", "p95"], "forecast")
    fig = new_figure()
    ax = fig.add_subplot()
    against = " against the target" if target else ""
    ax.set_title(f"Forecast of {plain(north_star)} ({aggregate}){against}")
    ax.set_ylabel(f"{plain(north_star)} ({aggregate})")
    if summary.empty and observed.empty:
        nothing_to_show(ax)
        return fig
    if not observed.empty:
        ax.plot(
            pd.to_datetime(observed.index),
            observed.to_numpy(dtype=float),
            color=HISTORY_COLOUR,
            lw=1.5,
            label="observed",
        )
    names = summary["series"].astype(str).to_numpy()
    for series in dict.fromkeys(names):
        colour = SCENARIO_COLOURS.get(series, "#1f77b4")
        part = summary[names == series].sort_values("period", kind="stable")
        x = pd.to_datetime(part["period"]).to_numpy()
        q = {c: floats(part, c) for c in ("p5", "p25", "p50", "p75", "p95")}
        ax.fill_between(x, q["p5"], q["p95"], color=colour, alpha=0.12)
        ax.fill_between(x, q["p25"], q["p75"], color=colour, alpha=0.25)
        label = f"{plain(series)} (median, 50% and 90%)"
        if target:
            label += f"; P(target) {100 * float(target[f'p_{series}']):.0f}%"
        ax.plot(x, q["p50"], color=colour, lw=2.0, label=label)
    if target:
        by = pd.Timestamp(target["by"])
        value = float(target["value"])
        ax.axhline(value, color=TARGET_COLOUR, lw=1.0, ls="--")
        ax.plot([by], [value], marker="D", color=TARGET_COLOUR, ls="none", label="target")
    ax.grid(color="0.92")
    ax.legend(loc="best", fontsize="small", frameon=False)
    fig.autofmt_xdate()
    return fig


def forecast_figure(forecast: Any) -> Figure:
    """Draw :func:`forecast_fan` of a forecast.

    Parameters
    ----------
    forecast : nsm_sim.forecast.Forecast

    Returns
    -------
    Figure
    """
    from nsm_sim.spec import aggregate_label

    tree = forecast.scenario.tree
    return forecast_fan(
        forecast.summary(FAN_QUANTILES),
        forecast.observed,
        tree.north_star,
        aggregate=aggregate_label(forecast.aggregate),
        target=forecast.to_dict()["target"],
    )
