"""Ranking, best portfolio and value of information from one simulation, in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from nsm_sim.prioritise.evpi import evpi
from nsm_sim.prioritise.portfolio import Portfolio, best_portfolio
from nsm_sim.prioritise.ranking import objective_quantity, rank
from nsm_sim.simulate import SimulationResult


@dataclass(frozen=True)
class Prioritisation:
    """Ranking, best portfolio and value of information, from one simulation.

    Attributes
    ----------
    objective : str
        As asked.
    quantity : str
        The simulated quantity used (``retained_accounts`` when value was asked for but the
        population has none).
    note : str or None
        Why the quantity differs from the objective, if it does.
    ranking : pandas.DataFrame
        See :func:`rank`.
    portfolio : Portfolio
        See :func:`best_portfolio` (with the joint projection).
    evpi : pandas.DataFrame
        ``name``, ``evpi`` (portfolio decision) and ``evpi_alone`` (fund/skip alone), sorted
        by ``evpi``, largest first: the initiative to test first is on top.
    k : int
    """

    objective: str
    quantity: str
    note: str | None
    ranking: pd.DataFrame
    portfolio: Portfolio
    evpi: pd.DataFrame
    k: int = 3

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Returns
        -------
        dict
            ``{"objective", "quantity", "note", "ranking": [{"name", "expected_value",
            "value_per_effort", "p_top3", ...}], "portfolio": {"selected", "effort",
            "expected_value", ...}, "evpi": [{"name", "evpi", "evpi_alone"}]}``.
        """
        return {
            "objective": self.objective,
            "quantity": self.quantity,
            "note": self.note,
            "ranking": self.ranking.to_dict(orient="records"),
            "portfolio": self.portfolio.to_dict(),
            "evpi": self.evpi.to_dict(orient="records"),
        }


def prioritise(
    result: SimulationResult,
    *,
    objective: str = "value",
    k: int = 3,
    capacity: float | None = None,
    risk_aversion: float = 0.0,
    alpha: float = 0.1,
    risk_simulations: int = 500,
    resimulate: bool = True,
) -> Prioritisation:
    """Rank the initiatives, choose the portfolio and value the information, in one call.

    Parameters
    ----------
    result : SimulationResult
    objective : {"value", "north_star", "retained_accounts"}
        ``"value"`` falls back to retained accounts when the population has no value (the
        output's ``note`` says so).
    k : int, default 3
        For the ranking's ``p_top{k}``.
    capacity, risk_aversion, alpha, risk_simulations
        See :func:`best_portfolio`.
    resimulate : bool, default True
        Project the chosen set jointly (interactions included).

    Returns
    -------
    Prioritisation
    """
    quantity, note = objective_quantity(result, objective)
    values = result.initiatives.get(quantity)
    ranking = rank(result, objective=objective, k=k)
    portfolio = best_portfolio(
        result.scenario,
        values,
        capacity=capacity,
        risk_aversion=risk_aversion,
        alpha=alpha,
        risk_simulations=risk_simulations,
        result=result if resimulate else None,
        quantity=quantity,
    )
    table = pd.DataFrame(
        {
            "name": list(result.names),
            "evpi": evpi(values, result.scenario, capacity=capacity),
            "evpi_alone": evpi(values),
        }
    ).sort_values("evpi", ascending=False, kind="stable", ignore_index=True)
    return Prioritisation(objective, quantity, note, ranking, portfolio, table, k)
