"""The forecast's result (:class:`Forecast`): its paths, their summary, P(target) and the gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.forecast.projection import BASELINE, PORTFOLIO, Projection
from nsm_sim.simulate import PosteriorDraws
from nsm_sim.spec import AtLeast, Scenario, Target
from nsm_sim.spec.forecast import Aggregate


def share_at_least(x: np.ndarray, value: float) -> float:
    """Share of the finite simulations at or above ``value`` (P(target) of one series).

    A simulation whose projection is not finite (the simulator can fail on extreme posterior
    draws) is left out of every summary rather than counted as a miss; :attr:`Forecast.warnings`
    says how many.

    Examples
    --------
    >>> share_at_least(np.array([1.0, 2.0, np.nan, 4.0]), 2.0)
    0.6666666666666666
    """
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(x)
    return float(np.mean(x[finite] >= value)) if finite.any() else float("nan")


@dataclass(frozen=True)
class Forecast:
    """The North Star's aggregate per projected period, per simulation.

    Made by :func:`nsm_sim.forecast.forecast`; the model is :mod:`nsm_sim.forecast.projection`'s.

    Attributes
    ----------
    dates : pandas.DatetimeIndex
        Start dates of the projected periods (the first is the period after the data).
    aggregate : "sum", "mean" or AtLeast
        As the tree defines the North Star's aggregate.
    paths : dict of str to ndarray, shape (simulations, horizon)
        ``"baseline"`` (no initiative) and ``"portfolio"`` (the portfolio's initiatives).
    initiatives : dict of str to ndarray, shape (simulations, horizon)
        Each initiative alone (empty when not asked for).
    portfolio : tuple of str
        The initiatives of the ``"portfolio"`` path.
    observed : pandas.Series
        The observed aggregate per observed period (the ``at_least`` count is approximated
        from each period's mean and spread of ``log1p`` North Star by segment and tenure).
    target : Target or None
        The target in force (the scenario's, else the tree's).
    target_index : int or None
        The projected period the target is judged in.
    simulations, seed : int
    scenario : Scenario
        The scenario projected, its horizon extended to the target's date.
    posterior : PosteriorDraws
    population : Population
        The inputs, kept so that other sets of initiatives can be projected on the same
        simulations (:mod:`nsm_sim.forecast.targets` does).
    projection : Projection
        The pieces the aggregate is assembled from.
    """

    dates: pd.DatetimeIndex
    aggregate: Aggregate
    paths: dict[str, np.ndarray]
    initiatives: dict[str, np.ndarray]
    portfolio: tuple[str, ...]
    observed: pd.Series
    target: Target | None
    target_index: int | None
    simulations: int
    seed: int
    scenario: Scenario = field(repr=False)
    posterior: PosteriorDraws = field(repr=False)
    population: Population = field(repr=False)
    projection: Projection = field(repr=False)

    def summary(self, quantiles: Sequence[float] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
        """Summarise the forecast per period and series: mean and quantiles over simulations.

        Parameters
        ----------
        quantiles : sequence of float
            Named ``p5``, ``p50``, ``p95``... in the columns.

        Returns
        -------
        pandas.DataFrame
            Long format: ``period`` (start date), ``series`` (``baseline``, ``portfolio``),
            ``mean`` and one column per quantile.
        """
        frames = []
        for series, path in self.paths.items():
            mean = np.nanmean(path, axis=0)
            frame = pd.DataFrame({"period": self.dates, "series": series, "mean": mean})
            for q, vals in zip(quantiles, np.nanquantile(path, quantiles, axis=0), strict=True):
                frame[f"p{q * 100:g}"] = vals
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    @property
    def warnings(self) -> list[str]:
        """What the forecast's users must be told: simulations left out as not finite."""
        bad = np.zeros(self.simulations, dtype=bool)
        for path in (*self.paths.values(), *self.initiatives.values()):
            bad |= ~np.all(np.isfinite(path), axis=1)
        if not bad.any():
            return []
        return [
            f"the forecast left out {int(bad.sum())} of {self.simulations:,} simulations whose "
            "projection of the accounts there now is not finite (extreme posterior draws of "
            "the churn threshold)"
        ]

    def at_target(self, series: str = BASELINE) -> np.ndarray:
        """Return the aggregate in the target's period per simulation (series or initiative)."""
        if self.target_index is None:
            raise ValueError("the forecast has no target")
        path = self.paths.get(series)
        if path is None:
            path = self.initiatives[series]
        return path[:, self.target_index]

    def p_target(self, series: str = BASELINE, value: float | None = None) -> float:
        """P(reaching the target): the share of simulations at or above it by its date.

        Parameters
        ----------
        series : str, default "baseline"
            ``"baseline"``, ``"portfolio"`` or an initiative's name.
        value : float, optional
            Another value than the target's (same date).

        Returns
        -------
        float
        """
        x = self.at_target(series)
        return share_at_least(x, self.target.value if value is None else value)

    def expected_gap(self, series: str = BASELINE) -> dict[str, float]:
        """How far the series is from the target by its date.

        Returns
        -------
        dict
            ``mean`` (target minus the mean forecast; negative when the forecast is above)
            and ``shortfall`` (the mean of ``max(target - forecast, 0)`` over simulations).
        """
        x = self.at_target(series)
        x = x[np.isfinite(x)]
        return {
            "mean": float(self.target.value - x.mean()),
            "shortfall": float(np.mean(np.maximum(self.target.value - x, 0.0))),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready forecast: ``{"aggregate", "forecast": [...], "target": {...} or None}``.

        Returns
        -------
        dict
            ``forecast``: one row per projected period, ``{"period": "YYYY-MM-DD",
            "north_star": {"baseline": {"mean", "p5", "p95"}, "portfolio": {...}}}``;
            ``target`` (when one is set): ``{"value", "by", "period", "p_baseline",
            "p_portfolio", "gap_baseline", "gap_portfolio", "initiatives": [{"name",
            "p"}]}`` (``needed`` is added by :func:`nsm_sim.forecast.target_report`).
        """
        rows = []
        for t, date in enumerate(self.dates):
            block = {}
            for series, path in self.paths.items():
                x = path[:, t]
                x = x[np.isfinite(x)]
                p5, p95 = np.quantile(x, [0.05, 0.95])
                block[series] = {"mean": float(x.mean()), "p5": float(p5), "p95": float(p95)}
            rows.append({"period": f"{date:%Y-%m-%d}", "north_star": block})
        aggregate = self.aggregate
        out: dict[str, Any] = {
            "aggregate": aggregate.model_dump() if isinstance(aggregate, AtLeast) else aggregate,
            "forecast": rows,
            "target": None,
        }
        if self.target is not None and self.target_index is not None:
            out["target"] = {
                "value": self.target.value,
                "by": f"{self.target.by:%Y-%m-%d}",
                "period": f"{self.dates[self.target_index]:%Y-%m-%d}",
                "p_baseline": self.p_target(BASELINE),
                "p_portfolio": self.p_target(PORTFOLIO),
                "gap_baseline": self.expected_gap(BASELINE),
                "gap_portfolio": self.expected_gap(PORTFOLIO),
                "initiatives": [
                    {"name": name, "p": self.p_target(name)} for name in self.initiatives
                ],
            }
        return out
