"""Results of a simulation: outcomes per simulation, their summaries, the trajectory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nsm_sim.data import Population
from nsm_sim.simulate.posterior import PosteriorDraws
from nsm_sim.spec import Scenario

#: The quantities reported for each initiative and for the portfolio.
QUANTITIES = ("north_star_change", "north_star_change_pct", "retained_accounts", "value")


@dataclass(frozen=True)
class Outcomes:
    """Per-simulation changes against the baseline; each array's last axis is the simulation.

    Attributes
    ----------
    north_star_change : ndarray
        Change of the North Star total in the last period of the horizon.
    north_star_change_pct : ndarray
        The same in per cent of the baseline's North Star total (``2.5`` = +2.5 %).
    retained_accounts : ndarray
        Change of the accounts still customers after the last period.
    value : ndarray
        Change of the value over the horizon (value per account per period, summed over the
        active accounts and the periods); zero when the population has no value.
    north_star_path : ndarray or None
        Shape (simulations, horizon): the North Star total per period with the initiatives (a
        level, not a change); ``None`` unless asked for.
    """

    north_star_change: np.ndarray
    north_star_change_pct: np.ndarray
    retained_accounts: np.ndarray
    value: np.ndarray
    north_star_path: np.ndarray | None = None

    def get(self, quantity: str) -> np.ndarray:
        """Return the array of one of :data:`QUANTITIES`."""
        if quantity not in QUANTITIES:
            raise KeyError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
        return getattr(self, quantity)


def summarise_outcome(x: np.ndarray) -> dict[str, float]:
    """Summarise one outcome over simulations: mean, median, 5 % and 95 % quantiles, P(> 0).

    Parameters
    ----------
    x : ndarray, shape (simulations,)

    Returns
    -------
    dict
        ``{"mean", "median", "p5", "p95", "p_positive"}``.

    Examples
    --------
    >>> summarise_outcome(np.array([-1.0, 1.0, 2.0, 2.0]))["p_positive"]
    0.75
    """
    x = np.asarray(x, dtype=float)
    p5, median, p95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {
        "mean": float(x.mean()),
        "median": float(median),
        "p5": float(p5),
        "p95": float(p95),
        "p_positive": float(np.mean(x > 0)),
    }


@dataclass(frozen=True)
class SimulationResult:
    """The outcome of :func:`simulate`: changes per simulation, each initiative and the portfolio.

    Attributes
    ----------
    scenario : Scenario
        The scenario simulated.
    names : tuple of str
        Initiative names, the first axis of ``initiatives``.
    effort : ndarray, shape (n_initiatives,)
    initiatives : Outcomes
        Arrays of shape ``(n_initiatives, simulations)``: each initiative alone.
    portfolio : Outcomes
        Arrays of shape ``(simulations,)``: every initiative of the scenario together.
    baseline : dict of ndarray
        The baseline's levels per simulation: ``north_star`` (total in the last period),
        ``retained_accounts`` and ``value`` (over the horizon).
    baseline_path, portfolio_path : ndarray, shape (simulations, horizon)
        North Star total per period, without and with the portfolio (see :meth:`trajectory`).
    has_value : bool
        Whether the population has a value per account (else ``value`` is all zero).
    simulations, seed : int
        As passed to :func:`simulate`.
    posterior_index : ndarray, shape (simulations,)
        The posterior draw used by each simulation.
    posterior : PosteriorDraws
    population : Population
        The inputs, kept so that other sets of initiatives can be projected on the same simulations
        (:meth:`simulate_set`).
    chunk_size : int
        Simulations per chunk used.
    """

    scenario: Scenario
    names: tuple[str, ...]
    effort: np.ndarray
    initiatives: Outcomes
    portfolio: Outcomes
    baseline: dict[str, np.ndarray]
    baseline_path: np.ndarray
    portfolio_path: np.ndarray
    has_value: bool
    simulations: int
    seed: int
    posterior_index: np.ndarray
    posterior: PosteriorDraws = field(repr=False)
    population: Population = field(repr=False)
    chunk_size: int = 0

    def summary(self) -> pd.DataFrame:
        """Summarise each initiative and the portfolio.

        Returns
        -------
        pandas.DataFrame
            One row per initiative then a ``"portfolio"`` row; columns ``name``, ``effort``
            and, for each quantity ``q`` of :data:`QUANTITIES`, ``q_mean``, ``q_median``,
            ``q_p5``, ``q_p95``, ``q_p_positive`` and ``q_per_effort`` (mean per unit of
            effort).
        """
        rows = []
        for k, name in enumerate((*self.names, "portfolio")):
            is_p = k == len(self.names)
            effort = float(self.effort.sum() if is_p else self.effort[k])
            row: dict[str, Any] = {"name": name, "effort": effort}
            for q in QUANTITIES:
                x = self.portfolio.get(q) if is_p else self.initiatives.get(q)[k]
                d = summarise_outcome(x)
                row.update({f"{q}_{key}": val for key, val in d.items()})
                row[f"{q}_per_effort"] = d["mean"] / effort
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data.

        Returns
        -------
        dict
            ``{"scenario", "simulations", "seed", "horizon", "has_value", "initiatives": [{"name",
            "effort", "north_star_change": {"mean", "median", "p5", "p95", "p_positive"},
            "north_star_change_pct": {...}, "retained_accounts": {...}, "value": {...}}, ...],
            "portfolio": {...}, "baseline": {"north_star", "retained_accounts", "value"}}``
            (baseline levels as means over simulations).
        """

        def block(name: str, effort: float, get: Callable[[str], np.ndarray]) -> dict[str, Any]:
            return {
                "name": name,
                "effort": effort,
                **{q: summarise_outcome(get(q)) for q in QUANTITIES},
            }

        items = [
            block(n, float(self.effort[k]), lambda q, k=k: self.initiatives.get(q)[k])
            for k, n in enumerate(self.names)
        ]
        return {
            "scenario": self.scenario.name,
            "simulations": self.simulations,
            "seed": self.seed,
            "horizon": self.scenario.horizon,
            "has_value": self.has_value,
            "initiatives": items,
            "portfolio": block("portfolio", float(self.effort.sum()), self.portfolio.get),
            "baseline": {k: float(np.mean(v)) for k, v in self.baseline.items()},
        }

    def trajectory(
        self,
        quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """North Star total per period, baseline and portfolio, as quantiles over simulations.

        Parameters
        ----------
        quantiles : sequence of float
            Quantiles to report (for a fan chart).
        extra : mapping of str to ndarray, optional
            More series, each of shape ``(simulations, horizon)``, e.g. the
            :attr:`Outcomes.north_star_path` of a set from :meth:`simulate_set`.

        Returns
        -------
        pandas.DataFrame
            Long format: ``period`` (0 = first projected period), ``series`` (``"baseline"``,
            ``"portfolio"``, then the keys of ``extra``), ``mean`` and one column per quantile
            named ``q05``, ``q50``...
        """
        frames = []
        series_paths = {"baseline": self.baseline_path, "portfolio": self.portfolio_path}
        series_paths.update(extra or {})
        for series, path in series_paths.items():
            qs = np.quantile(path, quantiles, axis=0)
            frame = pd.DataFrame({"period": np.arange(path.shape[1]), "series": series})
            frame["mean"] = path.mean(axis=0)
            for q, vals in zip(quantiles, qs, strict=True):
                frame[f"q{round(q * 100):02d}"] = vals
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def simulate_set(self, names: Sequence[str], keep_path: bool = False) -> Outcomes:
        """Project a set of this scenario's initiatives together, on the same simulations.

        Parameters
        ----------
        names : sequence of str
            Initiatives of the scenario.
        keep_path : bool, default False
            Also keep the North Star total per period (``north_star_path``).

        Returns
        -------
        Outcomes
            Arrays of shape ``(simulations,)``, changes against the same baseline; the joint effect
            of the set, interactions included.
        """
        from nsm_sim.simulate.run import simulate_sets  # run imports this module

        out = simulate_sets(
            self.scenario,
            self.posterior,
            self.population,
            {"set": list(names)},
            simulations=self.simulations,
            seed=self.seed,
            chunk_size=self.chunk_size,
            keep_paths=keep_path,
        )
        return out["set"]
